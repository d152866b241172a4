import { describe, expect, it } from 'vitest';
import {
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_DEFAULT,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_DEFAULT,
  PAGE_SIZE,
  type HwptData,
} from '@ioasid/uapi';
import { DEV_A, DEV_B, buffer, dmaFault, dmaRead, expectErrno, expectNoChange, pattern, world } from '../test/harness.js';

const P = PAGE_SIZE;
const SMMU = IOMMU_VIOMMU_TYPE_ARM_SMMUV3;
const EVT = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3;

function le64(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) out[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return out;
}

/**
 * A VMM's set-up: guest RAM (16 pages) at GPA 0 in an IOAS under a nest parent, the mock's
 * stage-1 table (8-byte entries `output | W<<1 | V` per IOVA page) at GPA 0, a vIOMMU over the
 * parent. Device B is on another IOMMU unit when `twoUnits`.
 */
function vmm(twoUnits = false) {
  const w = world([{ name: DEV_A, mdevs: 1 }, DEV_B], { viommu: true, ...(twoUnits ? { unitOf: (ep) => (ep.name === DEV_B ? 1 : 0) } : {}) });
  const ram = buffer(w.proc, 16, 40);
  w.proc.write(ram, new Uint8Array(4096));
  const ioas = w.ctx.allocIoas();
  w.ctx.mapDma(ioas, { iova: 0n, vaddr: ram, length: 16n * P });
  const dev = w.ctx.bindDevice(DEV_A);
  const parent = w.ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } });
  const viommu = w.ctx.allocViommu(dev, { type: SMMU, hwpt: parent });
  const data: HwptData = { type: 'virtio_table', format: 'arm-lpae-s1', root: 0n };
  const mock = w.hw.viommus[0]!;
  return { ...w, ram, ioas, dev, parent, viommu, data, mock };
}

describe('§2.6 IOMMU_VIOMMU_ALLOC', () => {
  it('over a nest parent of the device\'s IOMMU: the vIOMMU references its parent (destroying the parent first is EBUSY)', () => {
    const w = vmm();
    expectNoChange(w, () => { w.ctx.destroy(w.parent); }, 'EBUSY', { argument: 'id' });
    w.ctx.destroy(w.viommu);
    expect(w.mock.freed).toBe(true);
    w.ctx.destroy(w.parent);
  });

  it('errors: unknown device or HWPT ENOENT; a HWPT that is not a nest parent EINVAL; a type the device lacks EOPNOTSUPP; nothing changes', () => {
    const w = vmm();
    const plain = w.ctx.allocHwpt(w.dev, { parent: w.ioas });
    expectNoChange(w, () => w.ctx.allocViommu(999, { type: SMMU, hwpt: w.parent }), 'ENOENT', { argument: 'dev' });
    expectNoChange(w, () => w.ctx.allocViommu(w.dev, { type: SMMU, hwpt: 999 }), 'ENOENT', { argument: 'hwpt' });
    expectNoChange(w, () => w.ctx.allocViommu(w.dev, { type: SMMU, hwpt: w.ioas }), 'ENOENT', { argument: 'hwpt' });
    expectNoChange(w, () => w.ctx.allocViommu(w.dev, { type: SMMU, hwpt: plain }), 'EINVAL', { argument: 'hwpt' });
    expectNoChange(w, () => w.ctx.allocViommu(w.dev, { type: IOMMU_VIOMMU_TYPE_DEFAULT, hwpt: w.parent }), 'EOPNOTSUPP', { argument: 'type' });
    expectNoChange(w, () => w.ctx.allocViommu(w.dev, { type: 77, hwpt: w.parent }), 'EOPNOTSUPP', { argument: 'type' });
    const m = w.ctx.bindDevice(`${DEV_A}/mdev0`);
    expectNoChange(w, () => w.ctx.allocViommu(m, { type: SMMU, hwpt: w.parent }), 'EINVAL', { argument: 'dev' });
    // a backend without vIOMMUs
    const plainWorld = world();
    const io = plainWorld.ctx.allocIoas();
    const d = plainWorld.ctx.bindDevice(DEV_A);
    const np = plainWorld.ctx.allocHwpt(d, { parent: io, flags: { nestParent: true } });
    expectNoChange(plainWorld, () => plainWorld.ctx.allocViommu(d, { type: SMMU, hwpt: np }), 'EOPNOTSUPP', { argument: 'type' });
  });
});

