/**
 * The bar the backends are measured against: what plain, carefully written JavaScript does on
 * the same work — a 4-level radix walk over a typed array of 8-byte entries (two 32-bit halves,
 * integer index arithmetic, no BigInt), and a direct-mapped IOTLB hit.
 */

const ENTRIES = 512;

/** A 4-level radix table in one Uint32Array (entry = [lo, hi], lo bit 0 = present). */
export class ReferenceWalker {
  private readonly mem: Uint32Array;
  private next = 1; // table 0 is the root
  /** IOTLB: direct-mapped, tag = page number + 1, value = frame. */
  private readonly tlbTag: Float64Array;
  private readonly tlbVal: Int32Array;
  private readonly tlbMask: number;

  /** @param tables - table pages to reserve; @param tlbSize - IOTLB entries (power of two) */
  constructor(tables: number, tlbSize = 1024) {
    this.mem = new Uint32Array(tables * ENTRIES * 2);
    this.tlbTag = new Float64Array(tlbSize);
    this.tlbVal = new Int32Array(tlbSize);
    this.tlbMask = tlbSize - 1;
  }

  /** Maps the 4 KiB page `vpn` (< 2^36) to frame `pfn`. */
  map(vpn: number, pfn: number): void {
    let table = 0;
    for (let level = 3; level > 0; level--) {
      const idx = Math.floor(vpn / 2 ** (9 * level)) & 511;
      const slot = (table * ENTRIES + idx) * 2;
      if ((this.mem[slot]! & 1) === 0) {
        this.mem[slot] = (this.next++ << 12) | 1;
      }
      table = this.mem[slot]! >>> 12;
    }
    const slot = (table * ENTRIES + (vpn & 511)) * 2;
    this.mem[slot] = ((pfn << 12) | 1) >>> 0;
  }

  /** Walks the table for an IOVA given as two 32-bit halves; returns the frame or −1. */
  walk(hi: number, lo: number): number {
    const mem = this.mem;
    // IOVA bits 47..39, 38..30, 29..21, 20..12
    let e = mem[(((hi >>> 7) & 511)) * 2]!;
    if ((e & 1) === 0) return -1;
    e = mem[((e >>> 12) * ENTRIES + (((hi & 127) << 2) | (lo >>> 30))) * 2]!;
    if ((e & 1) === 0) return -1;
    e = mem[((e >>> 12) * ENTRIES + ((lo >>> 21) & 511)) * 2]!;
    if ((e & 1) === 0) return -1;
    e = mem[((e >>> 12) * ENTRIES + ((lo >>> 12) & 511)) * 2]!;
    if ((e & 1) === 0) return -1;
    return e >>> 12;
  }

  /**
   * A DMA read on the same terms as a backend's `dmaInto`: the translation (IOTLB, walking on
   * a miss), then `n` bytes of the frame copied into `out`; returns false for a fault. The
   * frames' bytes come from `memory` (frame `f` is `memory[(f mod frames) · 4096 …]`).
   */
  read(hi: number, lo: number, memory: Uint8Array, out: Uint8Array, n: number): boolean {
    const f = this.translate(hi, lo);
    if (f < 0) return false;
    const at = (f % (memory.length >>> 12)) * 4096 + (lo & 0xfff);
    for (let i = 0; i < n; i++) out[i] = memory[at + i]!;
    return true;
  }

  /** Looks the page up in the IOTLB, walking and filling on a miss. */
  translate(hi: number, lo: number): number {
    const vpn = hi * 0x100000 + (lo >>> 12);
    const i = vpn & this.tlbMask;
    if (this.tlbTag[i] === vpn + 1) return this.tlbVal[i]!;
    const f = this.walk(hi, lo);
    if (f >= 0) {
      this.tlbTag[i] = vpn + 1;
      this.tlbVal[i] = f;
    }
    return f;
  }
}
