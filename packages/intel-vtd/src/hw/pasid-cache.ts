/**
 * The PASID cache: validated PASID-table entries by (source id, PASID), tagged with the entry's
 * DID. Stale until a PASID-cache invalidation (or a context-cache invalidation of the device)
 * covers it.
 *
 * Records are kept per (source id, PASID) and refilled in place on a miss; a record is live
 * while its generation equals the cache's (O(1) global invalidation, no allocation per fetch).
 */

import { CacheEpoch } from './cache-epoch.js';
import { TranslationConfig } from './translation-config.js';

const SPAN = 1048576; // 2^20 PASIDs per source id

/** The PASID cache. */
export class PasidCache {
  private readonly records = new Map<number, TranslationConfig>();
  private gen = 1;
  private live = 0;

  /**
   * @param capacity - entries before the cache is dropped wholesale
   * @param epoch - the change counter this cache bumps on every change (shared with the context cache)
   */
  constructor(
    readonly capacity = 1024,
    readonly epoch = new CacheEpoch(),
  ) {}

  /** Entries held. */
  get size(): number {
    return this.live;
  }

  /** The cached configuration of (sid, pasid). */
  lookup(sid: number, pasid: number): TranslationConfig | undefined {
    const r = this.records.get(sid * SPAN + pasid);
    return r !== undefined && r.gen === this.gen ? r : undefined;
  }

  /**
   * The record of (sid, pasid), created on first use: the cached configuration when
   * {@link isLive}, else the record to fetch the entry into (not live until {@link insert}).
   * One map lookup serves both.
   */
  record(sid: number, pasid: number): TranslationConfig {
    const key = sid * SPAN + pasid;
    let r = this.records.get(key);
    if (r === undefined) this.records.set(key, (r = new TranslationConfig()));
    return r;
  }

  /** True when `r` (from {@link record}) holds a cached configuration. */
  isLive(r: TranslationConfig): boolean {
    return r.gen === this.gen;
  }

  /** Makes a record filled for (sid, pasid) live. */
  insert(sid: number, pasid: number, config: TranslationConfig): void {
    if (this.live >= this.capacity) {
      this.invalidateAll();
      // only a wholesale drop can have removed the record since record() returned it
      const key = sid * SPAN + pasid;
      if (this.records.get(key) !== config) this.records.set(key, config);
    }
    config.gen = this.gen;
    this.live++;
    this.epoch.value++;
  }

  /** Global invalidation. */
  invalidateAll(): void {
    this.gen++;
    this.live = 0;
    this.epoch.value++;
    if (this.records.size > 4 * this.capacity) this.records.clear(); // do not keep records of every PASID ever seen
  }

  private drop(r: TranslationConfig): void {
    if (r.gen !== this.gen) return;
    r.gen = 0;
    this.live--;
  }

  /** Domain-selective (G = 0): every entry with this DID. */
  invalidateDomain(did: number): void {
    for (const r of this.records.values()) if (r.did === did) this.drop(r);
    this.epoch.value++;
  }

  /** PASID-selective within domain (G = 1). */
  invalidatePasid(did: number, pasid: number): void {
    for (const [k, r] of this.records) if (r.did === did && k % SPAN === pasid) this.drop(r);
    this.epoch.value++;
  }

  /** Every entry of the source ids `match` accepts (device-selective context invalidation). */
  invalidateSources(match: (sid: number) => boolean): void {
    for (const [k, r] of this.records) if (match(Math.floor(k / SPAN))) this.drop(r);
    this.epoch.value++;
  }
}
