import { describe, expect, it } from 'vitest';
import { IOMMU_PGFAULT_PERM_WRITE, IOMMUFD_PAGE_RESP_SUCCESS, U64_MAX, isIoasidError, type IoasidContext } from '@ioasid/uapi';
import { createVtdSystem } from './system.js';
import type { VtdHardware } from './hw/vtd-hardware.js';
import { VtdDriver } from './driver/vtd-driver.js';
import { ECAP } from './spec/registers.js';
import { DEFAULT_ECAP } from './spec/defaults.js';
import { setField } from './spec/fields.js';

const DEV = '0000:00:02.0';
const DEV2 = '0000:00:03.0';
const bytes = (...b: number[]) => Uint8Array.from(b);

function setup(options: { devices?: (string | { name: string; pri?: boolean; pasid?: boolean; vfs?: number })[]; units?: number; ecap?: bigint } = {}) {
  const system = createVtdSystem({ devices: options.devices ?? [DEV, DEV2], memorySize: 1n << 36n, ...(options.units ? { units: options.units } : {}), ...(options.ecap === undefined ? {} : { ecap: options.ecap }) });
  const units = system.hardware as VtdHardware[];
  const driver = system.driver;
  if (!(driver instanceof VtdDriver)) throw new Error("not the VT-d driver");
  const proc = system.createProcess();
  const ctx: IoasidContext = system.open(proc);
  return { system, units, driver, proc, ctx };
}

