import { describe, expect, it } from 'vitest';
import { createVtdSystem } from './system.js';
import type { VtdHardware } from './hw/vtd-hardware.js';
import { SM_FAULT } from './spec/faults.js';

const DEV = '0000:00:02.0';
const DEV2 = '0000:00:03.0';

function setup() {
  const system = createVtdSystem({ devices: [DEV, DEV2] });
  const hw = (system.hardware as VtdHardware[])[0]!;
  const proc = system.createProcess();
  const ctx = system.open(proc);
  return { system, hw, proc, ctx };
}

describe('the DMA fast path keeps the slow path’s answers', () => {
  it('dmaFrom(rid, request) is dma({ ...request, sourceId: rid })', () => {
    const { system, hw, proc, ctx } = setup();
    const buf = proc.mmap(0x2000n);
    proc.write(buf, Uint8Array.of(9, 8, 7, 6, 5));
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x200000n, vaddr: buf, length: 0x2000n });
    ctx.attach(ctx.bindDevice(DEV), ioas);
    const rid = 0x0010; // 00:02.0
    const req = { iova: 0x200001n, size: 3, write: false };
    expect(hw.dmaFrom(rid, req)).toEqual({ ok: true, data: Uint8Array.of(8, 7, 6) });
    expect(hw.dma({ ...req, sourceId: rid })).toEqual({ ok: true, data: Uint8Array.of(8, 7, 6) });
    expect(system.device(DEV).dma(req)).toEqual({ ok: true, data: Uint8Array.of(8, 7, 6) });
  });

  it('IOVAs beyond 2^53 and negative ones wrap modulo 2^64 as before (and fault with the full address)', () => {
    const { system, proc, ctx } = setup();
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: proc.mmap(0x1000n), length: 0x1000n });
    ctx.attach(ctx.bindDevice(DEV), ioas);
    const ep = system.device(DEV);
    const neg = ep.dma({ iova: -0x1000n, size: 4, write: false });
    expect(!neg.ok && neg.fault.iova).toBe((1n << 64n) - 0x1000n);
    const big = ep.dma({ iova: (1n << 60n) + 0x123n, size: 4, write: false });
    expect(!big.ok && [big.fault.code, big.fault.iova]).toEqual([SM_FAULT.FS_NON_CANONICAL, (1n << 60n) + 0x123n]);
  });

  it('a DMA that crosses a 4 GiB boundary reads both pages', () => {
    const { system, proc, ctx } = setup();
    const buf = proc.mmap(0x2000n);
    proc.write(buf + 0xffcn, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0xfffff000n, vaddr: buf, length: 0x2000n });
    ctx.attach(ctx.bindDevice(DEV), ioas);
    expect(system.device(DEV).dma({ iova: 0xfffffffcn, size: 8, write: false })).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) });
    expect(system.device(DEV).dma({ iova: 0xfffffffen, size: 4, write: true, data: Uint8Array.of(0xa, 0xb, 0xc, 0xd) }).ok).toBe(true);
    expect(proc.read(buf + 0xffen, 4)).toEqual(Uint8Array.of(0xa, 0xb, 0xc, 0xd));
  });

  it('the remembered resolution follows the caches: devices alternate, a detach blocks at once', () => {
    const { system, proc, ctx } = setup();
    const buf = proc.mmap(0x1000n);
    proc.write(buf, Uint8Array.of(42));
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x1000n });
    const d1 = ctx.bindDevice(DEV);
    const d2 = ctx.bindDevice(DEV2);
    ctx.attach(d1, ioas);
    ctx.attach(d2, ioas);
    const req = { iova: 0x100000n, size: 1, write: false };
    for (let i = 0; i < 3; i++) {
      expect(system.device(DEV).dma(req)).toEqual({ ok: true, data: Uint8Array.of(42) });
      expect(system.device(DEV2).dma(req)).toEqual({ ok: true, data: Uint8Array.of(42) });
    }
    ctx.detach(d2);
    const r = system.device(DEV2).dma(req);
    expect(!r.ok && r.fault.code).toBe(0x59); // PASID entry not present: the PASID-cache flush reached the remembered resolution
    expect(system.device(DEV).dma(req)).toEqual({ ok: true, data: Uint8Array.of(42) });
  });

  it('a write returns an empty data array and a hit checks permissions', () => {
    const { system, proc, ctx } = setup();
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: proc.mmap(0x1000n), length: 0x1000n, read: true, write: false });
    ctx.attach(ctx.bindDevice(DEV), ioas);
    const ep = system.device(DEV);
    expect(ep.dma({ iova: 0x100000n, size: 4, write: false }).ok).toBe(true); // fills the IOTLB
    const w = ep.dma({ iova: 0x100000n, size: 0, write: true, data: Uint8Array.of(1) });
    expect(!w.ok && [w.fault.code, w.fault.class]).toEqual([0x85, 'permission']);
  });
});
