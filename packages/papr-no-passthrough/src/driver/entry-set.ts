/**
 * Which TCEs of one DMA window a domain's mappings hold: a sparse bitmap in chunks of 4096
 * entries (512 bytes each, made on first use; empty ones are kept for reuse and swept once
 * they outnumber the others), so that a map checks for overlap in time proportional to its own
 * length, not to the number of live mappings.
 */

/** Entries per chunk (a power of two). */
const CHUNK = 4096;
/** 32-bit words of bits per chunk; one more word counts the chunk's set bits. */
const WORDS = CHUNK / 32;
/** Empty chunks kept before a sweep is considered. */
const KEEP_EMPTY = 64;

/** The mask of bits `[from, to]` (inclusive, 0..31) of a 32-bit word. */
function bits(from: number, to: number): number {
  return ((0xffffffff << from) & (0xffffffff >>> (31 - to))) >>> 0;
}

/** A set of TCE indices (0 ≤ index < 2^52). */
export class EntrySet {
  private readonly chunks = new Map<number, Uint32Array>();
  /** Chunks with no bit set. */
  private empty = 0;

  /**
   * True when some index of `[first, first + count)` is in the set. Costs the smaller of the
   * range's chunks and the set's chunks, plus the words of the chunks it looks into.
   */
  any(first: number, count: number): boolean {
    const end = first + count;
    const k0 = Math.floor(first / CHUNK);
    const k1 = Math.floor((end - 1) / CHUNK);
    if (k1 - k0 >= this.chunks.size) {
      for (const [key, c] of this.chunks) if (key >= k0 && key <= k1 && this.anyIn(c, key, first, end)) return true;
      return false;
    }
    for (let key = k0; key <= k1; key++) {
      const c = this.chunks.get(key);
      if (c !== undefined && this.anyIn(c, key, first, end)) return true;
    }
    return false;
  }

  /** True when chunk `key` (bits `c`) holds some index of `[first, end)`. */
  private anyIn(c: Uint32Array, key: number, first: number, end: number): boolean {
    const base = key * CHUNK;
    const a = Math.max(first, base) - base;
    const b = Math.min(end, base + CHUNK) - base - 1;
    const wa = a >>> 5;
    const wb = b >>> 5;
    for (let w = wa; w <= wb; w++) {
      const m = bits(w === wa ? a & 31 : 0, w === wb ? b & 31 : 31);
      if ((c[w]! & m) !== 0) return true;
    }
    return false;
  }

  /** Adds `[first, first + count)`, none of which is in the set yet. */
  add(first: number, count: number): void {
    this.update(first, count, true);
  }

  /** Removes `[first, first + count)`, all of which is in the set. */
  delete(first: number, count: number): void {
    this.update(first, count, false);
  }

  /** Empties the set. */
  clear(): void {
    this.chunks.clear();
    this.empty = 0;
  }

  private update(first: number, count: number, add: boolean): void {
    const end = first + count;
    for (let i = first; i < end; ) {
      const key = Math.floor(i / CHUNK);
      const base = key * CHUNK;
      const stop = Math.min(end, base + CHUNK);
      let c = this.chunks.get(key);
      if (c === undefined) {
        if (!add) throw new Error(`EntrySet: entries ${i}..${stop - 1} are not in the set`);
        this.chunks.set(key, (c = new Uint32Array(WORDS + 1)));
        this.empty++;
      }
      if (add && c[WORDS] === 0) this.empty--;
      const a = i - base;
      const b = stop - base - 1;
      const wa = a >>> 5;
      const wb = b >>> 5;
      for (let w = wa; w <= wb; w++) {
        const m = bits(w === wa ? a & 31 : 0, w === wb ? b & 31 : 31);
        c[w] = add ? c[w]! | m : c[w]! & ~m;
      }
      if ((c[WORDS]! += add ? stop - i : i - stop) === 0) this.empty++;
      i = stop;
    }
    if (this.empty > KEEP_EMPTY && this.empty * 2 > this.chunks.size) this.sweep();
  }

  /** Drops the empty chunks (amortised: it runs after at least half the chunks emptied). */
  private sweep(): void {
    for (const [key, c] of this.chunks) if (c[WORDS] === 0) this.chunks.delete(key);
    this.empty = 0;
  }

  /** Chunks held (for tests). */
  get chunkCount(): number {
    return this.chunks.size;
  }
}
