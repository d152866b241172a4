/**
 * The mappings of a domain's anonymous context: one record per MAP request, ordered by
 * virt_start (equal starts in the order they were mapped), as QEMU keeps them in a GTree of
 * `{low, high} → {phys_addr, flags}`. Each record is seven 32-bit words in a typed array — no
 * object and no BigInt per mapping — and the records sit in chunks of up to 256 (`CAP`), found by
 * a binary search over the chunks' first starts: lookup, insertion and removal cost
 * O(log n + CAP) however many mappings the domain holds.
 *
 * Every address is a pair of 32-bit halves (`hi`, `lo`). A mapping whose virt_end is below its
 * virt_start ("inverted": profiles that skip the order check accept one) covers no address but
 * still takes part in the overlap checks as the spec-less arithmetic of those VMMs has it; the
 * other ("normal") mappings never overlap one another, since MAP refuses an overlap.
 */

/** Words per record. */
const REC = 7;
const S_HI = 0;
const S_LO = 1;
const E_HI = 2;
const E_LO = 3;
const P_HI = 4;
const P_LO = 5;
const FLAGS = 6;
/** Records per chunk by default: an insertion or removal moves at most CAP × 28 bytes. */
const CAP = 256;
const TWO32 = 0x100000000;

/** Bytes of one mapping record. */
export const MAPPING_RECORD_BYTES = REC * 4;

/** One mapping, as the snapshot shows it. */
export interface Mapping {
  /** virt_start. */
  readonly start: bigint;
  /** virt_end (inclusive). */
  readonly end: bigint;
  /** phys_start. */
  readonly phys: bigint;
  /** VIRTIO_IOMMU_MAP_F_*. */
  readonly flags: number;
}

/** (h1, l1) < (h2, l2). */
function lt(h1: number, l1: number, h2: number, l2: number): boolean {
  return h1 < h2 || (h1 === h2 && l1 < l2);
}

/** (h1, l1) ≤ (h2, l2). */
function le(h1: number, l1: number, h2: number, l2: number): boolean {
  return h1 < h2 || (h1 === h2 && l1 <= l2);
}

/** First record of chunk `w` (n records) whose start is above (hi, lo) (`above`), or at or above it. */
function bound(w: Uint32Array, n: number, hi: number, lo: number, above: boolean): number {
  let a = 0;
  let b = n;
  while (a < b) {
    const mid = (a + b) >>> 1;
    const o = mid * REC;
    const h = w[o + S_HI]!;
    const l = w[o + S_LO]!;
    if (h < hi || (h === hi && (above ? l <= lo : l < lo))) a = mid + 1;
    else b = mid;
  }
  return a;
}

const toBig = (hi: number, lo: number): bigint => (BigInt(hi) << 32n) | BigInt(lo);

/** The mappings of one domain. */
export class MappingTree {
  /** Record words of each chunk. */
  private chunks: Uint32Array[] = [];
  /** Records in each chunk (never 0). */
  private counts: number[] = [];
  /** virt_start halves of each chunk's first record. */
  private firstHi: number[] = [];
  private firstLo: number[] = [];
  private total = 0;
  /** Position scratch of {@link seek}: chunk and record index. */
  private pc = 0;
  private pi = 0;
  /** The chunk words holding the record {@link find} returned. */
  hitWords: Uint32Array = new Uint32Array(REC);

  /** @param cap - records per chunk (tests use small chunks; at least 4) */
  constructor(private readonly cap = CAP) {}

  /** Number of mappings. */
  get size(): number {
    return this.total;
  }

  /** Bytes the records take (chunk capacity included): what the model holds per domain. */
  get bytes(): number {
    let n = 0;
    for (const w of this.chunks) n += w.byteLength;
    return n;
  }

  /** Every mapping, ascending (for snapshots; allocates). */
  entries(): Mapping[] {
    const out: Mapping[] = [];
    for (let c = 0; c < this.chunks.length; c++) {
      const w = this.chunks[c]!;
      for (let i = 0, o = 0; i < this.counts[c]!; i++, o += REC) {
        out.push({ start: toBig(w[o + S_HI]!, w[o + S_LO]!), end: toBig(w[o + E_HI]!, w[o + E_LO]!), phys: toBig(w[o + P_HI]!, w[o + P_LO]!), flags: w[o + FLAGS]! });
      }
    }
    return out;
  }

