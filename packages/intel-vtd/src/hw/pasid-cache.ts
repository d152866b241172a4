/**
 * The PASID cache: validated PASID-table entries by (source id, PASID), tagged with the entry's
 * DID. Stale until a PASID-cache invalidation (or a context-cache invalidation of the device)
 * covers it.
 */

import type { TranslationConfig } from './translation-config.js';

const SPAN = 1048576; // 2^20 PASIDs per source id

/** The PASID cache. */
export class PasidCache {
  private readonly entries = new Map<number, TranslationConfig>();
  /** Bumped by every change, so that a copy of a lookup's result knows when it may be stale. */
  version = 0;

  /** @param capacity - entries before the cache is dropped wholesale */
  constructor(readonly capacity = 1024) {}

  /** Entries held. */
  get size(): number {
    return this.entries.size;
  }

  /** The cached configuration of (sid, pasid). */
  lookup(sid: number, pasid: number): TranslationConfig | undefined {
    return this.entries.get(sid * SPAN + pasid);
  }

  /** Caches a configuration. */
  insert(sid: number, pasid: number, config: TranslationConfig): void {
    if (this.entries.size >= this.capacity) this.entries.clear();
    this.entries.set(sid * SPAN + pasid, config);
    this.version++;
  }

  /** Global invalidation. */
  invalidateAll(): void {
    this.entries.clear();
    this.version++;
  }

  /** Domain-selective (G = 0): every entry with this DID. */
  invalidateDomain(did: number): void {
    for (const [k, c] of this.entries) if (c.did === did) this.entries.delete(k);
    this.version++;
  }

  /** PASID-selective within domain (G = 1). */
  invalidatePasid(did: number, pasid: number): void {
    for (const [k, c] of this.entries) if (c.did === did && k % SPAN === pasid) this.entries.delete(k);
    this.version++;
  }

  /** Every entry of the source ids `match` accepts (device-selective context invalidation). */
  invalidateSources(match: (sid: number) => boolean): void {
    for (const k of this.entries.keys()) if (match(Math.floor(k / SPAN))) this.entries.delete(k);
    this.version++;
  }
}
