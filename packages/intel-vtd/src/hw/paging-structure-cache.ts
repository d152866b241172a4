/**
 * The paging-structure cache: non-leaf entries that point at a last-level (4 KiB-leaf) table,
 * tagged like the IOTLB and indexed by the 2 MiB region they cover. A hit skips the upper
 * levels of a walk, so a table freed without an invalidation that drops it (IH = 0) keeps
 * being used. Entries live in typed arrays ({@link TagCache}); a hit is left in fields.
 */

import * as tagCache from './tag-cache.js';

// Bound once as module-local constants (a module runner may implement import bindings as getters).
const { TagCache, alignDown } = tagCache;

/** A 2 MiB region is 512 pages of 4 KiB; a region key covers one page of its own size. */
const REGION_PAGES = [512] as const;

/** The paging-structure cache. */
export class PagingStructureCache {
  private readonly cache: tagCache.TagCache;
  /** Physical address of the last-level table of the last hit. */
  hitTable = 0;
  /** Permissions accumulated over the upper levels (format-specific bits) of the last hit. */
  hitPerm = 0;

  /** @param capacity - entries before the cache is dropped wholesale */
  constructor(readonly capacity = 256) {
    this.cache = new TagCache(capacity);
  }

  /** Entries held. */
  get size(): number {
    return this.cache.size;
  }

  /** Looks up the cached last-level table for the 2 MiB region of `vpn`; a hit is left in `hit*`. */
  lookup(tag: number, vpn: number): boolean {
    const c = this.cache;
    if (!c.find(tag, alignDown(vpn, 512), 0)) return false;
    this.hitTable = c.value;
    this.hitPerm = c.perm;
    return true;
  }

  /** Caches a pointer to the last-level table of `vpn`'s 2 MiB region. */
  insert(tag: number, vpn: number, table: number, perm: number): void {
    this.cache.insert(tag, alignDown(vpn, 512), 0, table, perm);
  }

  /** Drops everything. */
  invalidateAll(): void {
    this.cache.clear();
  }

  /** Drops every entry of a DID. */
  invalidateDid(did: number): void {
    this.cache.removeDid(did);
  }

  /** Drops the DID-tagged entries of a DID overlapping `[firstVpn, firstVpn + pages)`, and its PASID-tagged ones. */
  invalidateDidRange(did: number, firstVpn: number, pages: number): void {
    this.cache.removeDidRange(did, firstVpn, pages, REGION_PAGES);
  }

  /** Drops the entries of one tag. */
  invalidateTag(tag: number): void {
    this.cache.removeTag(tag);
  }

  /** Drops the entries of one tag overlapping `[firstVpn, firstVpn + pages)`. */
  invalidateTagRange(tag: number, firstVpn: number, pages: number): void {
    this.cache.removeTagRange(tag, firstVpn, pages, REGION_PAGES);
  }
}
