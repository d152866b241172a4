import { createSystem, dmaResultInto } from '@ioasid/core';
import { IOMMUFD_PAGE_RESP_SUCCESS, IOMMU_PGFAULT_FLAGS_PASID_VALID, IOMMU_HW_INFO_TYPE_NONE, isIoasidError, type BackendDefinition, type GuestMemory, type Process } from '@ioasid/uapi';
import { describe, expect, it } from 'vitest';
import { VirtioIommuDevice } from './hw/device.js';
import { virtioNestingGuest } from './driver/nesting-guest.js';
import { VIRTIO_IOMMU_F_X_IOASID } from './spec/extension.js';
import { featureBit } from './spec/features.js';
import { PROFILES } from './hw/profile.js';
import { createVirtioIommuSystem, virtioIommuBackend } from './system.js';
import { VirtioIommuDriver } from './driver/virtio-iommu-driver.js';

const DEV = '0000:00:02.0'; // RID = (0 << 8) | (2 << 3 | 0) = 0x10
const EXT = PROFILES.strict.features | featureBit(VIRTIO_IOMMU_F_X_IOASID);

function expectErrno(fn: () => unknown, errno: string): void {
  try {
    fn();
  } catch (e) {
    expect(isIoasidError(e)).toBe(true);
    expect((e as { errno: string }).errno).toBe(errno);
    return;
  }
  throw new Error(`expected ${errno}`);
}

function foundationExample(profile?: 'strict' | 'qemu' | 'cloud-hypervisor' | 'crosvm') {
  const system = createVirtioIommuSystem({ devices: [DEV], ...(profile ? { profile } : {}) });
  const proc = system.createProcess();
  const buf = proc.mmap(0x10000n);
  proc.write(buf, Uint8Array.of(1, 2, 3));
  const ctx = system.open(proc);
  const ioas = ctx.allocIoas();
  ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x10000n, read: true, write: true });
  const dev = ctx.bindDevice(DEV);
  ctx.attach(dev, ioas);
  const read = system.device(DEV).dma({ iova: 0x100000n, size: 3, write: false });
  ctx.unmapDma(ioas, { iova: 0x100000n, length: 0x10000n });
  const after = system.device(DEV).dma({ iova: 0x100000n, size: 3, write: false });
  ctx.close();
  return { read, after, system };
}

describe('the foundation example on virtio-iommu', () => {
  for (const profile of ['strict', 'qemu', 'cloud-hypervisor', 'crosvm'] as const) {
    it(`runs on the ${profile} profile`, () => {
      const { read, after } = foundationExample(profile);
      expect(read).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3) });
      expect(after.ok).toBe(false);
      if (!after.ok) expect(after.fault.class).toBe('translation');
    });
  }
  it('is one MAP request for one physically contiguous area', () => {
    const { system } = foundationExample();
    const device = system.hardware as VirtioIommuDevice;
    expect(device).toBeInstanceOf(VirtioIommuDevice);
    const sent = (system.driver as unknown as { channel: { sent: Map<number, number> } }).channel.sent;
    expect(sent.get(3)).toBe(1); // MAP: mmap(64 KiB) is one contiguous run of 16 frames
    expect(sent.get(4)).toBe(1); // UNMAP
    expect(sent.get(5)).toBe(1); // one PROBE per endpoint
  });
});

