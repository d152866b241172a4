/**
 * Differential property test of the IOAS area bookkeeping (issue 3, "Done when"): random
 * MAP (fixed and auto IOVA) / UNMAP (whole areas, supersets, splits that must fail, unmap-all)
 * / COPY sequences run against a plain reference model of what is mapped. After every step the
 * IOAS's areas, every buffer page's pin count, and DMA reads through an attached device (at
 * area starts, ends, interiors and just outside) must be exactly what the model says.
 */

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { IoasidError, PAGE_SIZE, U64_MAX, type ErrnoName } from '@ioasid/uapi';
import { DEV_A, buffer, world, type World } from '../test/harness.js';
import type { IoasObject } from './objects.js';

const P = PAGE_SIZE;
const PN = 4096;
const BUF_PAGES = 32;
const SEED = 7;
const FIXED_BASE = 0x100000n; // fixed maps go to FIXED_BASE + slot·4 KiB
const COPY_BASE = 0x800000n; // fixed COPY destinations
const MSI = { start: 0xfee00000n, last: 0xfeefffffn };
const APERTURE_LAST = (1n << 48n) - 1n;

/** One IOVA page of the model: which buffer page backs it, and which MAP pinned it. */
interface RefPage {
  readonly buf: number;
  readonly pin: number;
}

interface RefArea {
  readonly start: bigint;
  readonly last: bigint;
}

/** The reference: areas as a sorted list, pages as a map from IOVA page number. */
class Model {
  areas: RefArea[] = [];
  readonly pages = new Map<bigint, RefPage>();
  private pins = 0;

  overlapping(start: bigint, last: bigint): RefArea[] {
    return this.areas.filter((a) => a.start <= last && start <= a.last);
  }

  add(start: bigint, pages: readonly RefPage[]): void {
    const a = { start, last: start + BigInt(pages.length) * P - 1n };
    this.areas.push(a);
    this.areas.sort((x, y) => (x.start < y.start ? -1 : 1));
    pages.forEach((p, i) => this.pages.set(start / P + BigInt(i), p));
  }

  remove(a: RefArea): void {
    this.areas.splice(this.areas.indexOf(a), 1);
    for (let p = a.start / P; p <= a.last / P; p++) this.pages.delete(p);
  }

  newPin(): number {
    return ++this.pins;
  }

  /** Lowest `align`-aligned IOVA ≥ PAGE_SIZE where `length` fits in the usable ranges and no area. */
  autoIova(length: bigint, align: bigint): bigint | undefined {
    const windows = [
      { start: P, last: MSI.start - 1n },
      { start: MSI.last + 1n, last: APERTURE_LAST },
    ];
    const up = (v: bigint) => ((v + align - 1n) / align) * align;
    for (const w of windows) {
      const candidates = [w.start, ...this.areas.map((a) => a.last + 1n)].filter((c) => c >= w.start && c <= w.last).map(up);
      candidates.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (const c of candidates) {
        const last = c + length - 1n;
        if (last <= w.last && this.overlapping(c, last).length === 0) return c;
      }
    }
    return undefined;
  }

  /** Pin count of each buffer page: the number of distinct MAPs whose pages still map it. */
  pinCounts(): number[] {
    const sets = Array.from({ length: BUF_PAGES }, () => new Set<number>());
    for (const p of this.pages.values()) sets[p.buf]!.add(p.pin);
    return sets.map((s) => s.size);
  }
}

type Op =
  | { readonly k: 'mapFixed'; readonly slot: number; readonly len: number; readonly buf: number }
  | { readonly k: 'mapAuto'; readonly len: number; readonly buf: number }
  | { readonly k: 'unmapArea'; readonly pick: number }
  | { readonly k: 'unmapRange'; readonly slot: number; readonly len: number }
  | { readonly k: 'split'; readonly pick: number; readonly head: boolean }
  | { readonly k: 'copy'; readonly pick: number; readonly off: number; readonly len: number; readonly dst: number | undefined }
  | { readonly k: 'unmapAll' };

