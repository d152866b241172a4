/**
 * The context cache: decoded context entries by source id (root and context entries are
 * fetched together). Stale until a context-cache invalidation covers the source id.
 *
 * Records are kept per source id and refilled in place on a miss; a record is live while its
 * generation equals the cache's, so a global invalidation is O(1) and a refill allocates
 * nothing.
 */

import type { ScalableContextEntry } from '../spec/context-entry.js';
import { CacheEpoch } from './cache-epoch.js';
import { TranslationConfig } from './translation-config.js';

/** A cached context: a scalable-mode entry, or a legacy entry's translation configuration. */
export class CachedContext {
  /** Generation the record was filled in. */
  gen = 0;
  /** A legacy-mode context (`config`) rather than a scalable-mode one (`entry`). */
  legacy = false;
  /** Scalable mode: the decoded context entry. */
  readonly entry: { -readonly [K in keyof ScalableContextEntry]: ScalableContextEntry[K] } = {
    present: false,
    fpd: false,
    dte: false,
    paside: false,
    pre: false,
    pdts: 0,
    pasidDirPtr: 0,
    ridPasid: 0,
    ridPriv: false,
  };
  /** Legacy mode: the translation configuration. */
  readonly config = new TranslationConfig();
}

/** The context cache. */
export class ContextCache {
  private readonly records = new Map<number, CachedContext>();
  private gen = 1;
  private live = 0;

  /**
   * @param capacity - entries before the cache is dropped wholesale
   * @param epoch - the change counter this cache bumps on every change (shared with the PASID cache)
   */
  constructor(
    readonly capacity = 256,
    readonly epoch = new CacheEpoch(),
  ) {}

  /** Entries held. */
  get size(): number {
    return this.live;
  }

  /** The cached context of a source id. */
  lookup(sid: number): CachedContext | undefined {
    const r = this.records.get(sid);
    return r !== undefined && r.gen === this.gen ? r : undefined;
  }

  /**
   * The record of `sid`, created on first use: the cached context when {@link isLive}, else
   * the record to fetch it into (not live until {@link insert}). One map lookup serves both.
   */
  record(sid: number): CachedContext {
    let r = this.records.get(sid);
    if (r === undefined) this.records.set(sid, (r = new CachedContext()));
    return r;
  }

  /** True when `r` (from {@link record}) holds a cached context. */
  isLive(r: CachedContext): boolean {
    return r.gen === this.gen;
  }

  /** Makes a record filled for `sid` live. */
  insert(sid: number, ctx: CachedContext): void {
    if (this.live >= this.capacity) {
      this.invalidateAll();
      // only a wholesale drop can have removed the record since record() returned it
      if (this.records.get(sid) !== ctx) this.records.set(sid, ctx);
    }
    ctx.gen = this.gen;
    this.live++;
    this.epoch.value++;
  }

  /** Global invalidation. */
  invalidateAll(): void {
    this.gen++;
    this.live = 0;
    this.epoch.value++;
    if (this.records.size > 4 * this.capacity) this.records.clear(); // do not keep records of every source id ever seen
  }

  private drop(r: CachedContext): void {
    if (r.gen !== this.gen) return;
    r.gen = 0;
    this.live--;
  }

  /** Domain-selective: legacy entries of the DID; scalable-mode entries carry no DID, so all of them. */
  invalidateDomain(did: number): void {
    for (const r of this.records.values()) if (!r.legacy || r.config.did === did) this.drop(r);
    this.epoch.value++;
  }

  /**
   * Device-selective with function mask FM (0: none; 1, 2, 3: ignore SID bits 2, 2:1, 2:0).
   * Returns the predicate for other caches that must follow.
   */
  invalidateDevice(sid: number, fm: number): (other: number) => boolean {
    const mask = fm === 0 ? 0 : fm === 1 ? 4 : fm === 2 ? 6 : 7;
    const match = (other: number) => (other & ~mask) === (sid & ~mask);
    for (const [key, r] of this.records) if (match(key)) this.drop(r);
    this.epoch.value++;
    return match;
  }
}