  /**
   * The mapping containing `hi:lo`: the offset of its record in {@link hitWords}, or -1. As a
   * sorted list would: the last record starting at or below the address, if it reaches it.
   */
  find(hi: number, lo: number): number {
    const fh = this.firstHi;
    const fl = this.firstLo;
    let a = 0;
    let b = fh.length - 1;
    let c = -1;
    while (a <= b) {
      const mid = (a + b) >>> 1;
      const h = fh[mid]!;
      if (h < hi || (h === hi && fl[mid]! <= lo)) {
        c = mid;
        a = mid + 1;
      } else b = mid - 1;
    }
    if (c < 0) return -1;
    const w = this.chunks[c]!;
    const o = (bound(w, this.counts[c]!, hi, lo, true) - 1) * REC;
    const eh = w[o + E_HI]!;
    if (eh > hi || (eh === hi && w[o + E_LO]! >= lo)) {
      this.hitWords = w;
      return o;
    }
    return -1;
  }

  /** {@link find} for a number address (IPAs, exact below 2^53). */
  findNumber(addr: number): number {
    return this.find(Math.floor(addr / TWO32), addr >>> 0);
  }

  /** Sets the position scratch to the first record starting above (`above`) or at or above `hi:lo`. */
  private seek(hi: number, lo: number, above: boolean): void {
    const fh = this.firstHi;
    const fl = this.firstLo;
    let a = 0;
    let b = fh.length - 1;
    let c = -1;
    while (a <= b) {
      const mid = (a + b) >>> 1;
      const h = fh[mid]!;
      if (h < hi || (h === hi && (above ? fl[mid]! <= lo : fl[mid]! < lo))) {
        c = mid;
        a = mid + 1;
      } else b = mid - 1;
    }
    if (c < 0) {
      this.pc = 0;
      this.pi = 0;
      return;
    }
    const i = bound(this.chunks[c]!, this.counts[c]!, hi, lo, above);
    if (i === this.counts[c]!) {
      this.pc = c + 1;
      this.pi = 0;
    } else {
      this.pc = c;
      this.pi = i;
    }
  }

  /**
   * The normal mapping (virt_end ≥ virt_start) with the greatest start below `hi:lo`: its chunk
   * in {@link pc} and index in {@link pi}, or false. Normal mappings are disjoint, so it is the
   * only one that can reach `hi:lo` from below.
   */
  private normalBefore(hi: number, lo: number): boolean {
    this.seek(hi, lo, false);
    let c = this.pc;
    let i = this.pi;
    for (;;) {
      if (i === 0) {
        if (c === 0) return false;
        c--;
        i = this.counts[c]!;
      }
      i--;
      const w = this.chunks[c]!;
      const o = i * REC;
      if (le(w[o + S_HI]!, w[o + S_LO]!, w[o + E_HI]!, w[o + E_LO]!)) {
        this.pc = c;
        this.pi = i;
        return true;
      }
    }
  }

  /**
   * True when some mapping intersects `[start, end]` — some mapping m with m.start ≤ end and
   * m.end ≥ start, the test MAP applies (inverted ranges included, on either side).
   */
  intersects(sHi: number, sLo: number, eHi: number, eLo: number): boolean {
    if (this.normalBefore(sHi, sLo)) {
      const w = this.chunks[this.pc]!;
      const o = this.pi * REC;
      if (le(w[o + S_HI]!, w[o + S_LO]!, eHi, eLo) && le(sHi, sLo, w[o + E_HI]!, w[o + E_LO]!)) return true;
    }
    // Mappings starting inside [start, end]: a normal one intersects; an inverted one when its end reaches start.
    if (lt(eHi, eLo, sHi, sLo)) return false;
    this.seek(sHi, sLo, false);
    for (let c = this.pc, i = this.pi; c < this.chunks.length; c++, i = 0) {
      const w = this.chunks[c]!;
      for (const n = this.counts[c]!; i < n; i++) {
        const o = i * REC;
        if (lt(eHi, eLo, w[o + S_HI]!, w[o + S_LO]!)) return false;
        if (le(sHi, sLo, w[o + E_HI]!, w[o + E_LO]!)) return true;
      }
    }
    return false;
  }

