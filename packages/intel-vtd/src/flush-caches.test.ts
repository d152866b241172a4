import { describe, expect, it } from 'vitest';
import { createVtdSystem } from './system.js';
import type { VtdHardware } from './hw/vtd-hardware.js';

describe('VtdHardware.flushCaches', () => {
  it('empties the context, PASID, IOTLB and paging-structure caches; the next DMA walks again', () => {
    const system = createVtdSystem({ devices: ['0000:00:02.0'] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x1000n);
    proc.write(buf, Uint8Array.of(7));
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x1000n });
    ctx.attach(ctx.bindDevice('0000:00:02.0'), ioas);
    const hw = (system.hardware as VtdHardware[])[0]!;
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