describe('hw_info', () => {
  it('without the extension: no PASID, nesting, SVA or IOPF, with reasons; bypass and the MSI window', () => {
    const system = createVirtioIommuSystem({ devices: [DEV] });
    const info = system.driver.hwInfo(system.device(DEV).descriptor);
    expect(info.pasidBits).toBe(0);
    expect(info.nestingFormats).toEqual([]);
    expect([info.sva, info.iopf, info.globalPasid, info.dirtyTracking]).toEqual([false, false, false, false]);
    expect(info.unsupported.sva).toMatch(/VIRTIO_IOMMU_F_X_IOASID/);
    expect(info.unsupported.dirtyTracking).toBe('no dirty tracking in the virtio spec');
    expect(info.passthrough).toBe(true);
    expect(info.blocked).toBe(true);
    expect(info.pageSizes).toEqual([0x1000n, 0x200000n, 0x40000000n]);
    expect(info.iovaRanges).toEqual([{ start: 0n, last: (1n << 64n) - 1n }]);
    expect(info.reservedRegions).toEqual([{ start: 0xfee00000n, last: 0xfeefffffn, kind: 'msi' }]);
    expect(info.dataType).toBe(IOMMU_HW_INFO_TYPE_NONE);
  });
  it('with the extension offered: 20 PASID bits, virtio_table nesting, SVA and IOPF', () => {
    const system = createVirtioIommuSystem({ devices: [DEV], features: EXT });
    const info = system.driver.hwInfo(system.device(DEV).descriptor);
    expect(info.pasidBits).toBe(20);
    expect(info.nestingFormats).toEqual(['virtio_table']);
    expect([info.sva, info.iopf, info.globalPasid]).toEqual([true, true, true]);
  });
  it('crosvm: no passthrough (no BYPASS_CONFIG), input range 48 bits', () => {
    const system = createVirtioIommuSystem({ devices: [DEV], profile: 'crosvm' });
    const info = system.driver.hwInfo(system.device(DEV).descriptor);
    expect(info.passthrough).toBe(false);
    expect(info.iovaRanges).toEqual([{ start: 0n, last: (1n << 48n) - 1n }]);
  });
});

function setup(features = EXT) {
  const system = createVirtioIommuSystem({ devices: [DEV], features });
  const proc = system.createProcess();
  const ctx = system.open(proc);
  const dev = ctx.bindDevice(DEV);
  const ep = system.device(DEV);
  return { system, proc, ctx, dev, ep };
}

describe('attach states', () => {
  it('a freshly bound device is blocked even though QEMU boots bypass on', () => {
    const system = createVirtioIommuSystem({ devices: [DEV], profile: 'qemu' });
    const ctx = system.open(system.createProcess());
    ctx.bindDevice(DEV);
    const r = system.device(DEV).dma({ iova: 0x1000n, size: 1, write: false });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.fault.class).toBe('blocked');
  });
  it('detach blocks; re-attach replays the mappings the device dropped with the domain', () => {
    const { proc, ctx, dev, ep } = setup(PROFILES.strict.features);
    const buf = proc.mmap(0x2000n);
    proc.write(buf, Uint8Array.of(9));
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x4000n, vaddr: buf, length: 0x2000n });
    const hwpt = ctx.allocHwpt(dev, { parent: ioas });
    ctx.attach(dev, hwpt);
    ctx.detach(dev);
    expect(ep.dma({ iova: 0x4000n, size: 1, write: false }).ok).toBe(false);
    ctx.attach(dev, hwpt);
    expect(ep.dma({ iova: 0x4000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(9) });
  });
  it('PASID attach without the extension is EOPNOTSUPP', () => {
    const { ctx, dev } = setup(PROFILES.strict.features);
    const ioas = ctx.allocIoas();
    expectErrno(() => ctx.attach(dev, ioas, { pasid: 5 }), 'EOPNOTSUPP');
  });
});

