import { describe, expect, it } from 'vitest';
import { isIoasidError, type IoasidContext } from '@ioasid/uapi';
import { createPaprSystem } from './system.js';
import type { PaprHypervisor } from './hw/hypervisor.js';
import { H_GET_TCE, H_SUCCESS } from './spec/hcall.js';
import { PAPR_DMA_ERR_INVALID_TCE, PAPR_DMA_ERR_NO_WINDOW } from './spec/dma-error.js';

const DEV = '0000:00:02.0';
const DEV2 = '0000:00:03.0';
// config_addr of 00:02.0 = devfn 0x10 << 8; BUID 0x800000020000000 → cells 0x08000000, 0x20000000
const CFG = 0x1000;
const BHI = 0x08000000;
const BLO = 0x20000000;

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isIoasidError(e)) return e.errno;
    throw e;
  }
  return undefined;
}

describe('createPaprSystem: the foundation example', () => {
  it('runs as written, with the IOVA inside the default 32-bit window', () => {
    const system = createPaprSystem({ devices: [DEV] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x10000n);
    proc.write(buf, Uint8Array.of(1, 2, 3));
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x10000n, read: true, write: true });
    const dev = ctx.bindDevice(DEV);
    ctx.attach(dev, ioas);
    expect(system.device(DEV).dma({ iova: 0x100000n, size: 3, write: false })).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3) });
    ctx.unmapDma(ioas, { iova: 0x100000n, length: 0x10000n });
    ctx.close();
    expect(proc.pinCount()).toBe(0);
  });
});

function setup(devices: string[] = [DEV, DEV2]) {
  const system = createPaprSystem({ devices, memorySize: 1n << 36n });
  const hv = system.hardware as PaprHypervisor;
  const proc = system.createProcess();
  const ctx: IoasidContext = system.open(proc);
  return { system, hv, proc, ctx };
}