const len = fc.integer({ min: 1, max: 8 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('mapFixed' as const), slot: fc.nat(63), len, buf: fc.nat(BUF_PAGES - 8) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('mapAuto' as const), len, buf: fc.nat(BUF_PAGES - 8) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('unmapArea' as const), pick: fc.nat(99) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('unmapRange' as const), slot: fc.nat(70), len: fc.integer({ min: 1, max: 24 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('split' as const), pick: fc.nat(99), head: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('copy' as const), pick: fc.nat(99), off: fc.nat(7), len,
      dst: fc.option(fc.nat(31), { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ k: 'unmapAll' as const }) },
);

function errnoOf(fn: () => unknown): ErrnoName | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof IoasidError) return e.errno;
    throw e;
  }
}

const pow2AtLeast = (v: bigint) => {
  let p = 1n;
  while (p < v) p <<= 1n;
  return p;
};

function step(w: World, ioas: number, buf: bigint, m: Model, o: Op): void {
  const { ctx } = w;
  switch (o.k) {
    case 'mapFixed': {
      const iova = FIXED_BASE + BigInt(o.slot) * P;
      const length = BigInt(o.len) * P;
      const clash = m.overlapping(iova, iova + length - 1n).length > 0;
      const e = errnoOf(() => ctx.mapDma(ioas, { iova, vaddr: buf + BigInt(o.buf) * P, length }));
      expect(e).toBe(clash ? 'EEXIST' : undefined);
      if (!clash) {
        const pin = m.newPin();
        m.add(iova, Array.from({ length: o.len }, (_, i) => ({ buf: o.buf + i, pin })));
      }
      return;
    }
    case 'mapAuto': {
      const vaddr = buf + BigInt(o.buf) * P;
      const length = BigInt(o.len) * P;
      const low = vaddr & -vaddr;
      const want = pow2AtLeast(length);
      let align = want < low ? want : low;
      if (align < P) align = P;
      const expected = m.autoIova(length, align);
      const got = ctx.mapDma(ioas, { vaddr, length });
      expect(got).toBe(expected);
      const pin = m.newPin();
      m.add(got, Array.from({ length: o.len }, (_, i) => ({ buf: o.buf + i, pin })));
      return;
    }
    case 'unmapArea': {
      const a = m.areas[o.pick % Math.max(1, m.areas.length)];
      if (a === undefined) {
        expect(errnoOf(() => ctx.unmapDma(ioas, { iova: FIXED_BASE, length: P }))).toBe('ENOENT');
        return;
      }
      expect(ctx.unmapDma(ioas, { iova: a.start, length: a.last - a.start + 1n })).toBe(a.last - a.start + 1n);
      m.remove(a);
      return;
    }
    case 'unmapRange': {
      const start = FIXED_BASE + BigInt(o.slot) * P - 4n * P;
      const last = start + BigInt(o.len) * P - 1n;
      const hit = m.overlapping(start, last);
      const cut = hit.some((a) => a.start < start || a.last > last);
      const r = (() => {
        try {
          return ctx.unmapDma(ioas, { iova: start, length: last - start + 1n });
        } catch (e) {
          if (e instanceof IoasidError) return e.errno;
          throw e;
        }
      })();
      if (hit.length === 0 || cut) {
        expect(r).toBe('ENOENT');
        return;
      }
      expect(r).toBe(hit.reduce((s, a) => s + a.last - a.start + 1n, 0n));
      for (const a of hit) m.remove(a);
      return;
    }
    case 'split': {
      const a = m.areas[o.pick % Math.max(1, m.areas.length)];
      if (a === undefined || a.last - a.start + 1n === P) return;
      const [iova, length] = o.head ? [a.start, a.last - a.start + 1n - P] : [a.start + P, a.last - a.start + 1n - P];
      expect(errnoOf(() => ctx.unmapDma(ioas, { iova, length }))).toBe('ENOENT');
      return;
    }
    case 'copy': {
      const a = m.areas[o.pick % Math.max(1, m.areas.length)];
      if (a === undefined) return;
      const srcIova = a.start + BigInt(o.off) * P;
      const length = BigInt(o.len) * P;
      const srcPages: RefPage[] = [];
      for (let i = 0n; i < BigInt(o.len); i++) {
        const p = m.pages.get(srcIova / P + i);
        if (p === undefined) break;
        srcPages.push(p);
      }
      const covered = srcPages.length === o.len;
      if (o.dst === undefined) {
        const e = errnoOf(() => ctx.copyDma(ioas, ioas, { srcIova, length }));
        if (!covered) {
          expect(e).toBe('ENOENT');
          return;
        }
        expect(e).toBeUndefined();
        // the new area is the one the model does not know yet; it must sit where the policy says
        const ioasObj = w.ctx['objects'].get(ioas) as IoasObject;
        const added = ioasObj.ioas.areas.items().find((x) => !m.areas.some((y) => y.start === x.start));
        expect(added).toBeDefined();
        const want = pow2AtLeast(length);
        const low = srcIova & -srcIova;
        let align = want < low ? want : low;
        if (align < P) align = P;
        expect(added!.start).toBe(m.autoIova(length, align));
        m.add(added!.start, srcPages);
        return;
      }
      const dstIova = COPY_BASE + BigInt(o.dst) * P;
      const clash = m.overlapping(dstIova, dstIova + length - 1n).length > 0;
      const e = errnoOf(() => ctx.copyDma(ioas, ioas, { srcIova, dstIova, length }));
      expect(e).toBe(!covered ? 'ENOENT' : clash ? 'EEXIST' : undefined);
      if (e === undefined) m.add(dstIova, srcPages);
      return;
    }
    case 'unmapAll': {
      const total = m.areas.reduce((s, a) => s + a.last - a.start + 1n, 0n);
      expect(ctx.unmapDma(ioas, { iova: 0n, length: U64_MAX })).toBe(total);
      for (const a of [...m.areas]) m.remove(a);
      return;
    }
  }
}