describe('extension: PASIDs, nesting, SVA, page requests', () => {
  it('attaches an IOAS to a PASID: tagged DMA uses it, untagged DMA stays blocked', () => {
    const { proc, ctx, dev, ep } = setup();
    const buf = proc.mmap(0x1000n);
    proc.write(buf, Uint8Array.of(0x5a));
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x8000n, vaddr: buf, length: 0x1000n });
    const hwpt = ctx.allocHwpt(dev, { parent: ioas, flags: { pasid: true } });
    ctx.attach(dev, hwpt, { pasid: 7 });
    expect(ep.dma({ iova: 0x8000n, size: 1, write: false, pasid: 7 })).toEqual({ ok: true, data: Uint8Array.of(0x5a) });
    expect(ep.dma({ iova: 0x8000n, size: 1, write: false, pasid: 8 }).ok).toBe(false);
    expect(ep.dma({ iova: 0x8000n, size: 1, write: false }).ok).toBe(false);
    ctx.detach(dev, { pasid: 7 });
    expect(ep.dma({ iova: 0x8000n, size: 1, write: false, pasid: 7 }).ok).toBe(false);
  });

  function nested(proc: Process, ctx: ReturnType<typeof setup>['ctx'], dev: number) {
    // Guest RAM: 1 MiB of the process mapped at GPA 0 of the parent IOAS (stage-2 input).
    const ram = proc.mmap(0x100000n);
    const s2 = ctx.allocIoas();
    ctx.mapDma(s2, { iova: 0n, vaddr: ram, length: 0x100000n });
    const parent = ctx.allocHwpt(dev, { parent: s2, flags: { nestParent: true } });
    let next = 0x10000n;
    const mem: GuestMemory = {
      read64: (gpa) => new DataView(proc.read(ram + gpa, 8).buffer).getBigUint64(0, true),
      write64: (gpa, v) => {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setBigUint64(0, v, true);
        proc.write(ram + gpa, b);
      },
      alloc: () => {
        const at = next;
        next += 0x1000n;
        return at;
      },
    };
    return { ram, parent, guest: virtioNestingGuest.create(mem) };
  }

  it('nested LPAE table: stage 1 in guest tables, stage 2 through the parent; stale until INVALIDATE', () => {
    const { proc, ctx, dev, ep } = setup();
    const { ram, parent, guest } = nested(proc, ctx, dev);
    proc.write(ram + 0x3000n, Uint8Array.of(0x11));
    proc.write(ram + 0x4000n, Uint8Array.of(0x22));
    guest.map(0x7000_0000n, 0x3000n, true);
    const child = ctx.allocHwpt(dev, { parent, data: guest.data });
    ctx.attach(dev, child);
    expect(ep.dma({ iova: 0x7000_0000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x11) });
    guest.map(0x7000_0000n, 0x4000n, true); // the guest changes its table without telling the device
    expect(ep.dma({ iova: 0x7000_0000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x11) });
    expect(ctx.invalidateHwpt(child, guest.invalidateRange(0x7000_0000n, 0x1000n))).toBe(1);
    expect(ep.dma({ iova: 0x7000_0000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x22) });
    // a malformed entry after a good one: every entry is encoded before any INVALIDATE goes
    // out, so none was handled (entry_num = 0) and the table change stays invisible
    guest.map(0x7000_0000n, 0x3000n, true);
    let failed: unknown;
    try {
      ctx.invalidateHwpt(child, [...guest.invalidateRange(0x7000_0000n, 0x1000n), { type: 'virtio', scope: 'va' }]);
    } catch (e) {
      failed = e;
    }
    expect(failed).toMatchObject({ errno: 'EINVAL', argument: 'entries[1]', handled: 0 });
    expect(ep.dma({ iova: 0x7000_0000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x22) });
    const miss = ep.dma({ iova: 0x7000_1000n, size: 1, write: false });
    expect(miss.ok).toBe(false);
    if (!miss.ok) expect(miss.fault.class).toBe('translation');
  });

  it('a guest output address the parent does not map is a stage-2 fault', () => {
    const { proc, ctx, dev, ep } = setup();
    const { parent, guest } = nested(proc, ctx, dev);
    guest.map(0x1000n, 0x200000n, false); // GPA 2 MiB is beyond the 1 MiB the parent maps
    const child = ctx.allocHwpt(dev, { parent, data: guest.data });
    ctx.attach(dev, child);
    const r = ep.dma({ iova: 0x1000n, size: 1, write: false });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.fault.record.stage).toBe(2);
    const w = ep.dma({ iova: 0x1000n, size: 0, write: true, data: Uint8Array.of(1) });
    expect(w.ok).toBe(false);
  });

  it('nested page requests reach the fault queue and PAGE_RESP completes them', () => {
    const { proc, ctx, dev, ep, system } = setup();
    const { parent, guest } = nested(proc, ctx, dev);
    const queue = ctx.allocFaultQueue();
    const child = ctx.allocHwpt(dev, { parent, data: guest.data, faultQueue: queue });
    ctx.attach(dev, child);
    const r = ep.dma({ iova: 0x5000n, size: 4, write: true, data: Uint8Array.of(1, 2, 3, 4) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.fault.class).toBe('page-request');
    const faults = ctx.readFaults(queue);
    expect(faults.length).toBe(1);
    expect(faults[0]!.addr).toBe(0x5000n);
    const device = system.hardware as VirtioIommuDevice;
    expect(device.pendingPageRequests(0x10)).toBe(1);
    ctx.respondPageFault(queue, { cookie: faults[0]!.cookie, code: 0 });
    expect(device.pendingPageRequests(0x10)).toBe(0);
  });

  it('SVA walks the process AArch64 page table on the process PASID and follows munmap', () => {
    const { proc, ctx, dev, ep } = setup();
    const va = proc.mmap(0x2000n);
    proc.write(va + 0x1000n, Uint8Array.of(0xab));
    const { pasid } = ctx.bindSva(dev, proc);
    expect(ep.dma({ iova: va + 0x1000n, size: 1, write: false, pasid })).toEqual({ ok: true, data: Uint8Array.of(0xab) });
    expect(ep.dma({ iova: va, size: 0, write: true, pasid, data: Uint8Array.of(7) }).ok).toBe(true);
    expect(proc.read(va, 1)[0]).toBe(7);
    proc.munmap(va, 0x2000n);
    const r = ep.dma({ iova: va + 0x1000n, size: 1, write: false, pasid });
    expect(r.ok).toBe(false);
  });

  it('rejects other vendors’ nesting data and PASID-bound tables on a PASID attach', () => {
    const { proc, ctx, dev } = setup();
    const { parent, guest } = nested(proc, ctx, dev);
    expectErrno(() => ctx.allocHwpt(dev, { parent, data: { type: 'vtd_s1', flags: 0, pgtblAddr: 0n, addrWidth: 48 } }), 'EOPNOTSUPP');
    const child = ctx.allocHwpt(dev, { parent, data: { ...guest.data, format: 'arm-lpae-s1', pasid: 3 } as typeof guest.data });
    expectErrno(() => ctx.attach(dev, child, { pasid: 9 }), 'EINVAL');
  });
});

