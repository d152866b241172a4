import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AreaIndex } from './area-index.js';

describe('AreaIndex', () => {
  it('finds, adds and removes as a Map keyed by IOVA, and lists areas in the order they were added', () => {
    const key = fc.oneof(fc.nat({ max: 200 }).map((i) => i * 0x2000), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
    const op = fc.record({ add: fc.boolean(), hi: fc.integer({ min: 0, max: 3 }), lo: key, count: fc.integer({ min: 1, max: 9 }), split: fc.boolean() });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 500 }), (ops) => {
        const x = new AreaIndex();
        const ref = new Map<string, { count: number; runs: number[] }>();
        for (const o of ops) {
          const k = `${o.hi}:${o.lo}`;
          const slot = x.find(o.hi, o.lo);
          expect(slot >= 0).toBe(ref.has(k));
          if (o.add && slot < 0) {
            const runs = o.split && o.count > 1 ? [0, 100, 1, 1, 300, o.count - 1] : [0, 100, o.count];
            x.add(o.hi, o.lo, o.count, 3, runs.length === 3 ? 100 : -1, runs.length === 3 ? undefined : runs);
            ref.set(k, { count: o.count, runs });
          } else if (!o.add && slot >= 0) {
            expect(x.count(slot)).toBe(ref.get(k)!.count);
            x.remove(slot);
            ref.delete(k);
          }
          expect(x.size).toBe(ref.size);
        }
        const listed = x.slots().map((s) => x.view(s));
        expect(listed.map((a) => `${a.hi}:${a.lo}`)).toEqual([...ref.keys()]);
        expect(listed.map((a) => a.runs)).toEqual([...ref.values()].map((v) => v.runs));
      }),
      { seed: 0xa2ea, numRuns: 200 },
    );
  });

  it('stays flat when one IOVA is mapped and unmapped over and over beside many live areas', () => {
    const x = new AreaIndex();
    for (let i = 0; i < 50_000; i++) x.add(0, i * 0x2000, 1, 3, i, undefined);
    for (let k = 0; k < 100_000; k++) {
      x.add(1, 0, 1, 3, 7, undefined);
      x.remove(x.find(1, 0));
    }
    expect(x.size).toBe(50_000);
    expect(x.find(1, 0)).toBe(-1);
    for (let i = 0; i < 50_000; i++) x.remove(x.find(0, i * 0x2000));
    expect(x.size).toBe(0);
    expect(x.slots()).toEqual([]);
  });
});