/** The expected bytes of a DMA read, or undefined when some byte is not mapped. */
function expectedRead(m: Model, iova: bigint, size: number): Uint8Array | undefined {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    const a = iova + BigInt(i);
    const p = m.pages.get(a / P);
    if (p === undefined) return undefined;
    out[i] = (SEED + p.buf * PN + Number(a % P)) & 0xff;
  }
  return out;
}

function verify(w: World, ioas: number, buf: bigint, m: Model): void {
  const io = (w.ctx['objects'].get(ioas) as IoasObject).ioas;
  expect(io.areas.items().map((a) => ({ start: a.start, last: a.last }))).toEqual(m.areas);
  const pins = m.pinCounts();
  for (let b = 0; b < BUF_PAGES; b++) expect(w.proc.pinCount(buf + BigInt(b) * P), `pin count of buffer page ${b}`).toBe(pins[b]);
  expect(w.proc.pinCount()).toBe(pins.filter((c) => c > 0).length);
  const probes: bigint[] = [FIXED_BASE, FIXED_BASE + 17n * P + 5n, COPY_BASE, P];
  for (const a of m.areas) probes.push(a.start, a.last - 7n, a.start - 8n, a.last + 1n, (a.start + a.last) / 2n);
  for (const iova of probes) {
    const r = w.system.device(DEV_A).dma({ iova, size: 8, write: false });
    const want = expectedRead(m, iova, 8);
    if (want === undefined) {
      expect(r.ok, `DMA at 0x${iova.toString(16)} should fault`).toBe(false);
      if (!r.ok) expect(r.fault.class).toBe('translation');
    } else {
      expect(r, `DMA at 0x${iova.toString(16)}`).toEqual({ ok: true, data: want });
    }
  }
}

describe('property: IOAS areas against a reference set (issue 3 "Done when")', () => {
  it('property: random MAP/UNMAP/COPY sequences keep areas, pins and DMA exactly as the reference says', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
        const w = world([DEV_A]);
        const buf = buffer(w.proc, BUF_PAGES, SEED);
        const ioas = w.ctx.allocIoas();
        w.ctx.attach(w.ctx.bindDevice(DEV_A), ioas);
        const m = new Model();
        for (const o of ops) {
          step(w, ioas, buf, m, o);
          verify(w, ioas, buf, m);
        }
        w.ctx.close();
        expect(w.proc.pinCount()).toBe(0);
      }),
      { seed: 0x5eed, numRuns: 120 },
    );
  });
});