describe('createVtdSystem: the foundation example', () => {
  it('runs as written', () => {
    const system = createVtdSystem({ devices: [DEV] });
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

describe('IOAS-backed paging domains', () => {
  it('use the first stage (PGTT 001b); unmapped IOVAs fault 0x71 and are logged by the driver', () => {
    const { system, units, driver, proc, ctx } = setup();
    const buf = proc.mmap(0x4000n);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x40000n, vaddr: buf, length: 0x4000n });
    const dev = ctx.bindDevice(DEV);
    ctx.attach(dev, ioas);
    expect(system.device(DEV).dma({ iova: 0x40000n, size: 2, write: true, data: bytes(7, 8) }).ok).toBe(true);
    expect(proc.read(buf, 2)).toEqual(bytes(7, 8));
    const r = system.device(DEV).dma({ iova: 0x80000n, size: 1, write: false });
    expect(!r.ok && [r.fault.code, r.fault.class]).toEqual([0x71, 'translation']);
    expect(driver.units[0]!.faultLog.at(-1)).toMatchObject({ reason: 0x71, sourceId: 0x0010, address: 0x80000n, write: false });
    expect(units[0]!.mmio.read32(0x34) & 2).toBe(0); // the driver cleared PPF
    expect(ctx.getInfo(dev)).toMatchObject({ backend: 'intel-vtd', pasidBits: 20, nestingFormats: ['vtd_s1'], passthrough: true, sva: true, iopf: true, globalPasid: true, dirtyTracking: true, dataType: 1 });
    expect(ctx.getInfo(dev).reservedRegions).toContainEqual({ start: 0xfee00000n, last: 0xfeefffffn, kind: 'msi' });
  });
  it('a bound device is blocked (0x59); detach blocks again; unmap makes DMA fault after the flush', () => {
    const { system, proc, ctx } = setup();
    const dev = ctx.bindDevice(DEV);
    // No PASID table exists yet for PASIDs 0–63: the directory entry is not present (0x51).
    const r0 = system.device(DEV).dma({ iova: 0n, size: 1, write: false });
    expect(!r0.ok && [r0.fault.code, r0.fault.class]).toEqual([0x51, 'blocked']);
    const buf = proc.mmap(0x200000n);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x200000n, vaddr: buf, length: 0x200000n });
    ctx.attach(dev, ioas);
    expect(system.device(DEV).dma({ iova: 0x3ff000n, size: 1, write: false }).ok).toBe(true);
    ctx.unmapDma(ioas, { iova: 0x200000n, length: 0x200000n });
    const r1 = system.device(DEV).dma({ iova: 0x3ff000n, size: 1, write: false });
    expect(r1.ok).toBe(false);
    ctx.detach(dev);
    const r2 = system.device(DEV).dma({ iova: 0x3ff000n, size: 1, write: false });
    expect(!r2.ok && r2.fault.code).toBe(0x59);
  });
  it('a write crossing into a read-only page faults on that page and moves no byte; a read-write pair takes the whole write', () => {
    const { system, proc, ctx } = setup();
    const dev = ctx.bindDevice(DEV);
    const buf = proc.mmap(0x3000n);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x1000n });
    ctx.mapDma(ioas, { iova: 0x101000n, vaddr: buf + 0x1000n, length: 0x1000n, read: true, write: false });
    ctx.mapDma(ioas, { iova: 0x102000n, vaddr: buf + 0x2000n, length: 0x1000n });
    ctx.attach(dev, ioas);
    const payload = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    // 4 bytes in the writable page 0x100000, 4 in the read-only page 0x101000
    const r = system.device(DEV).dma({ iova: 0x100ffcn, size: 8, write: true, data: payload });
    expect(!r.ok && [r.fault.class, r.fault.iova]).toEqual(['permission', 0x101000n]);
    expect(proc.read(buf + 0xffcn, 8)).toEqual(new Uint8Array(8));
    // a write from the writable page 0x102000 into the unmapped 0x103000 moves nothing either
    expect(system.device(DEV).dma({ iova: 0x102ffcn, size: 8, write: true, data: payload }).ok).toBe(false);
    expect(proc.read(buf + 0x2ffcn, 4)).toEqual(new Uint8Array(4));
    // a write over two writable pages lands whole
    ctx.unmapDma(ioas, { iova: 0x101000n, length: 0x1000n });
    ctx.mapDma(ioas, { iova: 0x101000n, vaddr: buf + 0x1000n, length: 0x1000n });
    expect(system.device(DEV).dma({ iova: 0x100ffcn, size: 8, write: true, data: payload }).ok).toBe(true);
    expect(proc.read(buf + 0xffcn, 8)).toEqual(payload);
  });

  it('every frame allocation of map can fail and leaves nothing behind', () => {
    const { system, proc, ctx } = setup();
    const buf = proc.mmap(0x400000n);
    const ioas = ctx.allocIoas();
    const dev = ctx.bindDevice(DEV);
    ctx.attach(dev, ioas);
    const before = system.memory.framesInUse;
    let failures = 0;
    for (let n = 1; n < 50; n++) {
      system.memory.failNth.arm(n);
      try {
        ctx.mapDma(ioas, { iova: 0x1000_0000n, vaddr: buf, length: 0x400000n });
        system.memory.failNth.disarm();
        break;
      } catch (e) {
        expect(isIoasidError(e, 'ENOMEM')).toBe(true);
        failures++;
        expect(system.memory.framesInUse).toBe(before);
        expect(system.device(DEV).dma({ iova: 0x1000_0000n, size: 1, write: false }).ok).toBe(false);
      }
    }
    expect(failures).toBeGreaterThan(0);
    expect(system.device(DEV).dma({ iova: 0x1000_0000n, size: 1, write: false }).ok).toBe(true);
    ctx.unmapDma(ioas, { iova: 0n, length: U64_MAX });
    // The PDPT and PD (two 2 MiB leaves at 256 MiB) stay: neither lies wholly inside the unmapped 4 MiB.
    expect(system.memory.framesInUse).toBe(before + 2);
    ctx.close();
    expect(system.memory.framesInUse).toBe(before - 1); // the domain's PML4 went with the auto HWPT
  });
});

describe('PASIDs', () => {
  it('attach with a kernel-chosen PASID, and a global PASID usable on devices of two units', () => {
    const { system, proc, ctx } = setup({ units: 2 });
    const buf = proc.mmap(0x1000n);
    proc.write(buf, bytes(0x42));
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x5000n, vaddr: buf, length: 0x1000n });
    const d1 = ctx.bindDevice(DEV);
    const d2 = ctx.bindDevice(DEV2);
    const auto = ctx.attach(d1, ioas, { pasid: 'auto' });
    expect(auto.pasid).toBeGreaterThan(0);
    expect(system.device(DEV).dma({ iova: 0x5000n, size: 1, write: false, pasid: auto.pasid! })).toEqual({ ok: true, data: bytes(0x42) });
    const noPasid = system.device(DEV).dma({ iova: 0x5000n, size: 1, write: false });
    expect(!noPasid.ok && noPasid.fault.code).toBe(0x59);
    const g = ctx.allocPasid({ global: true });
    ctx.attach(d1, ioas, { pasid: g });
    ctx.attach(d2, ioas, { pasid: g });
    for (const name of [DEV, DEV2]) expect(system.device(name).dma({ iova: 0x5000n, size: 1, write: false, pasid: g })).toEqual({ ok: true, data: bytes(0x42) });
    const hw = system.hardware as VtdHardware[];
    expect(hw[0]!.stats.iotlbMisses).toBeGreaterThan(0);
    expect(hw[1]!.stats.iotlbMisses).toBeGreaterThan(0);
  });
});

