/**
 * The device's cache of MAP/UNMAP translations, one entry per 4 KiB input page: what a VMM
 * keeps in front of its mapping tree (QEMU hands IOTLB entries to vhost and the memory API,
 * which cache them until an UNMAP notifier fires). It is coherent with the mapping tree: UNMAP
 * drops the pages of its range before it completes, and only pages a single mapping covers
 * whole, with no RESV_MEM region in them, are cached — so a hit answers exactly as the tree
 * would. Direct-mapped over typed arrays, keyed by the domain's tag and the page number taken
 * from the IOVA's 32-bit halves: a hit allocates nothing.
 */

/** Page-number scale of the high IOVA half (2^20 pages per 4 GiB). */
const HI_PAGES = 0x100000;

/** A direct-mapped per-page translation cache. */
export class MapCache {
  /** Domain tag of each entry (0: empty; tags start at 1 and are never reused). */
  readonly tags: Float64Array;
  /** Input page number (IOVA ÷ 4096) of each entry. */
  readonly vpns: Float64Array;
  /** Physical address of the page's first byte. */
  readonly pas: Float64Array;
  /** VIRTIO_IOMMU_MAP_F_READ / _WRITE of the mapping. */
  readonly flags: Uint8Array;
  /** Index mask (entries − 1; 0 with the cache disabled). */
  readonly mask: number;
  private readonly enabled: boolean;
  /**
   * Entries filled while empty since the last clear, so that a clear touches only those (an
   * entry emptied by an UNMAP and filled again is listed twice; past `filled.length` entries
   * a clear wipes the whole cache instead).
   */
  private readonly filled: Int32Array;
  private nfilled = 0;

  /** @param entries - a power of two, or 0 for no cache */
  constructor(entries: number) {
    this.enabled = entries > 0;
    const n = this.enabled ? entries : 1;
    if ((n & (n - 1)) !== 0) throw new RangeError(`map cache entries must be 0 or a power of two, not ${entries}`);
    this.tags = new Float64Array(n);
    this.vpns = new Float64Array(n);
    this.pas = new Float64Array(n);
    this.flags = new Uint8Array(n);
    this.filled = new Int32Array(n);
    this.mask = n - 1;
  }

  /** The entry of page `hi:lo` in domain `tag` (the hash the DMA path inlines). */
  static index(tag: number, hi: number, lo: number, mask: number): number {
    return ((lo >>> 12) ^ (hi << 11) ^ (tag << 5)) & mask;
  }

  /** Entries held (for tests). */
  get size(): number {
    let n = 0;
    for (const t of this.tags) if (t !== 0) n++;
    return n;
  }

  /** Caches page `hi:lo` of domain `tag` at physical `pa` (its first byte). */
  fill(tag: number, hi: number, lo: number, pa: number, flags: number): void {
    if (!this.enabled) return;
    const i = MapCache.index(tag, hi, lo, this.mask);
    if (this.tags[i] === 0 && this.nfilled <= this.mask + 1) {
      if (this.nfilled <= this.mask) this.filled[this.nfilled] = i;
      this.nfilled++;
    }
    this.tags[i] = tag;
    this.vpns[i] = hi * HI_PAGES + (lo >>> 12);
    this.pas[i] = pa;
    this.flags[i] = flags;
  }

  /** Drops domain `tag`'s pages from `start` to `end` (IOVA halves, `start` ≤ `end`). */
  invalidate(tag: number, sHi: number, sLo: number, eHi: number, eLo: number): void {
    if (!this.enabled) return;
    const first = sHi * HI_PAGES + (sLo >>> 12);
    const last = eHi * HI_PAGES + (eLo >>> 12);
    const tags = this.tags;
    const vpns = this.vpns;
    if (last - first > this.mask) {
      for (let i = 0; i <= this.mask; i++) if (tags[i] === tag && vpns[i]! >= first && vpns[i]! <= last) tags[i] = 0;
      return;
    }
    for (let v = first; v <= last; v++) {
      const hi = Math.floor(v / HI_PAGES);
      const i = MapCache.index(tag, hi, (v - hi * HI_PAGES) * 4096, this.mask);
      if (tags[i] === tag && vpns[i] === v) tags[i] = 0;
    }
  }

  /** Drops everything: O(entries filled since the last clear). */
  clear(): void {
    const tags = this.tags;
    if (this.nfilled > this.mask + 1) tags.fill(0);
    else for (let k = 0; k < this.nfilled; k++) tags[this.filled[k]!] = 0;
    this.nfilled = 0;
  }
}
