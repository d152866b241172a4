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

describe('VtdHardware.dmaInto: the native, non-allocating DMA', () => {
  function mapped(length = 0x10000n) {
    const s = setup();
    const buf = s.proc.mmap(length);
    const ioas = s.ctx.allocIoas();
    s.ctx.mapDma(ioas, { iova: 0x400000n, vaddr: buf, length });
    s.ctx.attach(s.ctx.bindDevice(DEV), ioas);
    return { ...s, buf };
  }
  const RID = 0x0010; // 00:02.0

  it('reads into the caller’s buffer at every alignment and length, as dma() returns them', () => {
    const { hw, proc, buf } = mapped();
    const bytes = Uint8Array.from({ length: 0x3000 }, (_, i) => (i * 7 + 3) & 0xff);
    proc.write(buf, bytes);
    const into = new Uint8Array(200);
    for (const off of [0, 1, 2, 3, 4, 5, 0xffd, 0xffe, 0xfff, 0x1000]) {
      for (const size of [0, 1, 3, 4, 5, 8, 63, 64, 65, 128, 200]) {
        into.fill(0xee);
        const req = { iova: 0x400000n + BigInt(off), size, write: false };
        expect(hw.dmaInto(RID, req, into)).toBeUndefined();
        expect(into.subarray(0, size)).toEqual(bytes.subarray(off, off + size));
        expect(into.subarray(size).every((b) => b === 0xee)).toBe(true); // nothing past the read
        expect(hw.dma({ ...req, sourceId: RID })).toEqual({ ok: true, data: bytes.slice(off, off + size) });
      }
    }
  });

  it('a page never written reads as zeros (no frame is created by a read)', () => {
    const { system, hw } = mapped();
    const before = system.memory.framesInUse;
    const into = new Uint8Array(16).fill(0xaa);
    expect(hw.dmaInto(RID, { iova: 0x405003n, size: 9, write: false }, into)).toBeUndefined();
    expect([...into]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
    expect(system.memory.framesInUse).toBe(before);
  });

  it('returns the same fault record as dma(), and a fault leaves the buffer’s tail alone', () => {
    const { hw } = mapped(0x1000n);
    const into = new Uint8Array(8).fill(0x55);
    const req = { iova: 0x400ffcn, size: 8, write: false }; // the second page is not mapped
    const f = hw.dmaInto(RID, req, into);
    const r = hw.dma({ ...req, sourceId: RID });
    expect(f).toBeDefined();
    expect(r.ok).toBe(false);
    expect(!r.ok && { ...r.fault, record: { ...r.fault.record, frcdIndex: undefined } }).toEqual({ ...f, record: { ...f!.record, frcdIndex: undefined } });
    expect(f!.iova).toBe(0x401000n);
  });

  it('a write ignores `into`; a read with a short buffer is EINVAL and issues nothing', () => {
    const { hw, proc, buf } = mapped();
    expect(hw.dmaInto(RID, { iova: 0x400010n, size: 0, write: true, data: Uint8Array.of(1, 2, 3) }, new Uint8Array(0))).toBeUndefined();
    expect(proc.read(buf + 0x10n, 3)).toEqual(Uint8Array.of(1, 2, 3));
    const hits = hw.stats.iotlbHits + hw.stats.iotlbMisses;
    expect(() => hw.dmaInto(RID, { iova: 0x400010n, size: 4, write: false }, new Uint8Array(3))).toThrow(/EINVAL|at least 4 bytes/);
    expect(hw.stats.iotlbHits + hw.stats.iotlbMisses).toBe(hits);
  });

  it('a write across many pages moves every byte once all pages translated, and none when one faults', () => {
    const { hw, proc, buf } = mapped(0x10000n);
    const data = Uint8Array.from({ length: 0xe000 }, (_, i) => (i * 13 + 1) & 0xff); // 15 pages touched
    expect(hw.dmaInto(RID, { iova: 0x400800n, size: 0, write: true, data }, new Uint8Array(0))).toBeUndefined();
    expect(proc.read(buf + 0x800n, data.length)).toEqual(data);
    const zeros = new Uint8Array(0x10000);
    proc.write(buf, zeros);
    const f = hw.dmaInto(RID, { iova: 0x400800n, size: 0, write: true, data: new Uint8Array(0x10000).fill(9) }, new Uint8Array(0));
    expect(f?.iova).toBe(0x410000n);
    expect(proc.read(buf, 0x10000)).toEqual(zeros);
  });
});