describe('hardware nesting (vtd_s1 over a nest-parent second stage)', () => {
  it('translates through the guest table and stays stale until the user invalidates', () => {
    const { system, proc, ctx } = setup();
    const G = 0x1000_0000n; // guest-physical (parent IOVA) base of the guest's memory
    const mem = proc.mmap(0x10000n);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: G, vaddr: mem, length: 0x10000n });
    const dev = ctx.bindDevice(DEV);
    const parent = ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } });
    // Guest x86-64 table: PML4 at G, PDPT G+0x1000, PD G+0x2000, PT G+0x3000; IOVA 0 → G+0x4000 (RW).
    const w64 = (off: bigint, v: bigint) => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, v, true);
      proc.write(mem + off, b);
    };
    w64(0n, (G + 0x1000n) | 0x27n);
    w64(0x1000n, (G + 0x2000n) | 0x27n);
    w64(0x2000n, (G + 0x3000n) | 0x27n);
    w64(0x3000n, (G + 0x4000n) | 0x67n);
    proc.write(mem + 0x4000n, bytes(0xaa));
    proc.write(mem + 0x5000n, bytes(0xbb));
    const nested = ctx.allocHwpt(dev, { parent, data: { type: 'vtd_s1', flags: 0, pgtblAddr: G, addrWidth: 48 } });
    ctx.attach(dev, nested);
    expect(system.device(DEV).dma({ iova: 0n, size: 1, write: false })).toEqual({ ok: true, data: bytes(0xaa) });
    w64(0x3000n, (G + 0x5000n) | 0x67n);
    expect(system.device(DEV).dma({ iova: 0n, size: 1, write: false })).toEqual({ ok: true, data: bytes(0xaa) });
    expect(ctx.invalidateHwpt(nested, [{ type: 'vtd_s1', addr: 0n, npages: 1n, flags: 0 }])).toBe(1);
    expect(system.device(DEV).dma({ iova: 0n, size: 1, write: false })).toEqual({ ok: true, data: bytes(0xbb) });
    expect(() => ctx.invalidateHwpt(nested, [{ type: 'vtd_s1', addr: 0x10n, npages: 1n, flags: 0 }])).toThrow(/aligned/);
    // intel_nested_cache_invalidate_user stops at the first bad entry: two handled before it (entry_num = 2)
    const good = { type: 'vtd_s1', addr: 0n, npages: 1n, flags: 0 } as const;
    let failed: unknown;
    try {
      ctx.invalidateHwpt(nested, [good, good, { type: 'vtd_s1', addr: 0x10n, npages: 1n, flags: 0 }, good]);
    } catch (e) {
      failed = e;
    }
    expect(failed).toMatchObject({ errno: 'EINVAL', handled: 2 });
    expect(() => ctx.invalidateHwpt(nested, [{ type: 'vtd_s1', addr: 0n, npages: 1n, flags: 2 }])).toThrow(/EOPNOTSUPP/);
    // Removing the stage-2 mapping of the data page (parent unmap) flushes the nested DID too.
    ctx.detach(dev);
    ctx.destroy(nested);
  });
  it('refuses bad vtd_s1 data', () => {
    const { ctx } = setup();
    const ioas = ctx.allocIoas();
    const dev = ctx.bindDevice(DEV);
    const parent = ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } });
    expect(() => ctx.allocHwpt(dev, { parent, data: { type: 'vtd_s1', flags: 0, pgtblAddr: 0n, addrWidth: 39 } })).toThrow(/addr_width/);
    expect(() => ctx.allocHwpt(dev, { parent: ioas, data: { type: 'vtd_s1', flags: 0, pgtblAddr: 0n, addrWidth: 48 } })).toThrow();
  });
});

