import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAPPING, MappingTree } from './mapping-tree.js';

/**
 * The reference: a plain sorted list of bigint ranges with the checks MAP and UNMAP apply —
 * what the device kept before the chunked records (scans of every mapping).
 */
interface Ref {
  readonly start: bigint;
  readonly end: bigint;
  readonly phys: bigint;
  readonly flags: number;
}

class RefList {
  readonly list: Ref[] = [];

  find(a: bigint): Ref | undefined {
    let best: Ref | undefined;
    for (const m of this.list) if (m.start <= a) best = m;
    return best !== undefined && best.end >= a ? best : undefined;
  }

  intersects(start: bigint, end: bigint): boolean {
    return this.list.some((m) => m.start <= end && m.end >= start);
  }

  insert(m: Ref): void {
    let i = this.list.length;
    while (i > 0 && this.list[i - 1]!.start > m.start) i--;
    this.list.splice(i, 0, m);
  }

  unmap(start: bigint, end: bigint, partial: boolean): boolean {
    const inside: Ref[] = [];
    let split: Ref | undefined;
    for (const m of this.list) {
      if (m.end < start || m.start > end) continue;
      if (m.start >= start && m.end <= end) inside.push(m);
      else split ??= m;
    }
    const remove = (ms: Ref[]) => {
      for (const m of ms) this.list.splice(this.list.indexOf(m), 1);
    };
    if (split !== undefined) {
      if (partial) remove(inside.filter((m) => m.start < split.start));
      return false;
    }
    remove(inside);
    return true;
  }
}

const hi = (v: bigint) => Number(v >> 32n);
const lo = (v: bigint) => Number(v & 0xffffffffn);

function entries(t: MappingTree): string[] {
  return t.entries().map((m) => `${m.start}-${m.end}>${m.phys}/${m.flags}`);
}

function refEntries(r: RefList): string[] {
  return r.list.map((m) => `${m.start}-${m.end}>${m.phys}/${m.flags}`);
}

/** Addresses near a few points of the 64-bit space, so that ranges collide, nest and cross 4 GiB lines. */
const addr = fc.oneof(
  fc.bigInt({ min: 0n, max: 4000n }),
  fc.bigInt({ min: (1n << 32n) - 2000n, max: (1n << 32n) + 2000n }),
  fc.bigInt({ min: (1n << 64n) - 3000n, max: (1n << 64n) - 1n }),
);

const op = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('map' as const), start: addr, len: fc.bigInt({ min: -40n, max: 300n }), phys: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), flags: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('unmap' as const), start: addr, len: fc.bigInt({ min: -40n, max: 3000n }), partial: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('find' as const), at: addr }) },
);

const U64 = (1n << 64n) - 1n;
const clamp = (v: bigint) => (v < 0n ? 0n : v > U64 ? U64 : v);