describe('PAPR has no passthrough', () => {
  it('a bound but unattached device cannot DMA: its first DMA freezes the PE (EEH state 2)', () => {
    const { system, hv, ctx } = setup();
    ctx.bindDevice(DEV);
    const r = system.device(DEV).dma({ iova: 0x1000n, size: 4, write: false });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.fault.class).toBe('translation');
      expect(r.fault.code).toBe(PAPR_DMA_ERR_INVALID_TCE); // inside the default window, TCE 00
      expect(r.fault.record).toMatchObject({ peState: 2, frozen: true });
    }
    expect(hv.peState(DEV)).toBe(2);
    const again = system.device(DEV).dma({ iova: 0x1000n, size: 4, write: false });
    expect(again.ok).toBe(false);
    if (!again.ok) expect(again.fault.class).toBe('frozen');
    // the other PE is untouched
    expect(hv.peState(DEV2)).toBe(0);
  });

  it('hw_info says so up front, with a reason for each absence and the windows as IOVA ranges', () => {
    const { ctx, hv } = setup();
    const info = ctx.getInfo(ctx.bindDevice(DEV));
    expect(info).toMatchObject({
      backend: 'papr-no-passthrough',
      pasidBits: 0,
      nestingFormats: [],
      passthrough: false,
      blocked: false,
      sva: false,
      iopf: false,
      globalPasid: false,
      dirtyTracking: false,
      dmaFaultFreezes: true,
      reservedRegions: [],
    });
    expect(info.unsupported['passthrough']).toBe('PAPR has no passthrough: a PE cannot DMA until attached to a DMA window');
    for (const k of ['blocked', 'sva', 'iopf', 'globalPasid', 'dirtyTracking', 'pasid', 'nesting']) expect(info.unsupported[k]).toBeTruthy();
    // memory 2^36 → Linux asks for a 2^36 window of 64 KiB pages (2^20 TCEs ≤ the 2^31 block) at 1 << 59
    expect(info.iovaRanges).toEqual([
      { start: 0n, last: 0x7fffffffn },
      { start: 1n << 59n, last: (1n << 59n) + (1n << 36n) - 1n },
    ]);
    expect(info.pageSizes).toEqual([4096n, 65536n]);
    const wins = hv.liobns(DEV);
    expect(info.vendor).toMatchObject({
      buid: 0x800000020000000n,
      configAddr: CFG,
      windows: [
        { kind: 'default', liobn: wins[0]!.liobn, start: 0n, size: 0x80000000n, pageShift: 12 },
        { kind: 'ddw', liobn: wins[1]!.liobn, start: 1n << 59n, size: 1n << 36n, pageShift: 16 },
      ],
      ddw: { applicable: true, query: { windowsAvailable: 1, largestBlock: 0x80000000, pageSizeMask: 3, migrationMask: 0 } },
    });
    expect(hv.liobns(DEV).map((w) => w.pageShift)).toEqual([12, 16]);
  });

  it('PASID, nesting, SVA, dirty tracking and fault queues are EOPNOTSUPP', () => {
    const { ctx, proc } = setup();
    const dev = ctx.bindDevice(DEV);
    const ioas = ctx.allocIoas();
    expect(errnoOf(() => ctx.attach(dev, ioas, { pasid: 1 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => ctx.attach(dev, ioas, { pasid: 'auto' }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => ctx.allocPasid({ devices: [dev] }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => ctx.bindSva(dev, proc))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => ctx.allocHwpt(dev, { parent: ioas, flags: { dirtyTracking: true } }))).toBe('EOPNOTSUPP');
    const q = ctx.allocFaultQueue();
    expect(errnoOf(() => ctx.allocHwpt(dev, { parent: ioas, faultQueue: q }))).toBe('EOPNOTSUPP');
  });
});

describe('the IOAS on PAPR: windows are the IOVA ranges', () => {
  it('iovaRanges of an attached IOAS are exactly the windows, alignment 4 KiB', () => {
    const { ctx } = setup();
    const ioas = ctx.allocIoas();
    ctx.attach(ctx.bindDevice(DEV), ioas);
    expect(ctx.iovaRanges(ioas)).toEqual({
      ranges: [
        { start: 0n, last: 0x7fffffffn },
        { start: 1n << 59n, last: (1n << 59n) + (1n << 36n) - 1n },
      ],
      alignment: 4096n,
    });
  });

  it('a map outside the windows fails with EINVAL; an existing area outside them makes attach fail', () => {
    const { ctx, proc } = setup();
    const ioas = ctx.allocIoas();
    const buf = proc.mmap(0x1000n);
    ctx.attach(ctx.bindDevice(DEV), ioas);
    expect(errnoOf(() => ctx.mapDma(ioas, { iova: 0x80000000n, vaddr: buf, length: 0x1000n }))).toBe('EINVAL');
    const other = ctx.allocIoas();
    ctx.mapDma(other, { iova: 0x1_0000_0000n, vaddr: buf, length: 0x1000n });
    expect(errnoOf(() => ctx.attach(ctx.bindDevice(DEV2), other))).toBe('EINVAL');
  });

  it('maps through the 64-bit window at 2^59 with 64 KiB TCEs (2 MiB mmaps are 2 MiB aligned)', () => {
    const { system, ctx, proc, hv } = setup();
    const buf = proc.mmap(0x200000n);
    proc.write(buf + 0x12345n, Uint8Array.of(0xaa, 0xbb));
    const ioas = ctx.allocIoas();
    ctx.attach(ctx.bindDevice(DEV), ioas);
    const iova = (1n << 59n) + 0x400000n;
    ctx.mapDma(ioas, { iova, vaddr: buf, length: 0x200000n, read: true, write: false });
    expect(system.device(DEV).dma({ iova: iova + 0x12345n, size: 2, write: false })).toEqual({ ok: true, data: Uint8Array.of(0xaa, 0xbb) });
    // the TCE of IOMMU page (0x410000 >> 16) = 0x41 holds the 64 KiB-aligned real page, read-only (01)
    const ddw = BigInt(hv.liobns(DEV)[1]!.liobn);
    const r = hv.hcall(H_GET_TCE, ddw, iova + 0x10000n);
    expect(r.ret).toBe(H_SUCCESS);
    expect(r.values[0]! & 3n).toBe(1n);
    expect(r.values[0]! & 0xffffn).toBe(1n);
    // a write through the read-only TCE freezes the PE
    const w = system.device(DEV).dma({ iova, size: 0, write: true, data: Uint8Array.of(1) });
    expect(w.ok).toBe(false);
    if (!w.ok) expect(w.fault.class).toBe('permission');
  });

  it('a 4 KiB-granular map into the 64 KiB window is EINVAL and leaves nothing behind', () => {
    const { ctx, proc } = setup();
    const buf = proc.mmap(0x1000n);
    const ioas = ctx.allocIoas();
    ctx.attach(ctx.bindDevice(DEV), ioas);
    expect(errnoOf(() => ctx.mapDma(ioas, { iova: 1n << 59n, vaddr: buf, length: 0x1000n }))).toBe('EINVAL');
    expect(proc.pinCount()).toBe(0);
  });

  it('detach clears the TCEs: the next DMA freezes; re-attach replays the mappings', () => {
    const { system, ctx, proc, hv } = setup();
    const buf = proc.mmap(0x2000n);
    proc.write(buf, Uint8Array.of(5));
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x4000n, vaddr: buf, length: 0x2000n });
    const dev = ctx.bindDevice(DEV);
    ctx.attach(dev, ioas);
    expect(system.device(DEV).dma({ iova: 0x4000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(5) });
    ctx.detach(dev);
    const liobn = BigInt(hv.liobns(DEV)[0]!.liobn);
    expect(hv.hcall(H_GET_TCE, liobn, 0x4000n).values[0]).toBe(0n);
    const r = system.device(DEV).dma({ iova: 0x4000n, size: 1, write: false });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.fault.code).toBe(PAPR_DMA_ERR_INVALID_TCE);
    // recover the PE through EEH (thaw MMIO, thaw DMA), attach again: the mapping is back
    expect(hv.rtas('ibm,set-eeh-option', [CFG, BHI, BLO, 2]).status).toBe(0);
    expect(hv.rtas('ibm,set-eeh-option', [CFG, BHI, BLO, 3]).status).toBe(0);
    ctx.attach(dev, ioas);
    expect(system.device(DEV).dma({ iova: 0x5000n, size: 1, write: false }).ok).toBe(true);
    expect(system.device(DEV).dma({ iova: 0x6000n, size: 1, write: false }).ok).toBe(false);
    expect(hv.freezes(DEV).map((f) => f.code)).toEqual([PAPR_DMA_ERR_INVALID_TCE, PAPR_DMA_ERR_INVALID_TCE]);
  });

  it('a DMA outside every window freezes with the no-window cause', () => {
    const { system, ctx, hv } = setup();
    const ioas = ctx.allocIoas();
    ctx.attach(ctx.bindDevice(DEV), ioas);
    const r = system.device(DEV).dma({ iova: 0x1_0000_0000n, size: 1, write: false });
    if (!r.ok) expect([r.fault.class, r.fault.code]).toEqual(['translation', PAPR_DMA_ERR_NO_WINDOW]);
    expect(r.ok).toBe(false);
    expect(hv.peState(DEV)).toBe(2);
  });
});