const DEV2 = '0000:00:03.0'; // RID 0x18

/** Two devices sharing one IOAS, a page mapped: the set-up of a detach from a shared HWPT. */
function sharedIoas(system: ReturnType<typeof createVirtioIommuSystem>) {
  const proc = system.createProcess();
  const buf = proc.mmap(0x1000n);
  proc.write(buf, Uint8Array.of(0x42));
  const ctx = system.open(proc);
  const ioas = ctx.allocIoas();
  ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x1000n });
  const d1 = ctx.bindDevice(DEV);
  const d2 = ctx.bindDevice(DEV2);
  const a1 = ctx.attach(d1, ioas);
  const a2 = ctx.attach(d2, ioas);
  return { proc, ctx, ioas, d1, d2, a1, a2 };
}

describe('detach always blocks', () => {
  for (const profile of ['strict', 'qemu', 'cloud-hypervisor', 'crosvm'] as const) {
    it(`${profile}: a device detached from an HWPT it shares faults; the other keeps its mappings`, () => {
      const system = createVirtioIommuSystem({ devices: [DEV, DEV2], profile });
      const { ctx, d1, a1, a2 } = sharedIoas(system);
      expect(a2.hwpt).toBe(a1.hwpt); // one HWPT for the uAPI…
      const held = (system.hardware as VirtioIommuDevice).snapshot();
      // …two device domains, one endpoint each (RIDs 0x10 and 0x18)
      expect([...held.values()].map((d) => d.endpoints)).toEqual([['10'], ['18']]);
      ctx.detach(d1);
      const r = system.device(DEV).dma({ iova: 0x100000n, size: 1, write: false });
      expect(r.ok ? '' : r.fault.class).toBe('blocked');
      expect(system.device(DEV2).dma({ iova: 0x100000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x42) });
      ctx.attach(d1, a1.hwpt);
      expect(system.device(DEV).dma({ iova: 0x100000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x42) });
    });
  }

  it('crosvm: a device moved into a shared IOAS can still be detached (workload 2)', () => {
    const system = createVirtioIommuSystem({ devices: [DEV, DEV2], profile: 'crosvm' });
    const { ctx, ioas, d1, d2 } = sharedIoas(system);
    const b = ctx.allocIoas();
    ctx.attach(d2, b);
    ctx.attach(d2, ioas);
    ctx.detach(d2);
    ctx.detach(d1);
    for (const dev of [DEV, DEV2]) {
      const r = system.device(dev).dma({ iova: 0x100000n, size: 1, write: false });
      expect(r.ok ? '' : r.fault.class).toBe('blocked');
    }
    expect((system.hardware as VirtioIommuDevice).snapshot().size).toBe(0);
  });

  it('a device that refuses DETACH: the endpoint is parked in an empty domain and every DMA faults', () => {
    // The device model behind a transport that answers every DETACH with UNSUPP.
    const base = virtioIommuBackend();
    let hw: VirtioIommuDevice | undefined;
    const refusing: BackendDefinition = {
      ...base,
      create(host) {
        const device = new VirtioIommuDevice({ memory: host.memory, endpoints: host.endpoints.map((e) => e.rid) });
        hw = device;
        const transport = {
          deviceFeatures: device.deviceFeatures,
          negotiate: (f: bigint) => device.negotiate(f),
          readConfig: () => device.readConfig(),
          writeConfig: (o: number, d: Uint8Array) => { device.writeConfig(o, d); },
          request: (r: Uint8Array, w?: number) => (r[0] === 2 ? Uint8Array.of(2, 0, 0, 0) : device.request(r, w)),
          takeEvents: () => device.takeEvents(),
          setEventNotifier: (n: (() => void) | undefined) => { device.setEventNotifier(n); },
        };
        const driver = new VirtioIommuDriver({ transport, endpoints: host.endpoints });
        return { driver, hardware: device, dmaInto: (ep, req, into) => dmaResultInto(device.dma({ endpoint: ep.rid, iova: req.iova, size: req.size, write: req.write }), into) };
      },
    };
    const system = createSystem(refusing, { devices: [DEV, DEV2] });
    const { ctx, d1, a1 } = sharedIoas(system);
    ctx.detach(d1);
    const held = hw!.snapshot();
    const parked = [...held.entries()].find(([, d]) => d.endpoints.includes('10'));
    expect(parked?.[1].mappings).toEqual([]); // an empty domain of its own
    for (const iova of [0x100000n, 0n, 0xfffff000n]) {
      const r = system.device(DEV).dma({ iova, size: 1, write: false });
      expect(r.ok).toBe(false);
      // VIRTIO_IOMMU_FAULT_R_MAPPING: attached, but nothing is mapped
      if (!r.ok) expect([r.fault.class, r.fault.code]).toEqual(['translation', 2]);
    }
    expect(system.device(DEV2).dma({ iova: 0x100000n, size: 1, write: false }).ok).toBe(true);
    ctx.attach(d1, a1.hwpt); // leaving the empty domain destroys it
    expect(system.device(DEV).dma({ iova: 0x100000n, size: 1, write: false }).ok).toBe(true);
    expect([...hw!.snapshot().values()].every((d) => d.mappings.length === 1)).toBe(true);
    ctx.close();
  });
});

