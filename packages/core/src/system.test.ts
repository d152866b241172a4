import { describe, expect, it } from 'vitest';
import { createSystem } from './system.js';
import { mockBackend } from './test/mock-backend.js';

describe('the foundation example (issue contract) on the reference backend', () => {
  it('maps, attaches, DMAs, unmaps and closes', () => {
    const system = createSystem(mockBackend(), { devices: ['0000:00:02.0'] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x10000n);
    proc.write(buf, Uint8Array.of(1, 2, 3));
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    expect(ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x10000n, read: true, write: true })).toBe(0x100000n);
    const dev = ctx.bindDevice('0000:00:02.0');
    ctx.attach(dev, ioas);
    const r = system.device('0000:00:02.0').dma({ iova: 0x100000n, size: 3, write: false });
    expect(r).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3) });
    expect(ctx.unmapDma(ioas, { iova: 0x100000n, length: 0x10000n })).toBe(0x10000n);
    const after = system.device('0000:00:02.0').dma({ iova: 0x100000n, size: 3, write: false });
    expect(after.ok).toBe(false);
    ctx.close();
    expect(proc.pinCount()).toBe(0);
  });
});