  /**
   * UNMAP of `[start, end]`: removes every mapping wholly inside it, unless the range would
   * split one (some mapping intersects it without being inside) — then nothing is removed and
   * the result is false. With `partial` (QEMU), the inside mappings starting below the first
   * one it would split are removed even so.
   */
  unmap(sHi: number, sLo: number, eHi: number, eLo: number, partial: boolean): boolean {
    // The first mapping the range would split, in order: the normal one reaching start from
    // below (every mapping inside the range starts above it, so even QEMU removes nothing)…
    if (this.normalBefore(sHi, sLo)) {
      const w = this.chunks[this.pc]!;
      const o = this.pi * REC;
      if (le(w[o + S_HI]!, w[o + S_LO]!, eHi, eLo) && le(sHi, sLo, w[o + E_HI]!, w[o + E_LO]!)) return false;
    }
    if (lt(eHi, eLo, sHi, sLo)) return true; // an inverted range holds no mapping
    // … else the first one starting inside the range and ending beyond it.
    let split = false;
    let limHi = 0;
    let limLo = 0;
    this.seek(sHi, sLo, false);
    scan: for (let c = this.pc, i = this.pi; c < this.chunks.length; c++, i = 0) {
      const w = this.chunks[c]!;
      for (const n = this.counts[c]!; i < n; i++) {
        const o = i * REC;
        if (lt(eHi, eLo, w[o + S_HI]!, w[o + S_LO]!)) break scan;
        if (lt(eHi, eLo, w[o + E_HI]!, w[o + E_LO]!)) {
          split = true;
          limHi = w[o + S_HI]!;
          limLo = w[o + S_LO]!;
          break scan;
        }
      }
    }
    if (split && !partial) return false;
    // Remove the records starting in [start, end] (below the split's start) that end in [start, end].
    this.seek(sHi, sLo, false);
    const c0 = this.pc;
    const i0 = this.pi;
    if (split) this.seek(limHi, limLo, false);
    else this.seek(eHi, eLo, true);
    this.removeWhereEndIn(c0, i0, this.pc, this.pi, sHi, sLo, eHi, eLo);
    return !split;
  }

  /** Removes the records of positions [c0:i0, c1:i1) whose end lies in [s, e]. */
  private removeWhereEndIn(c0: number, i0: number, c1: number, i1: number, sHi: number, sLo: number, eHi: number, eLo: number): void {
    let removedAny = false;
    let firstTouched = -1;
    for (let c = c0; c <= c1 && c < this.chunks.length; c++) {
      const w = this.chunks[c]!;
      const n = this.counts[c]!;
      const from = c === c0 ? i0 : 0;
      const to = c === c1 ? i1 : n;
      if (to <= from) continue;
      let out = from;
      for (let i = from; i < to; i++) {
        const o = i * REC;
        const eh = w[o + E_HI]!;
        const el = w[o + E_LO]!;
        if (le(sHi, sLo, eh, el) && le(eh, el, eHi, eLo)) continue; // removed
        if (out !== i) w.copyWithin(out * REC, o, o + REC);
        out++;
      }
      if (out === to) continue;
      if (to < n) w.copyWithin(out * REC, to * REC, n * REC);
      const left = n - (to - out);
      this.total -= n - left;
      this.counts[c] = left;
      removedAny = true;
      if (firstTouched < 0) firstTouched = c;
      if (left > 0 && from === 0) {
        this.firstHi[c] = w[S_HI]!;
        this.firstLo[c] = w[S_LO]!;
      }
    }
    if (!removedAny) return;
    // Drop emptied chunks, then merge sparse neighbours so that chunks stay at least a quarter full on average.
    for (let c = Math.min(c1, this.chunks.length - 1); c >= firstTouched; c--) if (this.counts[c] === 0) this.dropChunk(c);
    const at = Math.min(firstTouched, this.chunks.length - 1);
    if (at >= 0) this.mergeAround(at);
    if (at + 1 < this.chunks.length) this.mergeAround(at + 1);
  }

