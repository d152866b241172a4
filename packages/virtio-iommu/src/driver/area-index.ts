/**
 * The driver's record of a paging domain's MAP areas, by IOVA — what Linux keeps in
 * `vdomain->mappings` to replay them. Areas live in typed-array slots found through an
 * open-addressed hash of the IOVA's 32-bit halves (linear probing, deletion by backward shift:
 * no tombstones). A JS Map keyed by IOVA would do the same job, but mapping and unmapping one
 * IOVA over and over leaves a deleted entry behind each time in the key's bucket chain until the
 * next rehash, and lookups of that IOVA slow down with the number of live areas.
 */

/** One area: pages, MAP flags, and its runs of physically contiguous pages. */
export interface AreaView {
  /** Slot (valid until the area is removed). */
  readonly slot: number;
  /** IOVA high and low halves. */
  readonly hi: number;
  readonly lo: number;
  /** Pages. */
  readonly count: number;
  /** VIRTIO_IOMMU_MAP_F_*. */
  readonly flags: number;
  /** Triples: first page index, first pfn, pages. */
  readonly runs: readonly number[];
}

const EMPTY = 0;

/** Areas by IOVA. */
export class AreaIndex {
  private buckets = new Int32Array(16); // slot + 1, or EMPTY
  /** 32 − log2(buckets): the hash keeps the product's top bits (Fibonacci hashing). */
  private shift = 28;
  private keyHi = new Uint32Array(8);
  private keyLo = new Uint32Array(8);
  private counts = new Float64Array(8);
  private flagsOf = new Uint8Array(8);
  /** First pfn of a one-run area; -1 when `runs` holds its runs. */
  private pfns = new Float64Array(8);
  /** Insertion sequence (replays go in mapping order). */
  private seqs = new Float64Array(8);
  private runs: (readonly number[] | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private used = 0;
  private live = 0;
  private seq = 0;

  /** Areas held. */
  get size(): number {
    return this.live;
  }

  private home(hi: number, lo: number): number {
    return Math.imul(lo ^ Math.imul(hi, 0x27d4eb2f), 0x9e3779b1) >>> this.shift;
  }

  /** The slot of the area at `hi:lo`, or -1. */
  find(hi: number, lo: number): number {
    const b = this.bucketOf(hi, lo);
    return b < 0 ? -1 : this.buckets[b]! - 1;
  }

  private bucketOf(hi: number, lo: number): number {
    const buckets = this.buckets;
    const mask = buckets.length - 1;
    for (let b = this.home(hi, lo); ; b = (b + 1) & mask) {
      const s = buckets[b]! - 1;
      if (s < 0) return -1;
      if (this.keyLo[s] === lo && this.keyHi[s] === hi) return b;
    }
  }

  /** Pages of the area in `slot`. */
  count(slot: number): number {
    return this.counts[slot]!;
  }

  /** The area in `slot`. */
  view(slot: number): AreaView {
    const pfn = this.pfns[slot]!;
    const count = this.counts[slot]!;
    return {
      slot, hi: this.keyHi[slot]!, lo: this.keyLo[slot]!, count, flags: this.flagsOf[slot]!,
      runs: pfn >= 0 ? [0, pfn, count] : this.runs[slot]!,
    };
  }

  /** Adds an area at `hi:lo` (not present): one run from `pfn`, or `runs` (pfn -1). */
  add(hi: number, lo: number, count: number, flags: number, pfn: number, runs: readonly number[] | undefined): void {
    if ((this.live + 1) * 2 > this.buckets.length) this.rehash(this.buckets.length * 2);
    let s = this.freeSlots.pop();
    if (s === undefined) {
      if (this.used === this.keyHi.length) this.growSlots();
      s = this.used++;
    }
    this.keyHi[s] = hi;
    this.keyLo[s] = lo;
    this.counts[s] = count;
    this.flagsOf[s] = flags;
    this.pfns[s] = pfn;
    this.seqs[s] = this.seq++;
    this.runs[s] = runs;
    this.place(s);
    this.live++;
  }

  private place(s: number): void {
    const buckets = this.buckets;
    const mask = buckets.length - 1;
    let b = this.home(this.keyHi[s]!, this.keyLo[s]!);
    while (buckets[b] !== EMPTY) b = (b + 1) & mask;
    buckets[b] = s + 1;
  }

  /** Removes the area in `slot`. */
  remove(slot: number): void {
    const buckets = this.buckets;
    const mask = buckets.length - 1;
    let hole = this.bucketOf(this.keyHi[slot]!, this.keyLo[slot]!);
    // Backward-shift deletion: pull later members of the probe run into the hole when their home allows it.
    for (let b = (hole + 1) & mask; buckets[b] !== EMPTY; b = (b + 1) & mask) {
      const t = buckets[b]! - 1;
      const h = this.home(this.keyHi[t]!, this.keyLo[t]!);
      const stays = hole <= b ? h > hole && h <= b : h > hole || h <= b;
      if (!stays) {
        buckets[hole] = buckets[b]!;
        hole = b;
      }
    }
    buckets[hole] = EMPTY;
    this.runs[slot] = undefined;
    this.freeSlots.push(slot);
    this.live--;
    if (buckets.length > 16 && this.live * 8 < buckets.length) this.rehash(buckets.length / 2);
  }

  /** Every area's slot, in the order the areas were added. */
  slots(): number[] {
    const out: number[] = [];
    const buckets = this.buckets;
    for (let b = 0; b < buckets.length; b++) if (buckets[b] !== EMPTY) out.push(buckets[b]! - 1);
    return out.sort((x, y) => this.seqs[x]! - this.seqs[y]!);
  }

  private growSlots(): void {
    const n = this.keyHi.length * 2;
    const grow = <T extends Uint32Array | Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.keyHi = grow(this.keyHi, (k) => new Uint32Array(k));
    this.keyLo = grow(this.keyLo, (k) => new Uint32Array(k));
    this.counts = grow(this.counts, (k) => new Float64Array(k));
    this.flagsOf = grow(this.flagsOf, (k) => new Uint8Array(k));
    this.pfns = grow(this.pfns, (k) => new Float64Array(k));
    this.seqs = grow(this.seqs, (k) => new Float64Array(k));
  }

  private rehash(size: number): void {
    const old = this.buckets;
    this.buckets = new Int32Array(size);
    this.shift = 32 - Math.log2(size);
    for (let b = 0; b < old.length; b++) if (old[b] !== EMPTY) this.place(old[b]! - 1);
  }
}
