import { describe, expect, it } from 'vitest';
import { IOMMU_PGFAULT_PERM_WRITE, IOMMUFD_PAGE_RESP_SUCCESS, isIoasidError } from '@ioasid/uapi';
import { PRG_RESPONSE_INVALID_REQUEST, PRG_RESPONSE_SUCCESS } from './spec/priq.js';
import { createSmmuV3System } from './system.js';
import type { SmmuV3Hardware } from './hw/smmu-v3.js';

describe('foundation example on SMMUv3', () => {
  it('maps, DMAs, unmaps (issue 3 "must work as written")', () => {
    const system = createSmmuV3System({ devices: ['0000:00:02.0'] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x10000n);
    proc.write(buf, Uint8Array.of(1, 2, 3));
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x10000n, read: true, write: true });
    const dev = ctx.bindDevice('0000:00:02.0');
    ctx.attach(dev, ioas);
    expect(system.device('0000:00:02.0').dma({ iova: 0x100000n, size: 3, write: false })).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3) });
    ctx.unmapDma(ioas, { iova: 0x100000n, length: 0x10000n });
    const r = system.device('0000:00:02.0').dma({ iova: 0x100000n, size: 3, write: false });
    expect(r.ok ? '' : r.fault.name).toBe('F_TRANSLATION');
    ctx.close();
  });

  it('hw_info is truthful: SSIDSIZE 20, nesting, MSI window, IDRs', () => {
    const system = createSmmuV3System({ devices: ['0000:00:02.0'] });
    const ctx = system.open(system.createProcess());
    const info = ctx.getInfo(ctx.bindDevice('0000:00:02.0'));
    expect(info).toMatchObject({
      backend: 'arm-smmuv3', pasidBits: 20, nestingFormats: ['arm_smmuv3'], passthrough: true, blocked: true,
      sva: true, iopf: true, globalPasid: true, dirtyTracking: true, dataType: 2,
    });
    expect(info.reservedRegions).toEqual([{ start: 0x8000000n, last: 0x80fffffn, kind: 'msi' }]);
    expect(info.iovaRanges).toEqual([{ start: 0n, last: 2n ** 48n - 1n }]);
    expect(info.pageSizes.slice(0, 3)).toEqual([4096n, 16384n, 65536n]);
  });

  it('qemu profile: no PASIDs, no nesting, 44-bit IOVA', () => {
    const system = createSmmuV3System({ devices: ['0000:00:02.0'], profile: 'qemu' });
    const ctx = system.open(system.createProcess());
    const info = ctx.getInfo(ctx.bindDevice('0000:00:02.0'));
    expect(info).toMatchObject({ pasidBits: 0, nestingFormats: [], sva: false, iopf: false });
    expect(info.iovaRanges).toEqual([{ start: 0n, last: 2n ** 44n - 1n }]);
  });
});

describe('PASIDs, identity, blocked', () => {
  it('RID and a PASID translate through different CDs; detach blocks', () => {
    const system = createSmmuV3System({ devices: ['0000:00:02.0'] });
    const proc = system.createProcess();
    const a = proc.mmap(0x1000n);
    const b = proc.mmap(0x1000n);
    proc.write(a, Uint8Array.of(0xa));
    proc.write(b, Uint8Array.of(0xb));
    const ctx = system.open(proc);
    const io1 = ctx.allocIoas();
    const io2 = ctx.allocIoas();
    ctx.mapDma(io1, { iova: 0x200000n, vaddr: a, length: 0x1000n });
    ctx.mapDma(io2, { iova: 0x200000n, vaddr: b, length: 0x1000n });
    const dev = ctx.bindDevice('0000:00:02.0');
    ctx.attach(dev, io1);
    const { pasid } = ctx.attach(dev, io2, { pasid: 'auto' });
    const ep = system.device('0000:00:02.0');
    expect(ep.dma({ iova: 0x200000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0xa) });
    expect(ep.dma({ iova: 0x200000n, size: 1, write: false, pasid: pasid! })).toEqual({ ok: true, data: Uint8Array.of(0xb) });
    ctx.detach(dev, { pasid: pasid! });
    const r = ep.dma({ iova: 0x200000n, size: 1, write: false, pasid: pasid! });
    expect(r.ok ? '' : r.fault.name).toBe('C_BAD_CD');
    ctx.detach(dev);
    const s = ep.dma({ iova: 0x200000n, size: 1, write: false });
    expect(s.ok ? '' : s.fault.class).toBe('blocked');
  });

  it('an unbound device is blocked (abort STE, no event)', () => {
    const system = createSmmuV3System({ devices: ['0000:00:02.0'] });
    const r = system.device('0000:00:02.0').dma({ iova: 0n, size: 1, write: false });
    expect(r.ok).toBe(false);
  });
});