describe('SVA', () => {
  it('the PASID entry points at the CPU page table; munmap reaches DMA through the mmu notifier flush', () => {
    const { system, proc, ctx } = setup();
    const buf = proc.mmap(0x2000n);
    proc.write(buf, bytes(5, 6));
    const dev = ctx.bindDevice(DEV);
    const { pasid } = ctx.bindSva(dev, proc);
    expect(system.device(DEV).dma({ iova: buf, size: 2, write: false, pasid })).toEqual({ ok: true, data: bytes(5, 6) });
    proc.munmap(buf, 0x1000n);
    const r = system.device(DEV).dma({ iova: buf, size: 1, write: false, pasid });
    expect(r.ok).toBe(false);
    expect(system.device(DEV).dma({ iova: buf + 0x1000n, size: 0, write: false, pasid }).ok).toBe(true);
    ctx.unbindSva(dev, pasid);
  });
});

describe('page requests', () => {
  it('a fault on an iopf HWPT is drained from the PRQ, reported to the fault queue and answered', () => {
    const { system, units, proc, ctx } = setup();
    const queue = ctx.allocFaultQueue();
    const ioas = ctx.allocIoas();
    const dev = ctx.bindDevice(DEV);
    const hwpt = ctx.allocHwpt(dev, { parent: ioas, faultQueue: queue });
    ctx.attach(dev, hwpt);
    const r = system.device(DEV).dma({ iova: 0x7000n, size: 1, write: true, data: bytes(1) });
    expect(!r.ok && r.fault.class).toBe('page-request');
    const faults = ctx.readFaults(queue);
    expect(faults).toHaveLength(1);
    expect(faults[0]).toMatchObject({ addr: 0x7000n, perm: IOMMU_PGFAULT_PERM_WRITE });
    const buf = proc.mmap(0x1000n);
    ctx.mapDma(ioas, { iova: 0x7000n, vaddr: buf, length: 0x1000n });
    ctx.respondPageFault(queue, { cookie: faults[0]!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS });
    expect(units[0]!.pageRequests().at(-1)).toMatchObject({ status: 'responded', responseCode: 0 });
    expect(system.device(DEV).dma({ iova: 0x7000n, size: 1, write: true, data: bytes(1) }).ok).toBe(true);
  });
});

describe('dirty tracking', () => {
  it('second-stage D bits become the dirty bitmap', () => {
    const { system, proc, ctx } = setup();
    const buf = proc.mmap(0x4000n);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: 0x4000n });
    const dev = ctx.bindDevice(DEV);
    const hwpt = ctx.allocHwpt(dev, { parent: ioas, flags: { dirtyTracking: true } });
    ctx.attach(dev, hwpt);
    ctx.setDirtyTracking(hwpt, true);
    system.device(DEV).dma({ iova: 0x12000n, size: 1, write: true, data: bytes(1) });
    const bm = ctx.readDirtyBitmap(hwpt, { iova: 0x10000n, length: 0x4000n, pageSize: 0x1000n });
    expect(bm[0]).toBe(0b0100);
    expect(ctx.readDirtyBitmap(hwpt, { iova: 0x10000n, length: 0x4000n, pageSize: 0x1000n })[0]).toBe(0);
    system.device(DEV).dma({ iova: 0x12000n, size: 1, write: true, data: bytes(2) }); // re-dirties after the flush
    expect(ctx.readDirtyBitmap(hwpt, { iova: 0x10000n, length: 0x4000n, pageSize: 0x1000n })[0]).toBe(0b0100);
  });
});

describe('identity and capabilities', () => {
  it('without ECAP.NEST there are no nesting formats and nest parents are refused', () => {
    const { ctx } = setup({ ecap: setField(DEFAULT_ECAP, ECAP.NEST, 0) });
    const dev = ctx.bindDevice(DEV);
    expect(ctx.getInfo(dev).nestingFormats).toEqual([]);
    expect(() => ctx.allocHwpt(dev, { parent: ctx.allocIoas(), flags: { nestParent: true } })).toThrow(/EOPNOTSUPP/);
  });
});
