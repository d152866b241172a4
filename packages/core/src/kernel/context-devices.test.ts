import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '@ioasid/uapi';
import {
  DEV_A,
  DEV_B,
  buffer,
  dmaFault,
  dmaRead,
  expectErrno,
  expectNoChange,
  pattern,
  snapshot,
  world,
} from '../test/harness.js';

const P = PAGE_SIZE;

/** Two IOASes mapping different buffers at the same IOVA 0x10000. */
function twoSpaces() {
  const w = world();
  const b1 = buffer(w.proc, 2, 10);
  const b2 = buffer(w.proc, 2, 20);
  const io1 = w.ctx.allocIoas();
  const io2 = w.ctx.allocIoas();
  w.ctx.mapDma(io1, { iova: 0x10000n, vaddr: b1, length: 2n * P });
  w.ctx.mapDma(io2, { iova: 0x10000n, vaddr: b2, length: 2n * P });
  const a = w.ctx.bindDevice(DEV_A);
  const b = w.ctx.bindDevice(DEV_B);
  return { ...w, io1, io2, a, b };
}

describe('contract: blocked DMA', () => {
  it('contract: a device that is bound but not attached is blocked; so is one never bound', () => {
    const w = twoSpaces();
    expect(dmaFault(w, DEV_A, 0x10000n)).toBe('blocked');
    expect(dmaFault(w, DEV_A, 0x10000n, true)).toBe('blocked');
    const fresh = world();
    expect(dmaFault(fresh, DEV_B, 0x10000n)).toBe('blocked');
  });

  it('contract: a detached device, an unbound device, and any PASID that is not attached are blocked', () => {
    const w = twoSpaces();
    w.ctx.attach(w.a, w.io1);
    w.ctx.attach(w.b, w.io1);
    expect(dmaRead(w, DEV_A, 0x10000n, 2)).toEqual(pattern(10, 0, 2));
    expect(dmaFault(w, DEV_A, 0x10000n, false, 1)).toBe('blocked'); // PASID 1 was never attached
    w.ctx.detach(w.a);
    expect(dmaFault(w, DEV_A, 0x10000n)).toBe('blocked');
    w.ctx.unbindDevice(w.b);
    expect(dmaFault(w, DEV_B, 0x10000n)).toBe('blocked');
    expect(dmaFault(w, DEV_B, 0x10000n, true)).toBe('blocked');
  });

  it('contract: detaching a PASID blocks that PASID only', () => {
    const w = twoSpaces();
    w.ctx.attach(w.a, w.io1);
    w.ctx.attach(w.a, w.io2, { pasid: 3 });
    expect(dmaRead(w, DEV_A, 0x10000n, 2, 3)).toEqual(pattern(20, 0, 2));
    w.ctx.detach(w.a, { pasid: 3 });
    expect(dmaFault(w, DEV_A, 0x10000n, false, 3)).toBe('blocked');
    expect(dmaRead(w, DEV_A, 0x10000n, 2)).toEqual(pattern(10, 0, 2));
  });
});

