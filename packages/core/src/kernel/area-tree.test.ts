import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AreaTree, type Range } from './area-tree.js';

/** The reference: a plain sorted array of disjoint ranges. */
class SortedRanges {
  items: Range[] = [];
  overlapping(start: bigint, last: bigint): Range[] {
    return this.items.filter((r) => r.start <= last && start <= r.last);
  }
  insert(r: Range): void {
    this.items.push(r);
    this.items.sort((a, b) => (a.start < b.start ? -1 : 1));
  }
  remove(start: bigint): boolean {
    const i = this.items.findIndex((r) => r.start === start);
    if (i >= 0) this.items.splice(i, 1);
    return i >= 0;
  }
  find(addr: bigint): Range | undefined {
    return this.items.find((r) => r.start <= addr && addr <= r.last);
  }
  /** Lowest aligned `a` with [a, a+length-1] inside [lo, hi] and free: tried at each gap's first aligned address. */
  findHole(lo: bigint, hi: bigint, length: bigint, align: bigint): bigint | undefined {
    const up = (v: bigint) => ((v + align - 1n) / align) * align;
    const candidates = [lo, ...this.items.map((r) => r.last + 1n)].filter((c) => c >= lo).map(up);
    candidates.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const c of candidates) {
      const last = c + length - 1n;
      if (last > hi) continue;
      if (this.overlapping(c, last).length === 0) return c;
    }
    return undefined;
  }
}

type Op =
  | { readonly k: 'insert'; readonly start: number; readonly len: number }
  | { readonly k: 'remove'; readonly pick: number; readonly existing: boolean }
  | { readonly k: 'query'; readonly a: number; readonly b: number; readonly len: number; readonly alignLog: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('insert' as const), start: fc.nat(4096), len: fc.integer({ min: 1, max: 96 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('remove' as const), pick: fc.nat(1000), existing: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('query' as const), a: fc.nat(4300), b: fc.nat(4300), len: fc.integer({ min: 1, max: 200 }), alignLog: fc.nat(6),
    }),
  },
);

function check(tree: AreaTree<Range>, ref: SortedRanges, base: bigint, o: Op): void {
  switch (o.k) {
    case 'insert': {
      const r = { start: base + BigInt(o.start), last: base + BigInt(o.start + o.len - 1) };
      const clash = ref.overlapping(r.start, r.last).length > 0;
      expect(tree.intersects(r.start, r.last)).toBe(clash);
      if (!clash) {
        tree.insert(r);
        ref.insert(r);
      }
      break;
    }
    case 'remove': {
      const start = o.existing && ref.items.length > 0 ? ref.items[o.pick % ref.items.length]!.start : base + BigInt(o.pick);
      expect(tree.remove({ start, last: start })).toBe(ref.remove(start));
      break;
    }
    case 'query': {
      const lo = base + BigInt(Math.min(o.a, o.b));
      const hi = base + BigInt(Math.max(o.a, o.b));
      expect(tree.overlaps(lo, hi)).toEqual(ref.overlapping(lo, hi));
      expect(tree.intersects(lo, hi)).toBe(ref.overlapping(lo, hi).length > 0);
      const collected: Range[] = [];
      tree.forEachOverlap(lo, hi, (r) => collected.push(r));
      expect(collected).toEqual(ref.overlapping(lo, hi));
      const align = 1n << BigInt(o.alignLog);
      expect(tree.findHole(lo, hi, BigInt(o.len), align)).toBe(ref.findHole(lo, hi, BigInt(o.len), align));
      for (const addr of [lo, hi, lo - 1n, hi + 1n]) expect(tree.find(addr)).toBe(ref.find(addr));
      break;
    }
  }
  // after every step: the same ranges, in order, and every boundary found
  expect(tree.size).toBe(ref.items.length);
  expect(tree.items()).toEqual(ref.items);
  for (const r of ref.items) {
    expect(tree.find(r.start)).toBe(r);
    expect(tree.find(r.last)).toBe(r);
    expect(tree.find(r.start - 1n)).toBe(ref.find(r.start - 1n));
    expect(tree.find(r.last + 1n)).toBe(ref.find(r.last + 1n));
  }
}

describe('AreaTree (the IOAS area bookkeeping) against a sorted array', () => {
  it('property: insert/remove/find/overlaps/intersects/findHole agree with a sorted array after every step', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0n, 1n << 40n, (1n << 64n) - (1n << 14n)),
        fc.array(op, { minLength: 1, maxLength: 80 }),
        (base, ops) => {
          const tree = new AreaTree<Range>();
          const ref = new SortedRanges();
          for (const o of ops) check(tree, ref, base, o);
        },
      ),
      { seed: 0x10a51d, numRuns: 150 },
    );
  });

  it('findHole: the lowest aligned fit, between ranges, at the window edges, or none', () => {
    const t = new AreaTree<Range>();
    for (const [s, l] of [[0x1000n, 0x1fffn], [0x3000n, 0x3fffn], [0x8000n, 0x8fffn]] as const) t.insert({ start: s, last: l });
    expect(t.findHole(0x1000n, 0xffffn, 0x1000n, 0x1000n)).toBe(0x2000n);
    expect(t.findHole(0x1000n, 0xffffn, 0x2000n, 0x1000n)).toBe(0x4000n);
    expect(t.findHole(0x1000n, 0xffffn, 0x2000n, 0x4000n)).toBe(0x4000n);
    expect(t.findHole(0x1000n, 0xffffn, 0x4000n, 0x4000n)).toBe(0x4000n);
    expect(t.findHole(0x1000n, 0xffffn, 0x5000n, 0x1000n)).toBe(0x9000n);
    expect(t.findHole(0x1000n, 0xdfffn, 0x5000n, 0x1000n)).toBe(0x9000n);
    expect(t.findHole(0x1000n, 0xdffen, 0x5000n, 0x1000n)).toBeUndefined();
    expect(t.findHole(0x0n, 0xfffn, 0x1000n, 0x1000n)).toBe(0n);
  });

  it('stays balanced: a million-byte-apart sequence of 4096 inserts keeps the height logarithmic', () => {
    const t = new AreaTree<Range>();
    for (let i = 0; i < 4096; i++) t.insert({ start: BigInt(i) << 20n, last: (BigInt(i) << 20n) + 0xfffn });
    const root = t['root'];
    expect(root?.height).toBeLessThanOrEqual(Math.ceil(1.45 * Math.log2(4096 + 2)));
    for (let i = 0; i < 4096; i += 2) t.remove({ start: BigInt(i) << 20n, last: 0n });
    expect(t.size).toBe(2048);
    expect(t['root']?.height).toBeLessThanOrEqual(Math.ceil(1.45 * Math.log2(2048 + 2)));
  });
});
