/**
 * The IOTLB: translations tagged by DID, PASID tag and page number, for 4 KiB, 2 MiB and
 * 1 GiB pages. It keeps serving an entry until an invalidation covering it is processed. When
 * full it drops everything (as QEMU's VT-d model does with its 1024-entry hash). Entries live
 * in typed arrays ({@link TagCache}): a lookup allocates nothing and leaves the hit in fields.
 */

import * as tagCache from './tag-cache.js';
import * as tags from './tags.js';

// Bound once as module-local constants: a module runner that implements import bindings as
// getters (vitest's, which runs the tests and the benchmarks) would make every use a call.
const { TagCache, alignDown } = tagCache;
const { PAGES_PER_SIZE } = tags;

/** Permission bits of an IOTLB entry. */
export const PERM_R = 1;
/** Write allowed. */
export const PERM_W = 2;
/** First stage: user accesses allowed. */
export const PERM_U = 4;
/** First stage: execute disabled. */
export const PERM_XD = 8;
/** The leaf's dirty bit is already set (a write needs no A/D walk). */
export const PERM_DIRTY = 16;

/** The IOTLB. */
export class Iotlb {
  private readonly cache: tagCache.TagCache;
  /** Physical address of the start of the (possibly large) page of the last hit. */
  hitBase = 0;
  /** Page-size index of the last hit: 0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB. */
  hitSize = 0;
  /** PERM_* bits of the last hit. */
  hitPerm = 0;
  /**
   * Bumped by every change of the contents (insertion, removal, invalidation): a copy of a
   * lookup's answer is current while the version it was taken at is.
   */
  version = 0;
  /** Tag, page and {@link version} of the last hit: the same lookup again returns it without probing. */
  private lastTag = -1;
  private lastVpn = -1;
  private lastVersion = -1;

  /** @param capacity - number of entries before the cache is dropped wholesale */
  constructor(readonly capacity = 1024) {
    this.cache = new TagCache(capacity);
  }

  /** Entries held. */
  get size(): number {
    return this.cache.size;
  }

  /**
   * Looks up the page `vpn` (4 KiB page number) under `tag`; a hit is left in `hit*`. The
   * last hit is remembered: while nothing changed the cache, the same lookup finds the same
   * entry, so it is answered from the `hit*` fields.
   */
  lookup(tag: number, vpn: number): boolean {
    if (vpn === this.lastVpn && tag === this.lastTag && this.version === this.lastVersion) return true;
    return this.probe(tag, vpn);
  }

  private probe(tag: number, vpn: number): boolean {
    const c = this.cache;
    let s = 0;
    if (!c.find(tag, vpn, 0)) {
      if (c.find(tag, alignDown(vpn, 512), 1)) s = 1;
      else if (c.find(tag, alignDown(vpn, 262144), 2)) s = 2;
      else return false;
    }
    this.hitBase = c.value;
    this.hitPerm = c.perm;
    this.hitSize = s;
    this.lastTag = tag;
    this.lastVpn = vpn;
    this.lastVersion = this.version;
    return true;
  }

  /** Caches a translation of the page `vpn`: the page of size index `size` at `base`. */
  insert(tag: number, vpn: number, base: number, size: number, perm: number): void {
    this.version++;
    this.cache.insert(tag, alignDown(vpn, PAGES_PER_SIZE[size]!), size, base, perm);
  }

  /** Drops one entry (a re-walk replaces it). */
  remove(tag: number, vpn: number, size: number): void {
    this.version++;
    this.cache.remove(tag, alignDown(vpn, PAGES_PER_SIZE[size]!), size);
  }

  /** Global invalidation. */
  invalidateAll(): void {
    this.version++;
    this.cache.clear();
  }

  /** Every entry of a DID (any PASID tag). */
  invalidateDid(did: number): void {
    this.version++;
    this.cache.removeDid(did);
  }

  /**
   * IOTLB page-selective invalidation (type 2): DID-tagged entries of `did` that overlap
   * `[firstVpn, firstVpn + pages)`, and every PASID-tagged entry of `did`.
   */
  invalidateDidRange(did: number, firstVpn: number, pages: number): void {
    this.version++;
    this.cache.removeDidRange(did, firstVpn, pages, PAGES_PER_SIZE);
  }

  /** Every entry of one tag (PASID-based IOTLB, all of a PASID). */
  invalidateTag(tag: number): void {
    this.version++;
    this.cache.removeTag(tag);
  }

  /** Entries of one tag overlapping `[firstVpn, firstVpn + pages)`. */
  invalidateTagRange(tag: number, firstVpn: number, pages: number): void {
    this.version++;
    this.cache.removeTagRange(tag, firstVpn, pages, PAGES_PER_SIZE);
  }
}