describe('§2.7 attach / replace / detach (contract)', () => {
  it('§2.7 ATTACH to an IOAS returns the auto-created HWPT; devices of one IOMMU share it', () => {
    const w = twoSpaces();
    const ra = w.ctx.attach(w.a, w.io1);
    const rb = w.ctx.attach(w.b, w.io1);
    expect(ra.pasid).toBeUndefined();
    expect(rb.hwpt).toBe(ra.hwpt);
    expect(ra.hwpt).not.toBe(w.io1);
  });

  it('contract: attach of an already attached device replaces the attachment (not EBUSY)', () => {
    const w = twoSpaces();
    w.ctx.attach(w.a, w.io1);
    expect(dmaRead(w, DEV_A, 0x10000n, 2)).toEqual(pattern(10, 0, 2));
    w.ctx.attach(w.a, w.io2);
    expect(dmaRead(w, DEV_A, 0x10000n, 2)).toEqual(pattern(20, 0, 2));
    // the same for a PASID
    w.ctx.attach(w.a, w.io1, { pasid: 7 });
    w.ctx.attach(w.a, w.io2, { pasid: 7 });
    expect(dmaRead(w, DEV_A, 0x10000n, 2, 7)).toEqual(pattern(20, 0, 2));
    // attaching again to what is attached changes nothing
    const before = snapshot(w);
    w.ctx.attach(w.a, w.io2);
    expect(snapshot(w)).toEqual(before);
  });

  it('contract: the auto HWPT is destroyed when its last device detaches, and its id then gives ENOENT', () => {
    const w = twoSpaces();
    const { hwpt } = w.ctx.attach(w.a, w.io1);
    w.ctx.attach(w.b, w.io1);
    expectNoChange(w, () => { w.ctx.destroy(hwpt); }, 'EBUSY');
    w.ctx.detach(w.a);
    expectNoChange(w, () => { w.ctx.destroy(hwpt); }, 'EBUSY'); // DEV_B still uses it
    w.ctx.detach(w.b);
    expectErrno(() => { w.ctx.destroy(hwpt); }, 'ENOENT', 'id');
    expectErrno(() => w.ctx.attach(w.a, hwpt), 'ENOENT', 'target');
    // and the IOAS is free to go
    w.ctx.destroy(w.io1);
  });

  it('contract: the auto HWPT is destroyed when its last device moves away (replace)', () => {
    const w = twoSpaces();
    const { hwpt } = w.ctx.attach(w.a, w.io1);
    const moved = w.ctx.attach(w.a, w.io2).hwpt;
    expect(moved).not.toBe(hwpt);
    expectErrno(() => { w.ctx.destroy(hwpt); }, 'ENOENT');
    expect(w.hw.domains.size).toBe(2);
    expect([...w.hw.domains].filter((d) => !d.freed)).toHaveLength(1);
  });

  it('contract: the auto HWPT is destroyed when its device is unbound', () => {
    const w = twoSpaces();
    const { hwpt } = w.ctx.attach(w.a, w.io1);
    w.ctx.unbindDevice(w.a);
    expectErrno(() => { w.ctx.destroy(hwpt); }, 'ENOENT');
    expectErrno(() => w.ctx.getInfo(w.a), 'ENOENT', 'dev');
    w.ctx.destroy(w.io1);
  });

  it('contract: an explicitly allocated HWPT survives its last detach (only auto HWPTs go)', () => {
    const w = twoSpaces();
    const hwpt = w.ctx.allocHwpt(w.a, { parent: w.io1 });
    expect(w.ctx.attach(w.a, hwpt)).toEqual({ hwpt });
    w.ctx.detach(w.a);
    expect(w.ctx.attach(w.b, hwpt)).toEqual({ hwpt });
    expect(dmaRead(w, DEV_B, 0x10000n, 2)).toEqual(pattern(10, 0, 2));
  });

  it('contract: detach of a PASID that is not attached (or of a detached RID) succeeds and changes nothing', () => {
    const w = twoSpaces();
    w.ctx.attach(w.a, w.io1);
    w.ctx.attach(w.a, w.io2, { pasid: 2 });
    const probes = [{ dev: DEV_A, iova: 0x10000n }, { dev: DEV_A, iova: 0x10000n, pasid: 2 }];
    const before = snapshot(w, probes);
    w.ctx.detach(w.a, { pasid: 9 });
    w.ctx.detach(w.b);
    w.ctx.detach(w.b, { pasid: 2 });
    expect(snapshot(w, probes)).toEqual(before);
  });

  it('§2.7 ATTACH errors: unknown device or target is ENOENT, a target that is neither IOAS nor HWPT is EINVAL; nothing changes', () => {
    const w = twoSpaces();
    w.ctx.attach(w.a, w.io1);
    const q = w.ctx.allocFaultQueue();
    const probes = [{ dev: DEV_A, iova: 0x10000n }];
    expectNoChange(w, () => w.ctx.attach(999, w.io1), 'ENOENT', { argument: 'dev', probes });
    expectNoChange(w, () => w.ctx.attach(w.io1, w.io1), 'ENOENT', { argument: 'dev', probes });
    expectNoChange(w, () => w.ctx.attach(w.a, 999), 'ENOENT', { argument: 'target', probes });
    expectNoChange(w, () => w.ctx.attach(w.a, w.b), 'EINVAL', { argument: 'target', probes });
    expectNoChange(w, () => w.ctx.attach(w.a, q), 'EINVAL', { argument: 'target', probes });
  });

  it('§2.7 ATTACH: a replace that fails leaves the previous attachment in place', () => {
    const w = twoSpaces();
    const buf = buffer(w.proc, 1);
    w.ctx.attach(w.a, w.io1);
    const bad = w.ctx.allocIoas();
    w.ctx.mapDma(bad, { iova: 0xfee00000n, vaddr: buf, length: P }); // inside the MSI window
    expectNoChange(w, () => w.ctx.attach(w.a, bad), 'EADDRINUSE', { probes: [{ dev: DEV_A, iova: 0x10000n }] });
    expect(dmaRead(w, DEV_A, 0x10000n, 2)).toEqual(pattern(10, 0, 2));
  });

  it('§2.7 ATTACH: a PASID attach to a HWPT allocated without the PASID flag is EINVAL', () => {
    const w = twoSpaces();
    const plain = w.ctx.allocHwpt(w.a, { parent: w.io1 });
    const flagged = w.ctx.allocHwpt(w.a, { parent: w.io1, flags: { pasid: true } });
    expectNoChange(w, () => w.ctx.attach(w.a, plain, { pasid: 1 }), 'EINVAL', { argument: 'target' });
    expect(w.ctx.attach(w.a, flagged, { pasid: 1 })).toEqual({ hwpt: flagged, pasid: 1 });
    expect(dmaRead(w, DEV_A, 0x10000n, 2, 1)).toEqual(pattern(10, 0, 2));
  });

  it('§2.7 ATTACH: a device on another IOMMU unit cannot use a HWPT of this one (EINVAL); attach to the IOAS gets it its own', () => {
    const w = world([DEV_A, DEV_B], { unitOf: (ep) => (ep.name === DEV_B ? 1 : 0) });
    const ioas = w.ctx.allocIoas();
    const a = w.ctx.bindDevice(DEV_A);
    const b = w.ctx.bindDevice(DEV_B);
    const ha = w.ctx.attach(a, ioas).hwpt;
    expectNoChange(w, () => w.ctx.attach(b, ha), 'EINVAL', { argument: 'target' });
    expect(w.ctx.attach(b, ioas).hwpt).not.toBe(ha);
  });
});