describe('nesting', () => {
  it('a nested vSTE over a stage-2 parent translates the guest CD table; bad vSTE bits are EIO', () => {
    const system = createSmmuV3System({ devices: ['0000:00:02.0'] });
    const mem = system.memory;
    const proc = system.createProcess();
    // 16 pages of "guest RAM" mapped at IPA 0x4000_0000.
    const ram = proc.mmap(0x10000n);
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x40000000n, vaddr: ram, length: 0x10000n });
    const dev = ctx.bindDevice('0000:00:02.0');
    const s2 = ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } });
    // The guest builds a CD at IPA 0x4000_0000 and 4-level tables at IPA 0x4000_1000.. mapping
    // VA 0x1000 → IPA 0x4000_5000 (user RW page). Guest memory is written through the process.
    const w64 = (ipa: bigint, v: bigint) => {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setBigUint64(0, v, true);
      proc.write(ram + (ipa - 0x40000000n), bytes);
    };
    // CD: T0SZ 16, EPD1, V, IPS 5 (48 bits), AA64, R, A, ASID 1, TTB0.
    w64(0x40000000n, 16n | (1n << 30n) | (1n << 31n) | (5n << 32n) | (1n << 41n) | (1n << 45n) | (1n << 46n) | (1n << 48n));
    w64(0x40000008n, 0x40001000n);
    w64(0x40001000n, 0x40002000n | 3n); // L0[0]
    w64(0x40002000n, 0x40003000n | 3n); // L1[0]
    w64(0x40003000n, 0x40004000n | 3n); // L2[0]
    w64(0x40004008n, 0x40005000n | 3n | (1n << 6n) | (1n << 10n) | (1n << 11n)); // L3[1]: VA 0x1000
    proc.write(ram + 0x5000n, Uint8Array.of(0x5a));
    const vste0 = 1n | (5n << 1n) | 0x40000000n; // V, Config S1_TRANS, S1ContextPtr, S1CDMax 0
    const nested = ctx.allocHwpt(dev, { parent: s2, data: { type: 'arm_smmuv3', ste: [vste0, 0n] } });
    ctx.attach(dev, nested);
    expect(system.device('0000:00:02.0').dma({ iova: 0x1000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x5a) });
    // Guest changes its PTE: stale until the guest's TLBI goes through the vIOMMU invalidation.
    w64(0x40004008n, 0n);
    expect(system.device('0000:00:02.0').dma({ iova: 0x1000n, size: 1, write: false }).ok).toBe(true);
    // CMD_TLBI_NH_ASID (0x11), ASID 1: the kernel forces the VMID.
    expect(ctx.invalidateHwpt(nested, [{ type: 'arm_smmuv3', cmd: [0x11n | (1n << 48n) | (0x77n << 32n), 0n] }])).toBe(1);
    const r = system.device('0000:00:02.0').dma({ iova: 0x1000n, size: 1, write: false });
    expect(r.ok ? '' : r.fault.name).toBe('F_TRANSLATION');
    // CFGI_STE (0x03) is not on the allow-list.
    let err: unknown;
    try {
      ctx.invalidateHwpt(nested, [{ type: 'arm_smmuv3', cmd: [0x3n, 0n] }]);
    } catch (e) {
      err = e;
    }
    expect(isIoasidError(err, 'EIO')).toBe(true);
    // A vSTE with S2 bits set is EIO.
    expect(() => ctx.allocHwpt(dev, { parent: s2, data: { type: 'arm_smmuv3', ste: [vste0, 1n << 44n] } })).toThrow(/EIO/);
    expect(() => ctx.allocHwpt(dev, { parent: s2, data: { type: 'arm_smmuv3', ste: [1n | (6n << 1n), 0n] } })).toThrow(/EIO/);
    expect(mem.size).toBeGreaterThan(0n);
  });
});

