/**
 * The mappings of a domain's anonymous context: non-overlapping inclusive ranges created one
 * per MAP request, sorted by start. Request handling works in bigints; the DMA path looks
 * addresses up by their high/low 32-bit halves without allocating.
 */

/** One MAP request's mapping. */
export interface Mapping {
  /** virt_start. */
  readonly start: bigint;
  /** virt_end (inclusive). */
  readonly end: bigint;
  /** phys_start. */
  readonly phys: bigint;
  /** VIRTIO_IOMMU_MAP_F_*. */
  readonly flags: number;
  /** virt_start bits 63:32 and 31:0. */
  readonly startHi: number;
  /** virt_start low half. */
  readonly startLo: number;
  /** virt_end high half. */
  readonly endHi: number;
  /** virt_end low half. */
  readonly endLo: number;
  /** phys_start as a number (exact below 2^53; larger addresses are beyond any memory). */
  readonly physNum: number;
}

const TWO32 = 0x100000000;

/** Builds a mapping record. */
export function makeMapping(start: bigint, end: bigint, phys: bigint, flags: number): Mapping {
  return {
    start, end, phys, flags,
    startHi: Number(start >> 32n), startLo: Number(start & 0xffffffffn),
    endHi: Number(end >> 32n), endLo: Number(end & 0xffffffffn),
    physNum: Number(phys),
  };
}

/** The sorted mapping list of one domain. */
export class MappingTree {
  private readonly list: Mapping[] = [];

  /** Number of mappings. */
  get size(): number {
    return this.list.length;
  }

  /** Every mapping, ascending. */
  entries(): readonly Mapping[] {
    return this.list;
  }

  /** The mapping containing the address `hi:lo`, if any (no allocation). */
  find(hi: number, lo: number): Mapping | undefined {
    const list = this.list;
    let a = 0;
    let b = list.length - 1;
    let best = -1;
    while (a <= b) {
      const mid = (a + b) >>> 1;
      const m = list[mid]!;
      if (m.startHi < hi || (m.startHi === hi && m.startLo <= lo)) {
        best = mid;
        a = mid + 1;
      } else b = mid - 1;
    }
    if (best < 0) return undefined;
    const m = list[best]!;
    return m.endHi > hi || (m.endHi === hi && m.endLo >= lo) ? m : undefined;
  }

  /** The mapping containing a number address (IPAs, exact below 2^53). */
  findNumber(addr: number): Mapping | undefined {
    return this.find(Math.floor(addr / TWO32), addr >>> 0);
  }

  /** True when some mapping intersects `[start, end]`. */
  intersects(start: bigint, end: bigint): boolean {
    for (const m of this.list) if (m.start <= end && m.end >= start) return true;
    return false;
  }

  /** The mappings wholly inside `[start, end]`, and the first one the range would split. */
  covered(start: bigint, end: bigint): { readonly inside: Mapping[]; readonly split: Mapping | undefined } {
    const inside: Mapping[] = [];
    let split: Mapping | undefined;
    for (const m of this.list) {
      if (m.end < start || m.start > end) continue;
      if (m.start >= start && m.end <= end) inside.push(m);
      else split ??= m;
    }
    return { inside, split };
  }

  /** Inserts a mapping that intersects none. */
  insert(m: Mapping): void {
    let i = this.list.length;
    while (i > 0 && this.list[i - 1]!.start > m.start) i--;
    this.list.splice(i, 0, m);
  }

  /** Removes mappings. */
  remove(ms: readonly Mapping[]): void {
    for (const m of ms) {
      const i = this.list.indexOf(m);
      if (i >= 0) this.list.splice(i, 1);
    }
  }

  /** Removes every mapping. */
  clear(): void {
    this.list.length = 0;
  }
}
