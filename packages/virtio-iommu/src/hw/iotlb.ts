/**
 * The device's stage-1 translation cache for guest-managed tables (the extension): entries are
 * keyed by a context number (a domain's table context, < 2^16) and a 4 KiB virtual page number
 * (< 2^36), and stay — stale — until an INVALIDATE request removes them. Capacity is a
 * device parameter; the oldest entry is evicted first.
 */

const CTX_SCALE = 2 ** 36;

/** A cached stage-1 leaf: output page number (in the stage-1 output space) × 16 + permission bits. */
export class Iotlb {
  private readonly map = new Map<number, number>();

  /** @param capacity - entries held at most */
  constructor(readonly capacity: number) {}

  /** Entries held. */
  get size(): number {
    return this.map.size;
  }

  /** The cached value, or -1. */
  lookup(ctx: number, vpn: number): number {
    return this.map.get(ctx * CTX_SCALE + vpn) ?? -1;
  }

  /** Caches a value. */
  insert(ctx: number, vpn: number, value: number): void {
    if (this.capacity <= 0) return;
    if (this.map.size >= this.capacity) {
      const first = this.map.keys().next();
      if (first.done !== true) this.map.delete(first.value);
    }
    this.map.set(ctx * CTX_SCALE + vpn, value);
  }

  /** Drops a context's entries. */
  invalidateContext(ctx: number): void {
    for (const key of this.map.keys()) if (Math.floor(key / CTX_SCALE) === ctx) this.map.delete(key);
  }

  /** Drops a context's entries for `count` pages from `vpn`. */
  invalidateRange(ctx: number, vpn: number, count: number): void {
    if (count > this.map.size) {
      for (const key of this.map.keys()) {
        if (Math.floor(key / CTX_SCALE) !== ctx) continue;
        const v = key - ctx * CTX_SCALE;
        if (v >= vpn && v < vpn + count) this.map.delete(key);
      }
      return;
    }
    for (let i = 0; i < count; i++) this.map.delete(ctx * CTX_SCALE + vpn + i);
  }

  /** Drops everything. */
  clear(): void {
    this.map.clear();
  }
}
