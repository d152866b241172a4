import { describe, expect, it } from 'vitest';
import { CdCache, SteCache } from './config-cache.js';
import type { ContextConfig, StreamConfig } from './config.js';
import { PERM_R_USER, PERM_W_USER, TLB_KIND_S1, TLB_KIND_S1_GLOBAL, TLB_KIND_S2, Tlb } from './tlb.js';

const hiOf = (va: number) => Math.floor(va / 2 ** 32);
const loOf = (va: number) => va >>> 0;

describe('Tlb (set-associative, typed arrays)', () => {
  it('finds a translation only in its own context, at any address inside the leaf', () => {
    const tlb = new Tlb(64);
    const a = tlb.context(TLB_KIND_S1, 1, 5);
    const b = tlb.context(TLB_KIND_S1, 1, 6);
    expect(tlb.context(TLB_KIND_S1, 1, 5)).toBe(a);
    const va = 0x12_3456_7000; // above 2^32: the high word takes part in the key
    tlb.insert(a, hiOf(va), loOf(va), 0, 12, 0x8000_0000, PERM_R_USER);
    const i = tlb.lookup(a, hiOf(va), loOf(va + 0xabc), 0);
    expect(i).toBeGreaterThanOrEqual(0);
    expect([tlb.pa(i), tlb.shiftAt(i), tlb.permsAt(i)]).toEqual([0x8000_0000, 12, PERM_R_USER]);
    expect(tlb.lookup(b, hiOf(va), loOf(va), 0)).toBe(-1);
    expect(tlb.lookup(a, hiOf(va), loOf(va + 0x1000), 0)).toBe(-1);
    expect(tlb.lookup(a, hiOf(va), loOf(va), 1)).toBe(-1); // the TTB1 half is another key
    // A 2 MiB block: every page inside hits it.
    tlb.insert(a, 0, 0x4020_0000, 0, 21, 0x1_0000_0000, PERM_R_USER | PERM_W_USER);
    const j = tlb.lookup(a, 0, 0x403f_f000, 0);
    expect([tlb.pa(j), tlb.shiftAt(j)]).toEqual([0x1_0000_0000, 21]);
    expect(tlb.size).toBe(2);
  });

  it('holds at most its capacity; the newest entry of a full set is kept', () => {
    const tlb = new Tlb(8); // 2 sets of 4 ways
    const c = tlb.context(TLB_KIND_S2, 3, 0);
    for (let p = 0; p < 100; p++) tlb.insert(c, 0, p * 4096, 0, 12, p * 4096, PERM_R_USER);
    expect(tlb.size).toBe(8);
    expect(tlb.lookup(c, 0, 99 * 4096, 0)).toBeGreaterThanOrEqual(0);
    // Re-inserting the same translation replaces it instead of taking a second way.
    tlb.insert(c, 0, 99 * 4096, 0, 12, 0x5000, PERM_R_USER);
    expect(tlb.size).toBe(8);
    expect(tlb.pa(tlb.lookup(c, 0, 99 * 4096, 0))).toBe(0x5000);
  });

  it('a range invalidation removes the overlapping leaves only (probing few pages, scanning many)', () => {
    const tlb = new Tlb(4096);
    const c = tlb.context(TLB_KIND_S1, 0, 1);
    const other = tlb.context(TLB_KIND_S1, 0, 2);
    for (let p = 0; p < 64; p++) {
      tlb.insert(c, 0, p * 4096, 0, 12, p * 4096, PERM_R_USER);
      tlb.insert(other, 0, p * 4096, 0, 12, p * 4096, PERM_R_USER);
    }
    tlb.insert(c, 0, 0x20_0000, 0, 21, 0x20_0000, PERM_R_USER);
    const asid1 = (k: number, _v: number, a: number) => k === TLB_KIND_S1 && a === 1;
    // Pages 2-3 (two probes): 1 and 4 stay.
    tlb.invalidateRange(asid1, 2 * 4096, 2 * 4096);
    expect([1, 2, 3, 4].map((p) => tlb.lookup(c, 0, p * 4096, 0) >= 0)).toEqual([true, false, false, true]);
    // Pages 10-59 (more than 8 pages: a scan), and a byte inside the 2 MiB block.
    tlb.invalidateRange(asid1, 10 * 4096, 50 * 4096);
    expect([9, 10, 59, 60].map((p) => tlb.lookup(c, 0, p * 4096, 0) >= 0)).toEqual([true, false, false, true]);
    expect(tlb.lookup(c, 0, 0x20_0000, 0)).toBeGreaterThanOrEqual(0);
    tlb.invalidateRange(asid1, 0x3f_f000, 1);
    expect(tlb.lookup(c, 0, 0x20_0000, 0)).toBe(-1);
    expect(tlb.lookup(other, 0, 20 * 4096, 0)).toBeGreaterThanOrEqual(0); // ASID 2 untouched
    expect(tlb.size).toBe(64 + 64 - 2 - 50);
  });

  it('an address at or above 2^63 removes the TTB1 entries; contexts go by predicate or all at once', () => {
    const tlb = new Tlb(256);
    const c = tlb.context(TLB_KIND_S1, 4, 9);
    const g = tlb.context(TLB_KIND_S1_GLOBAL, 4, 0);
    tlb.insert(c, 0xffff, 0xffff_f000, 1, 12, 0x1000, PERM_R_USER);
    tlb.insert(c, 0, 0x1000, 0, 12, 0x2000, PERM_R_USER);
    tlb.insert(g, 0, 0x3000, 0, 12, 0x3000, PERM_R_USER);
    tlb.invalidateRange(() => true, 2 ** 63, 4096);
    expect(tlb.lookup(c, 0xffff, 0xffff_f000, 1)).toBe(-1);
    expect(tlb.lookup(c, 0, 0x1000, 0)).toBeGreaterThanOrEqual(0);
    tlb.invalidateWhere((k) => k === TLB_KIND_S1);
    expect(tlb.lookup(c, 0, 0x1000, 0)).toBe(-1);
    expect(tlb.lookup(g, 0, 0x3000, 0)).toBeGreaterThanOrEqual(0);
    tlb.insert(c, 0, 0x1000, 0, 12, 0x2000, PERM_R_USER); // the context is usable again
    expect(tlb.size).toBe(2);
    tlb.invalidateAll();
    expect([tlb.lookup(c, 0, 0x1000, 0), tlb.lookup(g, 0, 0x3000, 0), tlb.size]).toEqual([-1, -1, 0]);
  });
});