describe('one domain per PE', () => {
  it('two devices in two PEs on one IOAS get two HWPTs; both translate', () => {
    const { system, ctx, proc } = setup();
    const buf = proc.mmap(0x1000n);
    proc.write(buf, Uint8Array.of(7));
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: 0x1000n });
    const d2 = ctx.bindDevice(DEV2);
    const a = ctx.attach(ctx.bindDevice(DEV), ioas);
    const b = ctx.attach(d2, ioas);
    expect(a.hwpt).not.toBe(b.hwpt);
    expect(system.device(DEV2).dma({ iova: 0x10000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(7) });
    // attaching DEV2 to DEV's HWPT explicitly is refused with the driver's reason
    expect(() => ctx.attach(d2, a.hwpt)).toThrow(/own TCE tables/);
  });

  it("attaching a device to another PE's HWPT is EINVAL", () => {
    const { ctx } = setup();
    const ioas = ctx.allocIoas();
    const d1 = ctx.bindDevice(DEV);
    const d2 = ctx.bindDevice(DEV2);
    const h = ctx.allocHwpt(d1, { parent: ioas });
    expect(errnoOf(() => ctx.attach(d2, h))).toBe('EINVAL');
  });

  it('two functions of one PE share its domain; moving one alone to another IOAS is EBUSY', () => {
    const system = createPaprSystem({ devices: [DEV, DEV2], pes: [{ devices: [DEV, DEV2] }], memorySize: 1n << 36n });
    const proc = system.createProcess();
    const ctx = system.open(proc);
    const buf = proc.mmap(0x1000n);
    proc.write(buf, Uint8Array.of(3));
    const io1 = ctx.allocIoas();
    ctx.mapDma(io1, { iova: 0x8000n, vaddr: buf, length: 0x1000n });
    const d1 = ctx.bindDevice(DEV);
    const d2 = ctx.bindDevice(DEV2);
    const a = ctx.attach(d1, io1);
    const b = ctx.attach(d2, io1);
    expect(b.hwpt).toBe(a.hwpt);
    const io2 = ctx.allocIoas();
    expect(errnoOf(() => ctx.attach(d2, io2))).toBe('EBUSY');
    expect(system.device(DEV2).dma({ iova: 0x8000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(3) });
  });

  it('replacing the attachment swaps the TCEs to the new IOAS', () => {
    const { system, ctx, proc } = setup();
    const b1 = proc.mmap(0x1000n);
    const b2 = proc.mmap(0x1000n);
    proc.write(b1, Uint8Array.of(1));
    proc.write(b2, Uint8Array.of(2));
    const io1 = ctx.allocIoas();
    const io2 = ctx.allocIoas();
    ctx.mapDma(io1, { iova: 0x1000n, vaddr: b1, length: 0x1000n });
    ctx.mapDma(io2, { iova: 0x2000n, vaddr: b2, length: 0x1000n });
    const dev = ctx.bindDevice(DEV);
    ctx.attach(dev, io1);
    ctx.attach(dev, io2);
    expect(system.device(DEV).dma({ iova: 0x2000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(2) });
    const old = system.device(DEV).dma({ iova: 0x1000n, size: 1, write: false });
    expect(old.ok).toBe(false);
  });
});

describe('prereg (core) on PAPR', () => {
  it('before registerMemory any memory maps; after, a map from outside is EINVAL; duplicates EBUSY; mismatched unregister ENOENT', () => {
    const { ctx, proc } = setup();
    const ioas = ctx.allocIoas();
    const a = proc.mmap(0x2000n);
    const b = proc.mmap(0x1000n);
    ctx.mapDma(ioas, { iova: 0x1000n, vaddr: b, length: 0x1000n });
    ctx.registerMemory({ vaddr: a, length: 0x2000n });
    expect(errnoOf(() => { ctx.registerMemory({ vaddr: a, length: 0x2000n }); })).toBe('EBUSY');
    expect(errnoOf(() => ctx.mapDma(ioas, { iova: 0x10000n, vaddr: b, length: 0x1000n }))).toBe('EINVAL');
    ctx.mapDma(ioas, { iova: 0x20000n, vaddr: a, length: 0x2000n });
    expect(errnoOf(() => { ctx.unregisterMemory({ vaddr: a, length: 0x1000n }); })).toBe('ENOENT');
  });
});

describe('fail_nth: every allocation of a map/attach can fail and nothing changes', () => {
  it('map + attach under injection leaves the TCE tables and pins as before', () => {
    let injected = 0;
    let completed = false;
    for (let n = 1; n < 100 && !completed; n++) {
      const { system, ctx, proc, hv } = setup([DEV]);
      const buf = proc.mmap(0x4000n);
      const ioas = ctx.allocIoas();
      const dev = ctx.bindDevice(DEV);
      system.failNth.arm(n);
      let failed = false;
      try {
        ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: 0x4000n });
        ctx.attach(dev, ioas);
      } catch (e) {
        if (!isIoasidError(e, 'ENOMEM')) throw e;
        failed = true;
      }
      const fired = system.failNth.hasFired;
      system.failNth.disarm();
      const liobn = BigInt(hv.liobns(DEV)[0]!.liobn);
      const tce = hv.hcall(H_GET_TCE, liobn, 0x10000n).values[0]!;
      if (!fired) {
        expect(failed).toBe(false);
        expect(tce & 3n).toBe(3n);
        completed = true;
        continue;
      }
      injected++;
      expect(failed).toBe(true);
      // either the map failed (nothing pinned, no TCE) or the attach did (TCE still clear)
      expect(tce).toBe(0n);
      ctx.close();
      expect(proc.pinCount()).toBe(0);
    }
    expect(completed).toBe(true);
    expect(injected).toBeGreaterThan(0);
  });
});

