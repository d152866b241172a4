import { describe, expect, it } from 'vitest';
import { createVtdSystem } from './system.js';
import type { VtdHardware } from './hw/vtd-hardware.js';
import { RTADDR_REG } from './spec/registers.js';
import { SM_FAULT } from './spec/faults.js';

/** A device attached to an IOAS whose page at IOVA 0x100000 starts with `byte`, and its VT-d unit. */
function attached(byte: number) {
  const system = createVtdSystem({ devices: ['0000:00:02.0'] });
  const proc = system.createProcess();
  const buf = proc.mmap(0x1000n);
  proc.write(buf, Uint8Array.of(byte));
  const ctx = system.open(proc);
  const ioas = ctx.allocIoas();
  ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x1000n });
  ctx.attach(ctx.bindDevice('0000:00:02.0'), ioas);
  return { system, hw: (system.hardware as VtdHardware[])[0]! };
}

describe('VtdHardware.flushCaches', () => {
  it('empties the context, PASID, IOTLB and paging-structure caches; the next DMA walks again', () => {
    const { system, hw } = attached(7);
    expect(system.device('0000:00:02.0').dma({ iova: 0x100000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(7) });
    expect(hw.cacheSizes().iotlb).toBeGreaterThan(0);
    expect(hw.cacheSizes().context).toBeGreaterThan(0);
    hw.flushCaches();
    expect(hw.cacheSizes()).toEqual({ iotlb: 0, pagingStructure: 0, context: 0, pasid: 0 });
    const misses = hw.stats.iotlbMisses;
    expect(system.device('0000:00:02.0').dma({ iova: 0x100000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(7) });
    expect(hw.stats.iotlbMisses).toBe(misses + 1);
  });
});

describe('VtdHardware.flushTranslationCaches', () => {
  it('empties the IOTLB and paging-structure caches and keeps the context and PASID caches warm', () => {
    const { system, hw } = attached(7);
    const ep = system.device('0000:00:02.0');
    expect(ep.dma({ iova: 0x100000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(7) });
    const warm = hw.cacheSizes();
    expect(warm.iotlb).toBeGreaterThan(0);
    expect(warm.pagingStructure).toBeGreaterThan(0);
    expect(warm.context).toBeGreaterThan(0);
    expect(warm.pasid).toBeGreaterThan(0);
    hw.flushTranslationCaches();
    expect(hw.cacheSizes()).toEqual({ iotlb: 0, pagingStructure: 0, context: warm.context, pasid: warm.pasid });
    const misses = hw.stats.iotlbMisses;
    expect(ep.dma({ iova: 0x100000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(7) });
    expect(hw.stats.iotlbMisses).toBe(misses + 1);
    expect(hw.cacheSizes()).toEqual(warm);
  });

  it('keeps serving the cached context as the hardware would: a root entry cleared without a context-cache invalidation is not re-read', () => {
    const { system, hw } = attached(5);
    const ep = system.device('0000:00:02.0');
    expect(ep.dma({ iova: 0x100000n, size: 1, write: false }).ok).toBe(true);
    // Bus 0's root entry (RTADDR_REG bits 63:12 + 16 × bus) made not present behind the unit's back.
    const root = hw.mmio.read64(RTADDR_REG) & ~0xfffn;
    system.memory.write(root, new Uint8Array(16));
    hw.flushTranslationCaches();
    expect(ep.dma({ iova: 0x100000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(5) });
    hw.flushCaches();
    const r = ep.dma({ iova: 0x100000n, size: 1, write: false });
    expect(!r.ok && r.fault.code).toBe(SM_FAULT.ROOT_ENTRY_NOT_PRESENT);
  });
});