  private dropChunk(c: number): void {
    this.chunks.splice(c, 1);
    this.counts.splice(c, 1);
    this.firstHi.splice(c, 1);
    this.firstLo.splice(c, 1);
  }

  /** Merges chunk `c` into a neighbour when both together fill at most half a chunk. */
  private mergeAround(c: number): void {
    const n = this.counts[c]!;
    if (n >= this.cap / 4) return;
    let into = -1;
    if (c + 1 < this.chunks.length && n + this.counts[c + 1]! <= this.cap / 2) into = c;
    else if (c > 0 && n + this.counts[c - 1]! <= this.cap / 2) into = c - 1;
    if (into < 0) return;
    const a = this.chunks[into]!;
    const na = this.counts[into]!;
    const nb = this.counts[into + 1]!;
    a.set(this.chunks[into + 1]!.subarray(0, nb * REC), na * REC);
    this.counts[into] = na + nb;
    this.dropChunk(into + 1);
  }

  /**
   * Inserts a mapping (after those with the same start), which the caller has checked
   * intersects none.
   */
  insert(sHi: number, sLo: number, eHi: number, eLo: number, pHi: number, pLo: number, flags: number): void {
    this.total++;
    if (this.chunks.length === 0) {
      this.chunks.push(new Uint32Array(this.cap * REC));
      this.counts.push(0);
      this.firstHi.push(sHi);
      this.firstLo.push(sLo);
    }
    this.seek(sHi, sLo, true);
    let c = this.pc;
    let i = this.pi;
    if (c === this.chunks.length || (i === 0 && c > 0 && this.counts[c - 1]! < this.cap)) {
      // After the last record of chunk c − 1: append there while it has room.
      c--;
      i = this.counts[c]!;
    }
    if (this.counts[c]! === this.cap) {
      if (i === this.cap || i === 0) {
        // At either end of a full chunk (ascending or descending fills): a new chunk, so that
        // sequential MAPs leave full chunks behind instead of half-full ones.
        const at = i === 0 ? c : c + 1;
        this.chunks.splice(at, 0, new Uint32Array(this.cap * REC));
        this.counts.splice(at, 0, 0);
        this.firstHi.splice(at, 0, sHi);
        this.firstLo.splice(at, 0, sLo);
        c = at;
        i = 0;
      } else {
        const half = this.cap >>> 1;
        const w = this.chunks[c]!;
        const right = new Uint32Array(this.cap * REC);
        right.set(w.subarray(half * REC, this.cap * REC));
        this.chunks.splice(c + 1, 0, right);
        this.counts.splice(c + 1, 0, this.cap - half);
        this.firstHi.splice(c + 1, 0, right[S_HI]!);
        this.firstLo.splice(c + 1, 0, right[S_LO]!);
        this.counts[c] = half;
        if (i > half) {
          c++;
          i -= half;
        }
      }
    }
    const w = this.chunks[c]!;
    const n = this.counts[c]!;
    const o = i * REC;
    if (i < n) w.copyWithin(o + REC, o, n * REC);
    w[o + S_HI] = sHi;
    w[o + S_LO] = sLo;
    w[o + E_HI] = eHi;
    w[o + E_LO] = eLo;
    w[o + P_HI] = pHi;
    w[o + P_LO] = pLo;
    w[o + FLAGS] = flags;
    this.counts[c] = n + 1;
    if (i === 0) {
      this.firstHi[c] = sHi;
      this.firstLo[c] = sLo;
    }
  }

  /** Removes every mapping. */
  clear(): void {
    this.chunks = [];
    this.counts = [];
    this.firstHi = [];
    this.firstLo = [];
    this.total = 0;
  }
}

/** Offsets of a record's words, for readers of {@link MappingTree.hitWords}. */
export const MAPPING = { S_HI, S_LO, E_HI, E_LO, P_HI, P_LO, FLAGS } as const;
