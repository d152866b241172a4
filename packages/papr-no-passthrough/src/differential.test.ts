import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createPaprSystem } from './system.js';
import type { PaprHypervisor } from './hw/hypervisor.js';

const DEV = '0000:00:02.0';
const PAGE = 0x1000n;

/**
 * Differential property: random map/unmap sequences on one IOAS (some before attach, some
 * after); after every step, every page the reference model says is mapped reads back its
 * marker through the device, and an unmapped page in the window freezes the PE (checked once
 * per run, at the end, since a freeze stops all further DMA).
 */
describe('differential: random map/unmap against a reference set', () => {
  it('translates exactly what the model says', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('map' as const), slot: fc.integer({ min: 0, max: 31 }), pages: fc.integer({ min: 1, max: 4 }), write: fc.boolean() }),
      fc.record({ kind: fc.constant('unmap' as const), slot: fc.integer({ min: 0, max: 31 }) }),
      fc.record({ kind: fc.constant('attach' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), fc.integer({ min: 0, max: 127 }), (ops, probe) => {
        const system = createPaprSystem({ devices: [DEV], memorySize: 1n << 32n });
        const hv = system.hardware as PaprHypervisor;
        const proc = system.createProcess();
        const ctx = system.open(proc);
        const ioas = ctx.allocIoas();
        const dev = ctx.bindDevice(DEV);
        // model: slot → { first page index, pages, marker }
        const model = new Map<number, { pages: number; marker: number }>();
        const pageOwner = new Map<number, number>(); // page index (of 128) → slot
        let attached = false;
        let marker = 1;
        for (const o of ops) {
          if (o.kind === 'attach') {
            if (!attached) ctx.attach(dev, ioas);
            attached = true;
          } else if (o.kind === 'map') {
            const first = o.slot * 4;
            let free = true;
            for (let p = first; p < first + o.pages; p++) if (pageOwner.has(p)) free = false;
            if (!free) continue;
            const buf = proc.mmap(BigInt(o.pages) * PAGE);
            for (let p = 0; p < o.pages; p++) proc.write(buf + BigInt(p) * PAGE, Uint8Array.of(marker & 0xff, p));
            ctx.mapDma(ioas, { iova: 0x100000n + BigInt(first) * PAGE, vaddr: buf, length: BigInt(o.pages) * PAGE, read: true, write: o.write });
            model.set(o.slot, { pages: o.pages, marker: marker & 0xff });
            for (let p = first; p < first + o.pages; p++) pageOwner.set(p, o.slot);
            marker++;
          } else {
            const m = model.get(o.slot);
            if (m === undefined) continue;
            ctx.unmapDma(ioas, { iova: 0x100000n + BigInt(o.slot * 4) * PAGE, length: BigInt(m.pages) * PAGE });
            model.delete(o.slot);
            for (let p = o.slot * 4; p < o.slot * 4 + m.pages; p++) pageOwner.delete(p);
          }
          if (!attached) continue;
          for (const [slot, m] of model) {
            for (let p = 0; p < m.pages; p++) {
              const r = system.device(DEV).dma({ iova: 0x100000n + BigInt(slot * 4 + p) * PAGE, size: 2, write: false });
              expect(r).toEqual({ ok: true, data: Uint8Array.of(m.marker, p) });
            }
          }
        }
        const r = system.device(DEV).dma({ iova: 0x100000n + BigInt(probe) * PAGE, size: 1, write: false });
        const slot = pageOwner.get(probe);
        expect(r.ok).toBe(attached && slot !== undefined);
        expect(hv.peState(DEV)).toBe(r.ok ? 0 : 2);
        ctx.close();
        expect(proc.pinCount()).toBe(0);
      }),
      { numRuns: 60 },
    );
  });
});
