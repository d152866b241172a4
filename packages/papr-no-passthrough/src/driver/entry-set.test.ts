import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EntrySet } from './entry-set.js';

describe('EntrySet', () => {
  it('answers overlap queries at word and chunk edges', () => {
    const s = new EntrySet();
    s.add(31, 2); // straddles words 0 and 1
    expect(s.any(0, 31)).toBe(false);
    expect(s.any(30, 2)).toBe(true);
    expect(s.any(32, 1)).toBe(true);
    expect(s.any(33, 100)).toBe(false);
    s.add(4095, 2); // straddles chunks 0 and 1
    expect(s.any(4094, 1)).toBe(false);
    expect(s.any(4096, 1)).toBe(true);
    expect(s.any(4097, 10_000)).toBe(false);
    s.delete(31, 2);
    expect(s.any(0, 4095)).toBe(false);
    s.add(2 ** 40 - 1, 1); // indices beyond 32 bits
    expect(s.any(2 ** 40 - 10, 20)).toBe(true);
    expect(s.any(2 ** 40, 4096 * 3)).toBe(false);
    s.clear();
    expect(s.any(0, 2 ** 41)).toBe(false);
  });

  it('keeps a few empty chunks for reuse and sweeps them once they are the majority', () => {
    const s = new EntrySet();
    s.add(0, 1);
    for (let i = 1; i <= 1000; i++) {
      s.add(i * 4096, 1);
      s.delete(i * 4096, 1);
    }
    expect(s.chunkCount).toBeLessThanOrEqual(66);
    expect(s.any(4096, 1000 * 4096)).toBe(false);
    for (let i = 1; i <= 1000; i++) s.add(i * 4096 + 7, 1);
    for (let i = 1; i <= 1000; i++) s.delete(i * 4096 + 7, 1);
    expect(s.chunkCount).toBeLessThanOrEqual(66);
    expect(s.any(0, 1)).toBe(true);
    expect(s.any(1, 2 ** 30)).toBe(false);
  });

  it('refuses to delete what it does not hold', () => {
    expect(() => {
      new EntrySet().delete(5, 1);
    }).toThrow(/not in the set/);
  });

  it('agrees with a plain set over random disjoint adds and deletes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 1, max: 5000 }), fc.boolean()), { maxLength: 40 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 26_000 }), fc.integer({ min: 1, max: 6000 })), { maxLength: 20 }), (ops, queries) => {
        const s = new EntrySet();
        const ref = new Set<number>();
        const live: [number, number][] = [];
        for (const [first, count, del] of ops) {
          if (del && live.length > 0) {
            const [f, c] = live.pop()!;
            s.delete(f, c);
            for (let i = f; i < f + c; i++) ref.delete(i);
            continue;
          }
          let free = true;
          for (let i = first; i < first + count; i++) if (ref.has(i)) free = false;
          expect(s.any(first, count)).toBe(!free);
          if (free) {
            s.add(first, count);
            for (let i = first; i < first + count; i++) ref.add(i);
            live.push([first, count]);
          }
        }
        for (const [first, count] of queries) {
          let hit = false;
          for (let i = first; i < first + count; i++) if (ref.has(i)) hit = true;
          expect(s.any(first, count)).toBe(hit);
        }
      }),
      { numRuns: 200 },
    );
  });
});