describe('profiles and SR-IOV', () => {
  it("the 'qemu' profile has QEMU's 1 GiB default window", () => {
    const system = createPaprSystem({ devices: [DEV], profile: 'qemu', memorySize: 1n << 32n });
    const ctx = system.open(system.createProcess());
    expect(ctx.getInfo(ctx.bindDevice(DEV)).iovaRanges[0]).toEqual({ start: 0n, last: 0x3fffffffn });
  });

  it('each VF is a PE of its own, with its own LIOBNs and freeze state', () => {
    const system = createPaprSystem({ devices: [{ name: DEV, vfs: 2 }], memorySize: 1n << 32n });
    const hv = system.hardware as PaprHypervisor;
    // VF 1 of 00:02.0 has RID 0x0011 → 0000:00:02.1
    const vf = '0000:00:02.1';
    expect(system.deviceNames()).toContain(vf);
    expect(hv.liobns(vf)[0]!.liobn).not.toBe(hv.liobns(DEV)[0]!.liobn);
    expect(hv.configAddr(vf)).toBe(0x11 << 8);
    system.device(vf).dma({ iova: 0n, size: 1, write: false });
    expect(hv.peState(vf)).toBe(2);
    expect(hv.peState(DEV)).toBe(0);
  });
});

describe('a PE with several functions is one IOMMU group', () => {
  it('hw_info names the group; another context cannot bind a function of a PE whose other function it does not own (EBUSY)', () => {
    const A = '0000:00:02.0';
    const B = '0000:00:02.1';
    const system = createPaprSystem({ devices: [A, B, DEV2], pes: [{ devices: [A, B] }] });
    const p1 = system.createProcess();
    const c1 = system.open(p1);
    const p2 = system.createProcess();
    const c2 = system.open(p2);
    const buf = p1.mmap(0x1000n);
    p1.write(buf, Uint8Array.of(0x11));
    const d1 = c1.bindDevice(A);
    expect(c1.getInfo(d1).group).toEqual([A, B]);
    const io = c1.allocIoas();
    c1.mapDma(io, { iova: 0x100000n, vaddr: buf, length: 0x1000n });
    c1.attach(d1, io);
    // B's DMA is translated by the same TCE tables: handing B to VM 2 would hand it VM 1's memory
    expect(errnoOf(() => c2.bindDevice(B))).toBe('EBUSY');
    expect(c2.getInfo(c2.bindDevice(DEV2)).group).toEqual([DEV2]);
    // VM 1 may drive both functions (they share its domain)
    const d2 = c1.bindDevice(B);
    c1.attach(d2, io);
    expect(system.device(B).dma({ iova: 0x100000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x11) });
    c1.close();
    expect(c2.bindDevice(B)).toBeGreaterThan(0);
  });
});
