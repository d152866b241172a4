/**
 * The context cache: decoded context entries by source id (root and context entries are
 * fetched together). Stale until a context-cache invalidation covers the source id.
 */

import type { ScalableContextEntry } from '../spec/context-entry.js';
import type { TranslationConfig } from './translation-config.js';

/** A cached context: scalable-mode entry, or the legacy entry's translation configuration. */
export type CachedContext =
  | { readonly legacy: false; readonly entry: ScalableContextEntry }
  | { readonly legacy: true; readonly config: TranslationConfig };

/** The context cache. */
export class ContextCache {
  private readonly entries = new Map<number, CachedContext>();
  /** Bumped by every change, so that a copy of a lookup's result knows when it may be stale. */
  version = 0;

  /** @param capacity - entries before the cache is dropped wholesale */
  constructor(readonly capacity = 256) {}

  /** Entries held. */
  get size(): number {
    return this.entries.size;
  }

  /** The cached context of a source id. */
  lookup(sid: number): CachedContext | undefined {
    return this.entries.get(sid);
  }

  /** Caches a context. */
  insert(sid: number, ctx: CachedContext): void {
    if (this.entries.size >= this.capacity) this.entries.clear();
    this.entries.set(sid, ctx);
    this.version++;
  }

  /** Global invalidation. */
  invalidateAll(): void {
    this.entries.clear();
    this.version++;
  }

  /** Domain-selective: legacy entries of the DID; scalable-mode entries carry no DID, so all of them. */
  invalidateDomain(did: number): void {
    for (const [sid, c] of this.entries) if (!c.legacy || c.config.did === did) this.entries.delete(sid);
    this.version++;
  }

  /**
   * Device-selective with function mask FM (0: none; 1, 2, 3: ignore SID bits 2, 2:1, 2:0).
   * Returns the predicate for other caches that must follow.
   */
  invalidateDevice(sid: number, fm: number): (other: number) => boolean {
    const mask = fm === 0 ? 0 : fm === 1 ? 4 : fm === 2 ? 6 : 7;
    const match = (other: number) => (other & ~mask) === (sid & ~mask);
    for (const key of this.entries.keys()) if (match(key)) this.entries.delete(key);
    this.version++;
    return match;
  }
}
