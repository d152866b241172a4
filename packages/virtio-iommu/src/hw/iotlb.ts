/**
 * The device's stage-1 translation cache for guest-managed tables (the extension): entries are
 * keyed by a context number (a domain's table context, < 2^16) and a 4 KiB virtual page number
 * (< 2^36), and stay — stale — until an INVALIDATE request removes them. Capacity is a
 * device parameter; the oldest entry is evicted first.
 *
 * Typed arrays throughout: an open-addressed hash (linear probing, deletion by backward shift)
 * over slots that sit on a doubly linked list in insertion order, so a lookup, an insertion
 * and an eviction allocate nothing and cost O(1).
 */

const NONE = -1;

/** A cached stage-1 leaf: output page number (in the stage-1 output space) × 16 + permission bits. */
export class Iotlb {
  /** Context of each slot (-1: free). */
  private readonly ctxs: Int32Array;
  private readonly vpns: Float64Array;
  private readonly values: Float64Array;
  /** Insertion order: older and newer neighbours of each slot; free slots chain through `newer`. */
  private readonly older: Int32Array;
  private readonly newer: Int32Array;
  /** Hash buckets: slot + 1, 0 empty. */
  private readonly buckets: Int32Array;
  private readonly bucketMask: number;
  /** 32 − log2(buckets): the hash keeps the product's top bits. */
  private readonly bucketShift: number;
  private oldest = NONE;
  private newest = NONE;
  private freeSlot = NONE;
  private count = 0;

  /** @param capacity - entries held at most */
  constructor(readonly capacity: number) {
    const n = Math.max(0, Math.floor(capacity));
    this.ctxs = new Int32Array(n);
    this.vpns = new Float64Array(n);
    this.values = new Float64Array(n);
    this.older = new Int32Array(n);
    this.newer = new Int32Array(n);
    let b = 2;
    while (b < n * 2) b *= 2;
    this.buckets = new Int32Array(b);
    this.bucketMask = b - 1;
    this.bucketShift = 32 - Math.log2(b);
    this.reset();
  }

  /** Entries held. */
  get size(): number {
    return this.count;
  }

  private home(ctx: number, vpn: number): number {
    return Math.imul((vpn >>> 0) ^ Math.imul(ctx ^ Math.floor(vpn / 0x100000000), 0x27d4eb2f), 0x9e3779b1) >>> this.bucketShift;
  }

  /** The bucket holding (ctx, vpn), or -1. */
  private bucketOf(ctx: number, vpn: number): number {
    const buckets = this.buckets;
    const mask = this.bucketMask;
    for (let b = this.home(ctx, vpn); ; b = (b + 1) & mask) {
      const s = buckets[b]! - 1;
      if (s < 0) return NONE;
      if (this.vpns[s] === vpn && this.ctxs[s] === ctx) return b;
    }
  }

  /** The cached value, or -1. */
  lookup(ctx: number, vpn: number): number {
    if (this.count === 0) return -1;
    const b = this.bucketOf(ctx, vpn);
    return b < 0 ? -1 : this.values[this.buckets[b]! - 1]!;
  }

  /** Caches a value for a page not cached yet (a lookup just missed). */
  insert(ctx: number, vpn: number, value: number): void {
    if (this.ctxs.length === 0) return;
    if (this.count >= this.ctxs.length) this.removeSlot(this.oldest);
    const s = this.freeSlot;
    this.freeSlot = this.newer[s]!;
    this.ctxs[s] = ctx;
    this.vpns[s] = vpn;
    this.values[s] = value;
    this.older[s] = this.newest;
    this.newer[s] = NONE;
    if (this.newest !== NONE) this.newer[this.newest] = s;
    else this.oldest = s;
    this.newest = s;
    const buckets = this.buckets;
    let b = this.home(ctx, vpn);
    while (buckets[b] !== 0) b = (b + 1) & this.bucketMask;
    buckets[b] = s + 1;
    this.count++;
  }

  /** Unlinks slot `s` from the order, its bucket from the hash, and frees it. */
  private removeSlot(s: number): void {
    const buckets = this.buckets;
    const mask = this.bucketMask;
    let hole = this.bucketOf(this.ctxs[s]!, this.vpns[s]!);
    // Backward-shift deletion: move later members of the probe run into the hole when their home allows.
    for (let b = (hole + 1) & mask; buckets[b] !== 0; b = (b + 1) & mask) {
      const t = buckets[b]! - 1;
      const h = this.home(this.ctxs[t]!, this.vpns[t]!);
      // Stays if its home lies cyclically in (hole, b].
      const stays = hole <= b ? h > hole && h <= b : h > hole || h <= b;
      if (!stays) {
        buckets[hole] = buckets[b]!;
        hole = b;
      }
    }
    buckets[hole] = 0;
    const o = this.older[s]!;
    const n = this.newer[s]!;
    if (o !== NONE) this.newer[o] = n;
    else this.oldest = n;
    if (n !== NONE) this.older[n] = o;
    else this.newest = o;
    this.ctxs[s] = NONE;
    this.newer[s] = this.freeSlot;
    this.freeSlot = s;
    this.count--;
  }

  /** Drops a context's entries. */
  invalidateContext(ctx: number): void {
    for (let s = this.oldest; s !== NONE; ) {
      const next = this.newer[s]!;
      if (this.ctxs[s] === ctx) this.removeSlot(s);
      s = next;
    }
  }

  /** Drops a context's entries for `count` pages from `vpn`. */
  invalidateRange(ctx: number, vpn: number, count: number): void {
    if (count > this.count) {
      for (let s = this.oldest; s !== NONE; ) {
        const next = this.newer[s]!;
        const v = this.vpns[s]!;
        if (this.ctxs[s] === ctx && v >= vpn && v < vpn + count) this.removeSlot(s);
        s = next;
      }
      return;
    }
    for (let i = 0; i < count && this.count > 0; i++) {
      const b = this.bucketOf(ctx, vpn + i);
      if (b >= 0) this.removeSlot(this.buckets[b]! - 1);
    }
  }

  /** Drops everything (entry by entry when few are held, so that a flush of a cold TLB is cheap). */
  clear(): void {
    if (this.count * 8 < this.buckets.length) {
      while (this.oldest !== NONE) this.removeSlot(this.oldest);
      return;
    }
    this.reset();
  }

  private reset(): void {
    const n = this.ctxs.length;
    this.ctxs.fill(NONE);
    for (let s = 0; s < n; s++) this.newer[s] = s + 1 < n ? s + 1 : NONE;
    this.freeSlot = n > 0 ? 0 : NONE;
    this.buckets.fill(0);
    this.oldest = NONE;
    this.newest = NONE;
    this.count = 0;
  }
}