describe('§2.7 VFIO_DEVICE_BIND_IOMMUFD', () => {
  it('§2.7 BIND: returns a device id; a malformed name is EINVAL, an absent one ENOENT', () => {
    const w = world();
    expect(w.ctx.bindDevice(DEV_A)).toBeGreaterThan(0);
    expectNoChange(w, () => w.ctx.bindDevice('0000:00:02'), 'EINVAL', { argument: 'name' });
    expectNoChange(w, () => w.ctx.bindDevice('garbage/mdev0'), 'EINVAL', { argument: 'name' });
    expectNoChange(w, () => w.ctx.bindDevice('0000:00:09.0'), 'ENOENT', { argument: 'name' });
    expectNoChange(w, () => w.ctx.bindDevice(`${DEV_A}/mdev0`), 'ENOENT', { argument: 'name' });
  });

  it('§2.7 BIND: a device bound (here or in another context) is EBUSY until unbound', () => {
    const w = world();
    const other = w.system.open(w.system.createProcess());
    const id = w.ctx.bindDevice(DEV_A);
    expectNoChange(w, () => w.ctx.bindDevice(DEV_A), 'EBUSY', { argument: 'name', contexts: [w.ctx, other] });
    expectNoChange(w, () => other.bindDevice(DEV_A), 'EBUSY', { contexts: [w.ctx, other] });
    w.ctx.unbindDevice(id);
    expect(other.bindDevice(DEV_A)).toBeGreaterThan(0);
    expectErrno(() => { w.ctx.unbindDevice(id); }, 'ENOENT', 'dev');
  });
});