describe('extension: a paging HWPT that reports I/O page faults', () => {
  it('DMA to an unmapped IOVA → one page request in the queue; map, respond SUCCESS, the retry reads the page', () => {
    const { proc, ctx, dev, ep, system } = setup();
    const queue = ctx.allocFaultQueue();
    const ioas = ctx.allocIoas();
    const hwpt = ctx.allocHwpt(dev, { parent: ioas, faultQueue: queue, flags: { pasid: true } });
    ctx.attach(dev, hwpt);
    const r = ep.dma({ iova: 0x100000n, size: 4, write: false });
    expect(r.ok ? '' : r.fault.class).toBe('page-request');
    const faults = ctx.readFaults(queue);
    expect(faults.length).toBe(1);
    expect(faults[0]!.addr).toBe(0x100000n);
    expect(faults[0]!.flags & IOMMU_PGFAULT_FLAGS_PASID_VALID).toBe(0); // an untagged DMA
    const buf = proc.mmap(0x1000n);
    proc.write(buf, Uint8Array.of(7, 8, 9, 10));
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x1000n });
    ctx.respondPageFault(queue, { cookie: faults[0]!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS });
    expect((system.hardware as VirtioIommuDevice).pendingPageRequests(0x10)).toBe(0);
    expect(ep.dma({ iova: 0x100000n, size: 4, write: false })).toEqual({ ok: true, data: Uint8Array.of(7, 8, 9, 10) });
  });
  it('is EOPNOTSUPP without the extension, as hw_info says', () => {
    const { ctx, dev } = setup(PROFILES.strict.features);
    expect(ctx.getInfo(dev).iopf).toBe(false);
    const queue = ctx.allocFaultQueue();
    expectErrno(() => ctx.allocHwpt(dev, { parent: ctx.allocIoas(), faultQueue: queue }), 'EOPNOTSUPP');
  });
});