describe('§2.6 IOMMU_VDEVICE_ALLOC and nested HWPTs of a vIOMMU', () => {
  it('a device attaches to a nested HWPT of the vIOMMU only with a vDEVICE there (ENOENT before); then DMA goes through the guest stage 1', () => {
    const w = vmm();
    const nested = w.ctx.allocHwpt(w.dev, { parent: w.viommu, data: w.data });
    // guest stage 1: IOVA page 0x10 → GPA page 3 (writable)
    w.proc.write(w.ram + 0x10n * 8n, le64((3n << 12n) | 3n));
    expectNoChange(w, () => w.ctx.attach(w.dev, nested), 'ENOENT', { argument: 'dev' });
    const vdev = w.ctx.allocVdevice(w.viommu, w.dev, 0x42n);
    expect(w.mock.vdevices.get(0x10)).toBe(0x42n); // RID 00:02.0 = 0x10
    w.ctx.attach(w.dev, nested);
    expect(dmaRead(w, DEV_A, 0x10000n, 4)).toEqual(pattern(40, 3 * 4096, 4));
    // the vIOMMU and the vDEVICE are in use
    expectNoChange(w, () => { w.ctx.destroy(w.viommu); }, 'EBUSY', { argument: 'id' });
    expectNoChange(w, () => { w.ctx.destroy(vdev); }, 'EBUSY', { argument: 'id' });
    w.ctx.detach(w.dev);
    w.ctx.destroy(vdev);
    expect(w.mock.vdevices.size).toBe(0);
    expectNoChange(w, () => { w.ctx.destroy(w.viommu); }, 'EBUSY', { argument: 'id' }); // the nested HWPT still
    w.ctx.destroy(nested);
    w.ctx.destroy(w.viommu);
  });

  it('errors: one vDEVICE per device and one device per virtual ID (EEXIST); the driver refuses a 33-bit ID or another unit (EINVAL); an mdev EINVAL', () => {
    const w = vmm(true);
    expectNoChange(w, () => w.ctx.allocVdevice(w.viommu, w.dev, 1n << 32n), 'EINVAL', { argument: 'virtId' });
    w.ctx.allocVdevice(w.viommu, w.dev, 1n);
    const b = w.ctx.bindDevice(DEV_B);
    const m = w.ctx.bindDevice(`${DEV_A}/mdev0`);
    expectNoChange(w, () => w.ctx.allocVdevice(w.viommu, w.dev, 2n), 'EEXIST', { argument: 'dev' });
    expectNoChange(w, () => w.ctx.allocVdevice(w.viommu, b, 1n), 'EEXIST', { argument: 'virtId' });
    expectNoChange(w, () => w.ctx.allocVdevice(w.viommu, b, 2n), 'EINVAL', { argument: 'dev' }); // another unit
    expectNoChange(w, () => w.ctx.allocVdevice(w.viommu, m, 3n), 'EINVAL', { argument: 'dev' });
    expectNoChange(w, () => w.ctx.allocVdevice(999, w.dev, 3n), 'ENOENT', { argument: 'viommu' });
    expectNoChange(w, () => w.ctx.allocVdevice(w.parent, w.dev, 3n), 'ENOENT', { argument: 'viommu' });
    expectNoChange(w, () => w.ctx.allocVdevice(w.viommu, w.dev, -1n), 'EINVAL', { argument: 'virtId' });
    expectNoChange(w, () => w.ctx.allocVdevice(w.viommu, w.dev, 1n << 64n), 'EOVERFLOW', { argument: 'virtId' });
  });

  it('unbinding a device force-destroys its vDEVICEs: the id is dead (ENOENT) and the vIOMMU can go', () => {
    const w = vmm();
    const vdev = w.ctx.allocVdevice(w.viommu, w.dev, 7n);
    w.ctx.unbindDevice(w.dev);
    expect(w.mock.vdevices.size).toBe(0);
    expectErrno(() => { w.ctx.destroy(vdev); }, 'ENOENT', 'id');
    w.ctx.destroy(w.viommu);
  });

  it('IOMMU_HWPT_INVALIDATE with a vIOMMU id goes to the vIOMMU, entries as given; the count comes back', () => {
    const w = vmm();
    const entries = [{ type: 'arm_smmuv3' as const, cmd: [0x42n << 32n | 0x11n, 0n] as const }];
    expect(w.ctx.invalidateHwpt(w.viommu, entries)).toBe(1);
    expect(w.mock.invalidations).toEqual([entries]);
  });

  it('close() releases vDEVICEs, vEVENTQs, nested HWPTs and the vIOMMU before its parent', () => {
    const w = vmm();
    w.ctx.allocVdevice(w.viommu, w.dev, 7n);
    w.ctx.allocVeventq(w.viommu, { type: EVT, depth: 4 });
    w.ctx.attach(w.dev, w.ctx.allocHwpt(w.dev, { parent: w.viommu, data: w.data }));
    w.ctx.close();
    expect(w.mock.freed).toBe(true);
    expect(w.mock.sinks.size).toBe(0);
    expect(w.mock.vdevices.size).toBe(0);
    expect([...w.hw.domains].every((d) => d.freed)).toBe(true);
    expect(dmaFault(w, DEV_A, 0x10000n)).toBe('blocked');
  });
});