describe('contract: getInfo', () => {
  it('contract: getInfo returns at least backend, pasidBits, nestingFormats, passthrough, sva, iopf, globalPasid, pageSizes, iovaRanges, reservedRegions and vendor', () => {
    const w = world([DEV_A, { name: DEV_B, mdevs: 1 }]);
    const dev = w.ctx.bindDevice(DEV_A);
    const info = w.ctx.getInfo(dev);
    expect(info).toMatchObject({
      backend: 'mock',
      pasidBits: 20,
      nestingFormats: ['virtio_table'],
      passthrough: true,
      sva: true,
      iopf: true,
      globalPasid: true,
      pageSizes: [4096n, 2n * 1024n * 1024n],
      iovaRanges: [{ start: 0n, last: (1n << 48n) - 1n }],
      reservedRegions: [{ start: 0xfee00000n, last: 0xfeefffffn, kind: 'msi' }],
    });
    expect(info.vendor).toEqual({ mock: true });
    // a mediated device reports its parent function's IOMMU
    const m = w.ctx.bindDevice(`${DEV_B}/mdev0`);
    expect(w.ctx.getInfo(m).pasidBits).toBe(20);
    expectErrno(() => w.ctx.getInfo(999), 'ENOENT', 'dev');
  });

  it('contract: each false capability makes its operation EOPNOTSUPP (nesting, dirty tracking, iopf, SVA, global PASID)', () => {
    const w = world([DEV_A], {
      info: () => ({ nestingFormats: [], dirtyTracking: false, iopf: false, sva: false, globalPasid: false }),
    });
    const dev = w.ctx.bindDevice(DEV_A);
    const ioas = w.ctx.allocIoas();
    const q = w.ctx.allocFaultQueue(); // fault queues themselves work everywhere (contract)
    expect(w.ctx.readFaults(q)).toEqual([]);
    expectNoChange(w, () => w.ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } }), 'EOPNOTSUPP', { argument: 'flags' });
    expectNoChange(w, () => w.ctx.allocHwpt(dev, { parent: ioas, flags: { dirtyTracking: true } }), 'EOPNOTSUPP', { argument: 'flags' });
    expectNoChange(w, () => w.ctx.allocHwpt(dev, { parent: ioas, faultQueue: q }), 'EOPNOTSUPP', { argument: 'faultQueue' });
    expectNoChange(w, () => w.ctx.bindSva(dev, w.proc), 'EOPNOTSUPP', { argument: 'dev' });
    expectNoChange(w, () => w.ctx.allocPasid({ global: true }), 'EOPNOTSUPP', { argument: 'global' });
    // and the PASID operations themselves still work
    expect(w.ctx.attach(dev, ioas, { pasid: 'auto' }).pasid).toBe(1);
  });

  it('§2.5 a device that cannot track dirty pages cannot be attached to a HWPT allocated with dirty tracking (EINVAL)', () => {
    const w = world([DEV_A, DEV_B], { info: (ep) => (ep.name === DEV_B ? { dirtyTracking: false } : {}) });
    const a = w.ctx.bindDevice(DEV_A);
    const b = w.ctx.bindDevice(DEV_B);
    const ioas = w.ctx.allocIoas();
    const hwpt = w.ctx.allocHwpt(a, { parent: ioas, flags: { dirtyTracking: true } });
    expect(w.ctx.attach(a, hwpt).hwpt).toBe(hwpt);
    expectNoChange(w, () => w.ctx.attach(b, hwpt), 'EINVAL', { argument: 'target' });
    // attaching the same device to the IOAS itself gets an auto HWPT without tracking
    expect(w.ctx.attach(b, ioas).hwpt).not.toBe(hwpt);
  });

  it('contract: without PASIDs, allocPasid, attach with a PASID and bindSva are EOPNOTSUPP', () => {
    const w = world([DEV_A, { name: DEV_B, mdevs: 1 }], { pasidBits: 0 });
    const dev = w.ctx.bindDevice(DEV_A);
    const ioas = w.ctx.allocIoas();
    expect(w.ctx.getInfo(dev).pasidBits).toBe(0);
    expectNoChange(w, () => w.ctx.allocPasid({ devices: [dev] }), 'EOPNOTSUPP');
    expectNoChange(w, () => w.ctx.allocPasid({ global: true }), 'EOPNOTSUPP');
    expectNoChange(w, () => w.ctx.attach(dev, ioas, { pasid: 1 }), 'EOPNOTSUPP', { argument: 'pasid' });
    expectNoChange(w, () => w.ctx.attach(dev, ioas, { pasid: 'auto' }), 'EOPNOTSUPP', { argument: 'pasid' });
    expectNoChange(w, () => w.ctx.bindSva(dev, w.proc), 'EOPNOTSUPP');
    expectNoChange(w, () => w.ctx.allocHwpt(dev, { parent: ioas, flags: { pasid: true } }), 'EOPNOTSUPP', { argument: 'flags' });
    // mediated devices are tagged by PASIDs of their parent: none here
    expectNoChange(w, () => w.ctx.bindDevice(`${DEV_B}/mdev0`), 'EOPNOTSUPP', { argument: 'name' });
    // the RID works as usual
    w.ctx.attach(dev, ioas);
    // and detaching a PASID, which cannot be attached here, succeeds and changes nothing
    const before = snapshot(w);
    w.ctx.detach(dev, { pasid: 1 });
    expect(snapshot(w)).toEqual(before);
  });
});

describe('§1.2 SR-IOV virtual functions', () => {
  it('§1.2 a VF is a device of its own: its RID is attached and translated apart from the PF', () => {
    const w = world([{ name: DEV_A, vfs: 2 }]);
    const b1 = buffer(w.proc, 1, 30);
    const b2 = buffer(w.proc, 1, 40);
    const io1 = w.ctx.allocIoas();
    const io2 = w.ctx.allocIoas();
    w.ctx.mapDma(io1, { iova: 0x10000n, vaddr: b1, length: P });
    w.ctx.mapDma(io2, { iova: 0x10000n, vaddr: b2, length: P });
    const pf = w.ctx.bindDevice(DEV_A);
    const vf = w.ctx.bindDevice('0000:00:02.2'); // the second VF: RID + 2
    w.ctx.attach(pf, io1);
    w.ctx.attach(vf, io2);
    expect(dmaRead(w, DEV_A, 0x10000n, 2)).toEqual(pattern(30, 0, 2));
    expect(dmaRead(w, '0000:00:02.2', 0x10000n, 2)).toEqual(pattern(40, 0, 2));
    expect(dmaFault(w, '0000:00:02.1', 0x10000n)).toBe('blocked');
  });
});