describe('MappingTree', () => {
  it('answers find, intersects and unmap exactly as a sorted list does (inverted ranges and equal starts included)', () => {
    fc.assert(
      fc.property(fc.constantFrom(4, 8, 256), fc.array(op, { minLength: 1, maxLength: 400 }), (cap, ops) => {
        const t = new MappingTree(cap);
        const r = new RefList();
        for (const o of ops) {
          if (o.t === 'map') {
            const end = clamp(o.start + o.len);
            const hit = r.intersects(o.start, end);
            expect(t.intersects(hi(o.start), lo(o.start), hi(end), lo(end))).toBe(hit);
            if (!hit) {
              r.insert({ start: o.start, end, phys: o.phys, flags: o.flags });
              t.insert(hi(o.start), lo(o.start), hi(end), lo(end), hi(o.phys), lo(o.phys), o.flags);
            }
          } else if (o.t === 'unmap') {
            const end = clamp(o.start + o.len);
            expect(t.unmap(hi(o.start), lo(o.start), hi(end), lo(end), o.partial)).toBe(r.unmap(o.start, end, o.partial));
          } else {
            const m = r.find(o.at);
            const at = t.find(hi(o.at), lo(o.at));
            if (m === undefined) expect(at).toBe(-1);
            else {
              const w = t.hitWords;
              expect(at).toBeGreaterThanOrEqual(0);
              expect((BigInt(w[at + MAPPING.S_HI]!) << 32n) | BigInt(w[at + MAPPING.S_LO]!)).toBe(m.start);
              expect(w[at + MAPPING.FLAGS]).toBe(m.flags);
            }
          }
          expect(t.size).toBe(r.list.length);
        }
        expect(entries(t)).toEqual(refEntries(r));
      }),
      { seed: 0x5eed, numRuns: 300 },
    );
  });

  it('splits, merges and drops chunks: thousands of mappings in any order, then unmapped in pieces', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 300, max: 3000 }),
        fc.constantFrom('ascending', 'descending', 'shuffled'),
        fc.array(fc.record({ at: fc.nat({ max: 3000 }), pages: fc.integer({ min: 1, max: 600 }) }), { maxLength: 30 }),
        fc.integer(),
        (n, order, unmaps, seed) => {
          const t = new MappingTree();
          const r = new RefList();
          const idx = Array.from({ length: n }, (_, i) => i);
          if (order === 'descending') idx.reverse();
          if (order === 'shuffled') {
            let s = seed >>> 0;
            for (let i = n - 1; i > 0; i--) {
              s = (Math.imul(s, 1103515245) + 12345) >>> 0;
              const j = s % (i + 1);
              [idx[i], idx[j]] = [idx[j]!, idx[i]!];
            }
          }
          // Every other page, one page each, across a 4 GiB line.
          const base = (1n << 32n) - 0x400000n;
          for (const i of idx) {
            const start = base + BigInt(i) * 0x2000n;
            r.insert({ start, end: start + 0xfffn, phys: BigInt(i) << 12n, flags: 3 });
            t.insert(hi(start), lo(start), hi(start + 0xfffn), lo(start + 0xfffn), 0, i * 4096, 3);
          }
          expect(entries(t)).toEqual(refEntries(r));
          for (const u of unmaps) {
            const start = base + BigInt(u.at) * 0x2000n;
            const end = start + BigInt(u.pages) * 0x2000n - 0x1001n;
            expect(t.unmap(hi(start), lo(start), hi(end), lo(end), false)).toBe(r.unmap(start, end, false));
            expect(t.size).toBe(r.list.length);
          }
          expect(entries(t)).toEqual(refEntries(r));
          for (let i = 0; i < n; i += 97) {
            const a = base + BigInt(i) * 0x2000n + 0x800n;
            expect(t.find(hi(a), lo(a)) >= 0).toBe(r.find(a) !== undefined);
          }
          // Sequential fills leave full chunks: 28 bytes of record per mapping, and at most 2x that after removals.
          if (unmaps.length === 0 && order === 'ascending') expect(t.bytes).toBeLessThanOrEqual(Math.ceil(n / 256) * 256 * 28);
          expect(t.bytes).toBeLessThanOrEqual(Math.max(1, Math.ceil((t.size * 4) / 256) + 2) * 256 * 28);
        },
      ),
      { seed: 0xc4a2, numRuns: 40 },
    );
  });

  it("QEMU's partial UNMAP removes only the inside mappings starting below the one it splits", () => {
    for (const cap of [4, 256]) {
      const t = new MappingTree(cap);
      const r = new RefList();
      const add = (start: bigint, end: bigint) => {
        expect(t.intersects(hi(start), lo(start), hi(end), lo(end))).toBe(false);
        t.insert(hi(start), lo(start), hi(end), lo(end), 0, 0, 1);
        r.insert({ start, end, phys: 0n, flags: 1 });
      };
      add(0x2000n, 0x2fffn); // inside the UNMAP below
      add(0x3000n, 0x5fffn); // split by it
      add(0x4000n, 0x2800n); // inverted, starting inside the split one: inside the range, above the split
      add(0x5000n, 0x1000n); // likewise
      expect(t.unmap(0, 0x2000, 0, 0x4fff, true)).toBe(false);
      expect(r.unmap(0x2000n, 0x4fffn, true)).toBe(false);
      expect(entries(t)).toEqual(refEntries(r));
      expect(entries(t)).toEqual(['12288-24575>0/1', '16384-10240>0/1', '20480-4096>0/1']);
    }
  });

  it('a map/unmap pair at the end leaves the chunks as they were', () => {
    const t = new MappingTree();
    for (let i = 0; i < 10_000; i++) t.insert(0, i * 0x2000, 0, i * 0x2000 + 0xfff, 0, i * 4096, 3);
    const bytes = t.bytes;
    for (let k = 0; k < 100; k++) {
      expect(t.intersects(1, 0, 1, 0xfff)).toBe(false);
      t.insert(1, 0, 1, 0xfff, 0, 0, 3);
      expect(t.unmap(1, 0, 1, 0xfff, false)).toBe(true);
    }
    expect(t.size).toBe(10_000);
    expect(t.bytes).toBe(bytes);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.find(0, 0)).toBe(-1);
  });
});