describe('configuration caches', () => {
  const sc = {} as StreamConfig;
  const cc = {} as ContextConfig;

  it('SteCache: by StreamID, a range, or everything', () => {
    const c = new SteCache(16);
    c.set(3, sc);
    c.set(0x10003, sc); // same slot: evicts StreamID 3
    expect([c.get(3), c.get(0x10003)]).toEqual([undefined, sc]);
    c.set(4, sc);
    c.set(5, sc);
    c.deleteRange(4, 1);
    expect([c.get(4), c.get(5), c.size]).toEqual([undefined, sc, 2]);
    c.clear();
    expect([c.get(5), c.size]).toEqual([undefined, 0]);
  });

  it('CdCache: one CD, every CD of a StreamID, or everything', () => {
    const c = new CdCache(64);
    c.set(1, 0, cc);
    c.set(1, 7, cc);
    c.set(2, 7, cc);
    c.delete(1, 0);
    expect([c.get(1, 0), c.get(1, 7), c.size]).toEqual([undefined, cc, 2]);
    c.deleteSid(1);
    expect([c.get(1, 7), c.get(2, 7), c.size]).toEqual([undefined, cc, 1]);
    c.set(1, 7, cc); // cached again after the StreamID's CDs were dropped
    expect(c.get(1, 7)).toBe(cc);
    c.clear();
    expect([c.get(2, 7), c.size]).toEqual([undefined, 0]);
  });
});
