import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TagCache, alignDown } from './tag-cache.js';
import { PAGES_PER_SIZE, cacheTag, tagDid, tagPasid } from './tags.js';

/** The reference: a Map with the same "drop everything when full" rule. */
class Model {
  readonly m = new Map<string, { tag: number; key: number; size: number; value: number; perm: number }>();
  constructor(readonly capacity: number) {}
  private id(tag: number, key: number, size: number): string {
    return `${tag}/${size}/${key}`;
  }
  find(tag: number, key: number, size: number) {
    return this.m.get(this.id(tag, key, size));
  }
  insert(tag: number, key: number, size: number, value: number, perm: number): void {
    const id = this.id(tag, key, size);
    if (!this.m.has(id) && this.m.size >= this.capacity) this.m.clear();
    this.m.set(id, { tag, key, size, value, perm });
  }
  removeWhere(drop: (tag: number, key: number, size: number) => boolean): void {
    for (const [id, e] of this.m) if (drop(e.tag, e.key, e.size)) this.m.delete(id);
  }
}

// a key is the first page of its block of PAGES_PER_SIZE[size] pages
const overlaps = (key: number, size: number, first: number, pages: number) => key <= first + pages - 1 && key + PAGES_PER_SIZE[size]! > first;

// Few tags and keys so that probe runs collide, wrap and get shifted by deletions; keys above
// 2^32 share their low bits (and so their home slots) with small ones.
const tagArb = fc.constantFrom(cacheTag(1, 0), cacheTag(1, 5), cacheTag(2, 0), cacheTag(2049, 0), cacheTag(65535, 1048576));
const keyArb = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 3 }).map((k) => 2 ** 32 * 3 + k), fc.constant(2 ** 52 - 1));
const sizeArb = fc.integer({ min: 0, max: 2 });
/** A key aligned to its block of PAGES_PER_SIZE[size] pages, as the IOTLB and the paging-structure cache make them. */
const blockArb = fc.tuple(keyArb, sizeArb).map(([k, size]) => {
  const n = PAGES_PER_SIZE[size]!;
  return { key: k <= 40 ? k * n : alignDown(k, n), size };
});
/** Range starts among the small keys (so that edges land on entries) or anywhere. */
const firstArb = fc.oneof(fc.integer({ min: 0, max: 44 }), fc.integer({ min: 0, max: 600 }));
const opArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant('insert' as const), tag: tagArb, block: blockArb, value: fc.integer({ min: 0, max: 2 ** 40 }), perm: fc.integer({ min: 0, max: 31 }) }),
  },
  fc.record({ op: fc.constant('remove' as const), tag: tagArb, block: blockArb }),
  { weight: 4, arbitrary: fc.record({ op: fc.constant('removeLive' as const), pick: fc.nat() }) },
  // a range that starts, ends or sits just around a live entry's block
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('removeAround' as const),
      pick: fc.nat(),
      shift: fc.integer({ min: -2, max: 2 }),
      pages: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 100, max: 700 })), // probed, or scanned
      anchorEnd: fc.boolean(),
    }),
  },
  fc.record({ op: fc.constant('removeTag' as const), tag: tagArb }),
  fc.record({ op: fc.constant('removeDid' as const), tag: tagArb }),
  fc.record({ op: fc.constant('removeTagRange' as const), tag: tagArb, first: firstArb, pages: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 2000 })) }),
  fc.record({ op: fc.constant('removeDidRange' as const), tag: tagArb, first: firstArb, pages: fc.integer({ min: 1, max: 2000 }) }),
  fc.record({ op: fc.constant('clear' as const) }),
);

describe('TagCache', () => {
  it('behaves as a map that drops everything when full, under any sequence of operations', () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 14 }), fc.array(opArb, { minLength: 10, maxLength: 150, size: 'max' }), (capacity, ops) => {
        const c = new TagCache(capacity);
        const m = new Model(capacity);
        for (const o of ops) {
          switch (o.op) {
            case 'insert':
              c.insert(o.tag, o.block.key, o.block.size, o.value, o.perm);
              m.insert(o.tag, o.block.key, o.block.size, o.value, o.perm);
              break;
            case 'remove':
              c.remove(o.tag, o.block.key, o.block.size);
              m.removeWhere((t, k, s) => t === o.tag && k === o.block.key && s === o.block.size);
              break;
            case 'removeLive': {
              // an entry that is there, so that deletions shift probe runs
              const live = [...m.m.values()];
              const e = live[o.pick % Math.max(1, live.length)];
              if (e === undefined) break;
              c.remove(e.tag, e.key, e.size);
              m.removeWhere((t, k, s) => t === e.tag && k === e.key && s === e.size);
              break;
            }
            case 'removeAround': {
              const live = [...m.m.values()];
              const e = live[o.pick % Math.max(1, live.length)];
              if (e === undefined) break;
              const first = Math.max(0, (o.anchorEnd ? e.key - o.pages + 1 : e.key) + o.shift);
              c.removeTagRange(e.tag, first, o.pages, PAGES_PER_SIZE);
              m.removeWhere((t, k, s) => t === e.tag && overlaps(k, s, first, o.pages));
              break;
            }
            case 'removeTag':
              c.removeTag(o.tag);
              m.removeWhere((t) => t === o.tag);
              break;
            case 'removeDid':
              c.removeDid(tagDid(o.tag));
              m.removeWhere((t) => tagDid(t) === tagDid(o.tag));
              break;
            case 'removeTagRange':
              c.removeTagRange(o.tag, o.first, o.pages, PAGES_PER_SIZE);
              m.removeWhere((t, k, s) => t === o.tag && overlaps(k, s, o.first, o.pages));
              break;
            case 'removeDidRange':
              c.removeDidRange(tagDid(o.tag), o.first, o.pages, PAGES_PER_SIZE);
              m.removeWhere((t, k, s) => tagDid(t) === tagDid(o.tag) && (tagPasid(t) !== 0 || overlaps(k, s, o.first, o.pages)));
              break;
            case 'clear':
              c.clear();
              m.m.clear();
              break;
          }
          expect(c.size).toBe(m.m.size);
          for (const e of m.m.values()) {
            expect(c.find(e.tag, e.key, e.size)).toBe(true);
            expect([c.value, c.perm]).toEqual([e.value, e.perm]);
          }
        }
        // Nothing beyond the model is found either.
        for (const tag of [cacheTag(1, 0), cacheTag(2, 0), cacheTag(2049, 0)]) {
          for (let k = 0; k <= 40; k++) {
            for (let size = 0; size < 3; size++) {
              const key = k * PAGES_PER_SIZE[size]!;
              expect(c.find(tag, key, size)).toBe(m.find(tag, key, size) !== undefined);
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a global flush is O(1): the generation moves on and old slots read as empty', () => {
    const c = new TagCache(1024);
    for (let k = 0; k < 1000; k++) c.insert(cacheTag(3, 0), k, 0, k * 4096, 3);
    c.clear();
    expect(c.size).toBe(0);
    expect(c.find(cacheTag(3, 0), 7, 0)).toBe(false);
    c.insert(cacheTag(3, 0), 7, 0, 0x1000, 1);
    expect(c.find(cacheTag(3, 0), 7, 0)).toBe(true);
    expect(c.value).toBe(0x1000);
  });
});
