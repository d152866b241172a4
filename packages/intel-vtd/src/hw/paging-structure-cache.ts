/**
 * The paging-structure cache: non-leaf entries that point at a last-level (4 KiB-leaf) table,
 * tagged like the IOTLB and indexed by the 2 MiB region they cover. A hit skips the upper
 * levels of a walk, so a table freed without an invalidation that drops it (IH = 0) keeps
 * being used.
 */

import { tagDid, tagPasid } from './tags.js';

/** A cached pointer to a last-level table with the permissions accumulated above it. */
export interface PagingStructureEntry {
  /** Physical address of the last-level table. */
  readonly table: number;
  /** Permissions accumulated over the upper levels (format-specific bits). */
  readonly perm: number;
}

/** The paging-structure cache. */
export class PagingStructureCache {
  private readonly spaces = new Map<number, Map<number, PagingStructureEntry>>();
  private count = 0;

  /** @param capacity - entries before the cache is dropped wholesale */
  constructor(readonly capacity = 256) {}

  /** Entries held. */
  get size(): number {
    return this.count;
  }

  /** The cached last-level table for the 2 MiB region of `vpn`. */
  lookup(tag: number, vpn: number): PagingStructureEntry | undefined {
    return this.spaces.get(tag)?.get(Math.floor(vpn / 512));
  }

  /** Caches a pointer to the last-level table of `vpn`'s 2 MiB region. */
  insert(tag: number, vpn: number, entry: PagingStructureEntry): void {
    if (this.count >= this.capacity) this.invalidateAll();
    let space = this.spaces.get(tag);
    if (space === undefined) this.spaces.set(tag, (space = new Map<number, PagingStructureEntry>()));
    const key = Math.floor(vpn / 512);
    if (!space.has(key)) this.count++;
    space.set(key, entry);
  }

  /** Drops everything. */
  invalidateAll(): void {
    this.spaces.clear();
    this.count = 0;
  }

  /** Drops every entry of a DID; with `didTaggedOnly`, only DID-tagged spaces' entries in the range. */
  invalidateDid(did: number, range?: { firstVpn: number; pages: number }): void {
    for (const [tag, space] of this.spaces) {
      if (tagDid(tag) !== did) continue;
      if (range === undefined || tagPasid(tag) !== 0) {
        this.count -= space.size;
        this.spaces.delete(tag);
      } else this.removeRange(space, range.firstVpn, range.pages);
    }
  }

  /** Drops the entries of one tag, or those overlapping a range. */
  invalidateTag(tag: number, range?: { firstVpn: number; pages: number }): void {
    const space = this.spaces.get(tag);
    if (space === undefined) return;
    if (range === undefined) {
      this.count -= space.size;
      this.spaces.delete(tag);
    } else this.removeRange(space, range.firstVpn, range.pages);
  }

  private removeRange(space: Map<number, PagingStructureEntry>, firstVpn: number, pages: number): void {
    const first = Math.floor(firstVpn / 512);
    const last = Math.floor((firstVpn + pages - 1) / 512);
    if (last - first + 1 < space.size) {
      for (let k = first; k <= last; k++) if (space.delete(k)) this.count--;
      return;
    }
    for (const k of space.keys()) {
      if (k >= first && k <= last) {
        space.delete(k);
        this.count--;
      }
    }
  }
}
