/**
 * The IOTLB: translations tagged by DID, PASID tag and page number, for 4 KiB, 2 MiB and
 * 1 GiB pages. It keeps serving an entry until an invalidation covering it is processed. When
 * full it drops everything (as QEMU's VT-d model does with its 1024-entry hash).
 */

import { PAGES_PER_SIZE, tagDid, tagPasid } from './tags.js';

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

/** One cached translation. */
export interface IotlbEntry {
  /** Physical address of the start of the (possibly large) page. */
  readonly base: number;
  /** Page-size index: 0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB. */
  readonly size: number;
  /** PERM_* bits. */
  readonly perm: number;
}

/** The IOTLB. */
export class Iotlb {
  private readonly spaces = new Map<number, Map<number, IotlbEntry>>();
  private count = 0;

  /** @param capacity - number of entries before the cache is dropped wholesale */
  constructor(readonly capacity = 1024) {}

  /** Entries held. */
  get size(): number {
    return this.count;
  }

  /** Looks up the page `vpn` (4 KiB page number) under `tag`. */
  lookup(tag: number, vpn: number): IotlbEntry | undefined {
    const space = this.spaces.get(tag);
    if (space === undefined) return undefined;
    for (let s = 0; s < 3; s++) {
      const e = space.get(Math.floor(vpn / PAGES_PER_SIZE[s]!) * 4 + s);
      if (e !== undefined) return e;
    }
    return undefined;
  }

  /** Caches a translation of the page `vpn`. */
  insert(tag: number, vpn: number, entry: IotlbEntry): void {
    if (this.count >= this.capacity) this.invalidateAll();
    let space = this.spaces.get(tag);
    if (space === undefined) this.spaces.set(tag, (space = new Map<number, IotlbEntry>()));
    const key = Math.floor(vpn / PAGES_PER_SIZE[entry.size]!) * 4 + entry.size;
    if (!space.has(key)) this.count++;
    space.set(key, entry);
  }

  /** Drops one entry (a re-walk replaces it). */
  remove(tag: number, vpn: number, size: number): void {
    const space = this.spaces.get(tag);
    if (space?.delete(Math.floor(vpn / PAGES_PER_SIZE[size]!) * 4 + size) === true) this.count--;
  }

  /** Global invalidation. */
  invalidateAll(): void {
    this.spaces.clear();
    this.count = 0;
  }

  /** Every entry of a DID (any PASID tag). */
  invalidateDid(did: number): void {
    for (const [tag, space] of this.spaces) {
      if (tagDid(tag) === did) {
        this.count -= space.size;
        this.spaces.delete(tag);
      }
    }
  }

  /**
   * IOTLB page-selective invalidation (type 2): DID-tagged entries of `did` that overlap
   * `[firstVpn, firstVpn + pages)`, and every PASID-tagged entry of `did`.
   */
  invalidateDidRange(did: number, firstVpn: number, pages: number): void {
    for (const [tag, space] of this.spaces) {
      if (tagDid(tag) !== did) continue;
      if (tagPasid(tag) !== 0) {
        this.count -= space.size;
        this.spaces.delete(tag);
      } else this.removeRange(space, firstVpn, pages);
    }
  }

  /** Every entry of one tag (PASID-based IOTLB, all of a PASID). */
  invalidateTag(tag: number): void {
    const space = this.spaces.get(tag);
    if (space === undefined) return;
    this.count -= space.size;
    this.spaces.delete(tag);
  }

  /** Entries of one tag overlapping `[firstVpn, firstVpn + pages)`. */
  invalidateTagRange(tag: number, firstVpn: number, pages: number): void {
    const space = this.spaces.get(tag);
    if (space !== undefined) this.removeRange(space, firstVpn, pages);
  }

  private removeRange(space: Map<number, IotlbEntry>, firstVpn: number, pages: number): void {
    const end = firstVpn + pages;
    for (const key of space.keys()) {
      const s = key % 4;
      const n = PAGES_PER_SIZE[s]!;
      const start = Math.floor(key / 4) * n;
      if (start < end && start + n > firstVpn) {
        space.delete(key);
        this.count--;
      }
    }
  }
}