describe('SVA and page requests', () => {
  it('an iopf HWPT reports PRI page requests to its fault queue; the response is CMD_PRI_RESP Success', () => {
    const system = createSmmuV3System({ devices: ['0000:00:02.0'] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x1000n);
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    const dev = ctx.bindDevice('0000:00:02.0');
    const q = ctx.allocFaultQueue();
    const hwpt = ctx.allocHwpt(dev, { parent: ioas, faultQueue: q });
    ctx.attach(dev, hwpt);
    const ep = system.device('0000:00:02.0');
    const r = ep.dma({ iova: 0x300000n, size: 4, write: true, data: new Uint8Array(4) });
    expect(r.ok ? '' : r.fault.class).toBe('page-request');
    const [f] = ctx.readFaults(q);
    expect(f).toMatchObject({ addr: 0x300000n, perm: IOMMU_PGFAULT_PERM_WRITE });
    ctx.mapDma(ioas, { iova: 0x300000n, vaddr: buf, length: 0x1000n });
    ctx.respondPageFault(q, { cookie: f!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS });
    const hw = system.hardware as SmmuV3Hardware;
    expect(hw.priResponses.at(-1)).toMatchObject({ streamId: 0x10, code: PRG_RESPONSE_SUCCESS, auto: false });
    expect(ep.dma({ iova: 0x300000n, size: 4, write: true, data: Uint8Array.of(1, 2, 3, 4) }).ok).toBe(true);
    expect(proc.read(buf, 4)).toEqual(Uint8Array.of(1, 2, 3, 4));
  });

  it('the CD points at the process page table; munmap reaches DMA after TLBI; PRI page requests are answered', () => {
    const system = createSmmuV3System({ devices: ['0000:00:02.0'] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x2000n);
    proc.write(buf, Uint8Array.of(0x42));
    const ctx = system.open(proc);
    const dev = ctx.bindDevice('0000:00:02.0');
    const { pasid } = ctx.bindSva(dev, proc);
    const ep = system.device('0000:00:02.0');
    expect(ep.dma({ iova: buf, size: 1, write: false, pasid })).toEqual({ ok: true, data: Uint8Array.of(0x42) });
    proc.munmap(buf, 0x1000n);
    const r = ep.dma({ iova: buf, size: 1, write: false, pasid });
    expect(r.ok ? '' : r.fault.class).toBe('page-request');
    // The PRI queue record reached the driver, core found no mapping and answered the group
    // as invalid: the driver's CMD_PRI_RESP (Resp 1, InvalidRequest) reached the endpoint.
    const hw = system.hardware as SmmuV3Hardware;
    expect(hw.priResponses).toEqual([{ streamId: 0x10, substreamId: pasid, prgi: 1, code: PRG_RESPONSE_INVALID_REQUEST, auto: false }]);
    ctx.unbindSva(dev, pasid);
    const after = ep.dma({ iova: buf + 0x1000n, size: 1, write: false, pasid });
    expect(after.ok).toBe(false);
  });
});

describe('Endpoint.dmaInto on the native path', () => {
  it('reads into the caller\'s buffer, writes, and faults exactly as dma() does; with ATS and PRI the page request too', () => {
    const system = createSmmuV3System({ devices: ['0000:00:02.0'] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x1000n);
    proc.write(buf, Uint8Array.of(9, 8, 7, 6));
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    const dev = ctx.bindDevice('0000:00:02.0');
    ctx.attach(dev, ioas);
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x1000n });
    const ep = system.device('0000:00:02.0');
    const into = new Uint8Array(6).fill(0xee);
    expect(ep.dmaInto({ iova: 0x100001n, size: 3, write: false }, into)).toBeUndefined();
    expect(into).toEqual(Uint8Array.of(8, 7, 6, 0xee, 0xee, 0xee));
    expect(ep.dmaInto({ iova: 0x100000n, size: 0, write: true, data: Uint8Array.of(1) })).toBeUndefined();
    expect(proc.read(buf, 1)).toEqual(Uint8Array.of(1));
    const miss = { iova: 0x200000n, size: 4, write: false };
    const r = ep.dma(miss);
    expect(r.ok).toBe(false);
    const f = ep.dmaInto(miss, into);
    if (!r.ok) expect(f).toMatchObject({ class: r.fault.class, name: r.fault.name, code: r.fault.code, iova: r.fault.iova });
    expect(into).toEqual(Uint8Array.of(8, 7, 6, 0xee, 0xee, 0xee));

    // An iopf HWPT: the driver enables ATS and PRI, and a failed translation becomes a PRI Page Request.
    const q = ctx.allocFaultQueue();
    const hwpt = ctx.allocHwpt(dev, { parent: ioas, faultQueue: q });
    ctx.attach(dev, hwpt);
    expect(ep.dmaInto({ iova: 0x100001n, size: 3, write: false }, into)).toBeUndefined();
    const pr = ep.dmaInto({ iova: 0x300000n, size: 4, write: false }, into);
    expect(pr).toMatchObject({ class: 'page-request', name: 'PRI_PAGE_REQUEST', iova: 0x300000n });
    expect(ctx.readFaults(q)).toMatchObject([{ addr: 0x300000n }]);
  });
});
