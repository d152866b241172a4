// Issue 11's property: on every backend that tracks dirty pages, random device writes between
// random reads of the dirty bitmap never lose a dirty page and never report a page that was not
// written since the last clear. Dirty state is what the hardware recorded in its tables (VT-d
// second-stage D bits with SSADE, SMMUv3 DBM/AP[2] with HTTU), read back by the driver.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createSmmuV3System } from '@ioasid/arm-smmuv3';
import { createVtdSystem } from '@ioasid/intel-vtd';
import type { IoasidSystem } from '@ioasid/uapi';

const DEV = '0000:00:02.0';
const PAGES = 96; // three areas of 32 pages each: a bitmap read spans several areas
const BACKENDS: readonly [string, () => IoasidSystem][] = [
  ['intel-vtd', () => createVtdSystem({ devices: [DEV] })],
  ['arm-smmuv3', () => createSmmuV3System({ devices: [DEV] })],
];
const long = process.env['IOASID_FUZZ'] === 'long';

type Op = { readonly kind: 'write'; readonly page: number } | { readonly kind: 'read'; readonly noClear: boolean; readonly first: number; readonly count: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('write' as const), page: fc.nat(PAGES - 1) }) },
  {
    weight: 1,
    arbitrary: fc
      .record({ kind: fc.constant('read' as const), noClear: fc.boolean(), first: fc.nat(PAGES - 1), count: fc.integer({ min: 1, max: PAGES }) })
      .map((r) => ({ ...r, count: Math.min(r.count, PAGES - r.first) })),
  },
);

for (const [name, make] of BACKENDS) {
  describe(`dirty tracking on ${name}`, () => {
    it('random writes between random bitmap reads: no dirty page lost, none invented', () => {
      fc.assert(
        fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
          const system = make();
          const proc = system.createProcess();
          const ctx = system.open(proc);
          const dev = ctx.bindDevice(DEV);
          expect(ctx.getInfo(dev).dirtyTracking).toBe(true);
          const ioas = ctx.allocIoas();
          const hwpt = ctx.allocHwpt(dev, { parent: ioas, flags: { dirtyTracking: true } });
          ctx.attach(dev, hwpt);
          const base = 0x400000n;
          const buf = proc.mmap(BigInt(PAGES * 4096));
          for (let a = 0; a < 3; a++) {
            const off = BigInt(a * 32 * 4096);
            ctx.mapDma(ioas, { iova: base + off, vaddr: buf + off, length: 32n * 4096n });
          }
          ctx.setDirtyTracking(hwpt, true);
          const dirty = new Set<number>(); // the reference: pages written since their last clear
          const ep = system.device(DEV);
          for (const o of ops) {
            if (o.kind === 'write') {
              const r = ep.dma({ iova: base + BigInt(o.page * 4096 + 16), size: 0, write: true, data: Uint8Array.of(o.page) });
              expect(r.ok).toBe(true);
              dirty.add(o.page);
            } else {
              const bm = ctx.readDirtyBitmap(hwpt, { iova: base + BigInt(o.first * 4096), length: BigInt(o.count * 4096), pageSize: 4096n, noClear: o.noClear });
              expect(bm.length).toBe(Math.ceil(o.count / 64) * 8);
              for (let n = 0; n < o.count; n++) {
                const reported = ((bm[n >> 3]! >> (n & 7)) & 1) === 1;
                expect(reported, `page ${o.first + n}`).toBe(dirty.has(o.first + n));
                if (!o.noClear) dirty.delete(o.first + n);
              }
            }
          }
          ctx.close();
          expect(proc.pinCount()).toBe(0);
        }),
        { seed: 0x11d1, numRuns: long ? 2000 : 40 },
      );
    });
  });
}