describe('§2.6 IOMMU_VEVENTQ_ALLOC', () => {
  it('events of devices with a vDEVICE arrive with their virtual ID, in order with sequence numbers; beyond depth they are lost', () => {
    const w = vmm();
    w.ctx.allocVdevice(w.viommu, w.dev, 0x42n);
    const q = w.ctx.allocVeventq(w.viommu, { type: EVT, depth: 2 });
    w.mock.report(0x10, 0x10); // F_TRANSLATION of 00:02.0
    w.mock.report(0x18, 0x10); // 00:03.0 has no vDEVICE: not reported
    w.mock.report(0x10, 0x13);
    w.mock.report(0x10, 0x12); // depth 2: lost
    const ev = w.ctx.readVevents(q);
    expect(ev.map((e) => [e.flags, e.sequence, [...e.data]])).toEqual([
      [0, 0, [0x42, 0, 0, 0, 0x10, 0, 0, 0]],
      [0, 1, [0x42, 0, 0, 0, 0x13, 0, 0, 0]],
      [IOMMU_VEVENTQ_FLAG_LOST_EVENTS, 2, []],
    ]);
    expect(w.ctx.readVevents(q)).toEqual([]);
  });

  it('errors: one queue per type (EEXIST); depth 0 EINVAL; a type the vIOMMU does not report EOPNOTSUPP; a destroyed queue gets nothing', () => {
    const w = vmm();
    const q = w.ctx.allocVeventq(w.viommu, { type: EVT, depth: 8 });
    expectNoChange(w, () => w.ctx.allocVeventq(w.viommu, { type: EVT, depth: 8 }), 'EEXIST', { argument: 'type' });
    expectNoChange(w, () => w.ctx.allocVeventq(w.viommu, { type: EVT, depth: 0 }), 'EINVAL', { argument: 'depth' });
    expectNoChange(w, () => w.ctx.allocVeventq(w.viommu, { type: IOMMU_VEVENTQ_TYPE_DEFAULT, depth: 8 }), 'EOPNOTSUPP', { argument: 'type' });
    expectNoChange(w, () => w.ctx.readVevents(w.viommu), 'ENOENT', { argument: 'veventq' });
    expectNoChange(w, () => { w.ctx.destroy(w.viommu); }, 'EBUSY', { argument: 'id' });
    w.ctx.destroy(q);
    expect(w.mock.sinks.size).toBe(0);
    w.ctx.destroy(w.viommu);
  });
});
