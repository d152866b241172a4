import { describe, expect, it } from 'vitest';
import { PAGE_SIZE, U64_MAX, type HwptData } from '@ioasid/uapi';
import { DEV_A, DEV_B, buffer, dmaFault, dmaRead, expectErrno, expectNoChange, pattern, world } from '../test/harness.js';

const P = PAGE_SIZE;

/** A little-endian 64-bit word as bytes. */
function le64(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) out[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return out;
}

/**
 * Hardware nesting on the mock: stage 2 maps GPA [0, 16 pages) → the guest-RAM buffer; the
 * guest's stage-1 table (8-byte entries `output | W<<1 | V`, one per 4 KiB IOVA page) sits at
 * GPA 0.
 */
function nesting() {
  const w = world();
  const ram = buffer(w.proc, 16, 100);
  w.proc.write(ram, new Uint8Array(4096)); // page 0 holds the stage-1 table: empty
  const ioas = w.ctx.allocIoas();
  w.ctx.mapDma(ioas, { iova: 0n, vaddr: ram, length: 16n * P });
  const dev = w.ctx.bindDevice(DEV_A);
  const parent = w.ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } });
  const data: HwptData = { type: 'virtio_table', format: 'arm-lpae-s1', root: 0n };
  const nested = w.ctx.allocHwpt(dev, { parent, data });
  /** Guest writes the stage-1 entry for IOVA page `page`. */
  const setEntry = (page: bigint, gpa: bigint, writable: boolean) => {
    w.proc.write(ram + page * 8n, le64(gpa | (writable ? 1n << 1n : 0n) | 1n));
  };
  return { ...w, ram, ioas, dev, parent, nested, data, setEntry };
}

describe('§2.5 IOMMU_HWPT_ALLOC', () => {
  it('§2.5 HWPT_ALLOC with an IOAS gives a kernel-managed paging HWPT that mirrors it', () => {
    const w = world();
    const buf = buffer(w.proc, 2, 11);
    const ioas = w.ctx.allocIoas();
    const dev = w.ctx.bindDevice(DEV_A);
    const hwpt = w.ctx.allocHwpt(dev, { parent: ioas });
    w.ctx.attach(dev, hwpt);
    w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: 2n * P }); // mapped after the attach
    expect(dmaRead(w, DEV_A, 0x11000n, 2)).toEqual(pattern(11, 4096, 2));
  });

  it('§2.5 HWPT_ALLOC errors: dev_id not a device or an unknown pt_id is ENOENT; a pt_id of the wrong type is EINVAL; a bad fault_id is ENOENT', () => {
    const w = nesting();
    const q = w.ctx.allocFaultQueue();
    expectNoChange(w, () => w.ctx.allocHwpt(999, { parent: w.ioas }), 'ENOENT', { argument: 'dev' });
    expectNoChange(w, () => w.ctx.allocHwpt(w.ioas, { parent: w.ioas }), 'ENOENT', { argument: 'dev' });
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: 999 }), 'ENOENT', { argument: 'parent' });
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: w.dev }), 'EINVAL', { argument: 'parent' });
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: q }), 'EINVAL', { argument: 'parent' });
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: w.ioas, faultQueue: 999 }), 'ENOENT', { argument: 'faultQueue' });
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: w.ioas, faultQueue: w.ioas }), 'ENOENT', { argument: 'faultQueue' });
  });

  it('§2.5 HWPT_ALLOC errors: paging — vendor data is EINVAL; NEST_PARENT with a fault queue is EOPNOTSUPP', () => {
    const w = nesting();
    const q = w.ctx.allocFaultQueue();
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: w.ioas, data: w.data }), 'EINVAL', { argument: 'data' });
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: w.ioas, flags: { nestParent: true }, faultQueue: q }), 'EOPNOTSUPP', { argument: 'flags' });
    // each alone is fine
    w.ctx.allocHwpt(w.dev, { parent: w.ioas, faultQueue: q });
    w.ctx.allocHwpt(w.dev, { parent: w.ioas, flags: { nestParent: true } });
  });

  it('§2.5 HWPT_ALLOC errors: nested — no data is EINVAL, an unsupported data type EOPNOTSUPP, NEST_PARENT or DIRTY_TRACKING EOPNOTSUPP', () => {
    const w = nesting();
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: w.parent }), 'EINVAL', { argument: 'data' });
    const vtd: HwptData = { type: 'vtd_s1', flags: 0, pgtblAddr: 0n, addrWidth: 48 };
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: w.parent, data: vtd }), 'EOPNOTSUPP', { argument: 'data' });
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: w.parent, data: w.data, flags: { nestParent: true } }), 'EOPNOTSUPP', { argument: 'flags' });
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: w.parent, data: w.data, flags: { dirtyTracking: true } }), 'EOPNOTSUPP', { argument: 'flags' });
  });

  it('§2.5 HWPT_ALLOC errors: a parent not allocated with NEST_PARENT is EINVAL; nested on a nested HWPT is EINVAL', () => {
    const w = nesting();
    const plain = w.ctx.allocHwpt(w.dev, { parent: w.ioas });
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: plain, data: w.data }), 'EINVAL', { argument: 'parent' });
    expectNoChange(w, () => w.ctx.allocHwpt(w.dev, { parent: w.nested, data: w.data }), 'EINVAL', { argument: 'parent' });
  });
});

describe('§2.5 HWPT_ALLOC over an IOAS and the new domain\'s aperture', () => {
  it('§2.5 an IOAS mapping outside the new domain\'s aperture is refused by core (EINVAL, as attach); nothing is mapped or allocated', () => {
    // the mock's aperture is [0, 2^48 − 1]; a fresh IOAS (no domain yet) accepts any IOVA
    const w = world();
    const buf = buffer(w.proc, 2, 21);
    const ioas = w.ctx.allocIoas();
    const dev = w.ctx.bindDevice(DEV_A);
    w.ctx.mapDma(ioas, { iova: 1n << 48n, vaddr: buf, length: 2n * P });
    expectNoChange(w, () => w.ctx.allocHwpt(dev, { parent: ioas }), 'EINVAL', { argument: 'parent' });
    expectNoChange(w, () => w.ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } }), 'EINVAL', { argument: 'parent' });
    expectNoChange(w, () => w.ctx.attach(dev, ioas), 'EINVAL', { argument: 'target' });
    // the last page inside the aperture is fine
    const io2 = w.ctx.allocIoas();
    w.ctx.mapDma(io2, { iova: (1n << 48n) - P, vaddr: buf, length: P });
    expect(w.ctx.allocHwpt(dev, { parent: io2 })).toBeGreaterThan(0);
  });

  it('§2.4/§2.5 an allowed IOVA range outside the new domain\'s aperture is EADDRINUSE', () => {
    const w = world();
    const ioas = w.ctx.allocIoas();
    const dev = w.ctx.bindDevice(DEV_A);
    w.ctx.allowIovas(ioas, [{ start: 1n << 48n, last: (1n << 48n) + 0xffffn }]);
    expectNoChange(w, () => w.ctx.allocHwpt(dev, { parent: ioas }), 'EADDRINUSE', { argument: 'parent' });
  });
});

describe('§2.5 hardware nesting and IOMMU_HWPT_INVALIDATE', () => {
  it('§2.5 a nested HWPT translates through the user stage 1, then the kernel stage 2', () => {
    const w = nesting();
    w.setEntry(1n, 0x5000n, true); // IOVA 0x1000 → GPA 0x5000 → ram + 0x5000
    w.ctx.attach(w.dev, w.nested);
    expect(dmaRead(w, DEV_A, 0x1000n, 4)).toEqual(pattern(100, 0x5000, 4));
    expect(dmaFault(w, DEV_A, 0x2000n)).toBe('translation');
    // stage 2 decides too: GPA 0x20000 is not mapped by the parent IOAS
    w.setEntry(3n, 0x20000n, true);
    expect(dmaFault(w, DEV_A, 0x3000n)).toBe('translation');
    w.setEntry(4n, 0x6000n, false);
    expect(dmaFault(w, DEV_A, 0x4000n, true)).toBe('permission');
  });

  it('§2.5 INVALIDATE: a changed user table is seen only after the invalidation; the number of entries handled is returned', () => {
    const w = nesting();
    w.setEntry(1n, 0x5000n, true);
    w.ctx.attach(w.dev, w.nested);
    expect(dmaRead(w, DEV_A, 0x1000n, 2)).toEqual(pattern(100, 0x5000, 2));
    w.setEntry(1n, 0x6000n, true);
    expect(dmaRead(w, DEV_A, 0x1000n, 2)).toEqual(pattern(100, 0x5000, 2)); // stale until invalidated
    expect(w.ctx.invalidateHwpt(w.nested, [{ type: 'virtio', scope: 'domain' }, { type: 'virtio', scope: 'pasid', pasid: 0 }])).toBe(2);
    expect(dmaRead(w, DEV_A, 0x1000n, 2)).toEqual(pattern(100, 0x6000, 2));
    expect(w.ctx.invalidateHwpt(w.nested, [])).toBe(0); // entry_num 0 only checks the type
  });

  it('§2.5 INVALIDATE errors: a paging or parent HWPT is EINVAL; an unknown id ENOENT; entries of the wrong data type EINVAL, none handled', () => {
    const w = nesting();
    w.setEntry(1n, 0x5000n, true);
    w.ctx.attach(w.dev, w.nested);
    dmaRead(w, DEV_A, 0x1000n, 2); // fills the cache
    w.setEntry(1n, 0x6000n, true);
    const plain = w.ctx.allocHwpt(w.dev, { parent: w.ioas });
    const entry = { type: 'virtio', scope: 'domain' } as const;
    expectNoChange(w, () => w.ctx.invalidateHwpt(w.parent, [entry]), 'EINVAL', { argument: 'hwpt' });
    expectNoChange(w, () => w.ctx.invalidateHwpt(plain, [entry]), 'EINVAL', { argument: 'hwpt' });
    expectNoChange(w, () => w.ctx.invalidateHwpt(999, [entry]), 'ENOENT', { argument: 'hwpt' });
    expectNoChange(w, () => w.ctx.invalidateHwpt(w.ioas, [entry]), 'ENOENT', { argument: 'hwpt' });
    const bad = { type: 'vtd_s1', addr: 0n, npages: U64_MAX, flags: 0 } as const;
    const e = expectNoChange(w, () => w.ctx.invalidateHwpt(w.nested, [entry, bad]), 'EINVAL', { argument: 'entries[1]' });
    expect(e.handled).toBe(0); // iommufd's entry_num: the data type is checked before any entry
    expect(dmaRead(w, DEV_A, 0x1000n, 2)).toEqual(pattern(100, 0x5000, 2)); // the first entry was not handled either
  });

  it('§1.3/DESIGN: MAP and UNMAP on a user-managed (nested) table fail: they take IOAS ids only', () => {
    const w = nesting();
    expectNoChange(w, () => w.ctx.mapDma(w.nested, { iova: 0x1000n, vaddr: w.ram, length: P }), 'ENOENT', { argument: 'ioas' });
    expectNoChange(w, () => w.ctx.unmapDma(w.nested, { iova: 0n, length: U64_MAX }), 'ENOENT', { argument: 'ioas' });
  });

  it('§2.5 DESTROY: a nested HWPT attached to a device is EBUSY; the nest parent waits for its children', () => {
    const w = nesting();
    w.ctx.attach(w.dev, w.nested);
    expectNoChange(w, () => { w.ctx.destroy(w.nested); }, 'EBUSY');
    expectNoChange(w, () => { w.ctx.destroy(w.parent); }, 'EBUSY');
    w.ctx.detach(w.dev);
    w.ctx.destroy(w.nested);
    w.ctx.destroy(w.parent);
    w.ctx.destroy(w.ioas);
    expect(w.proc.pinCount()).toBe(0);
  });
});

describe('§2.5 dirty tracking', () => {
  function dirty() {
    const w = world();
    const buf = buffer(w.proc, 128, 1);
    const ioas = w.ctx.allocIoas();
    w.ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 128n * P });
    const dev = w.ctx.bindDevice(DEV_A);
    const hwpt = w.ctx.allocHwpt(dev, { parent: ioas, flags: { dirtyTracking: true } });
    w.ctx.attach(dev, hwpt);
    const write = (iova: bigint) => w.system.device(DEV_A).dma({ iova, size: 0, write: true, data: Uint8Array.of(1) });
    return { ...w, buf, ioas, dev, hwpt, write };
  }

  it('§2.5 GET_DIRTY_BITMAP: bit n is the page at iova + n·page_size, in little-endian u64 words; reading clears unless NO_CLEAR', () => {
    const w = dirty();
    w.write(0x100000n); // before tracking is enabled: not recorded
    w.ctx.setDirtyTracking(w.hwpt, true);
    for (const page of [0n, 3n, 64n, 127n]) w.write(0x100000n + page * P + 5n);
    const opts = { iova: 0x100000n, length: 128n * P, pageSize: P };
    const bm = w.ctx.readDirtyBitmap(w.hwpt, { ...opts, noClear: true });
    // 128 pages → two u64 words; bits 0, 3 (byte 0 = 0b1001), bit 64 (byte 8 bit 0), bit 127 (byte 15 bit 7)
    const want = new Uint8Array(16);
    want[0] = (1 << 0) | (1 << 3);
    want[8] = 1;
    want[15] = 1 << 7;
    expect(bm).toEqual(want);
    expect(w.ctx.readDirtyBitmap(w.hwpt, opts)).toEqual(want); // NO_CLEAR kept them
    expect(w.ctx.readDirtyBitmap(w.hwpt, opts)).toEqual(new Uint8Array(16)); // cleared by the last read
    // a coarser granule: 8 KiB pages — page 3 is granule 1, page 64 granule 32
    w.write(0x100000n + 3n * P);
    w.write(0x100000n + 64n * P);
    const coarse = w.ctx.readDirtyBitmap(w.hwpt, { iova: 0x100000n, length: 128n * P, pageSize: 2n * P });
    expect([...coarse]).toEqual([1 << 1, 0, 0, 0, 1, 0, 0, 0]);
    // disabled again: not recorded
    w.ctx.setDirtyTracking(w.hwpt, false);
    w.write(0x100000n);
    expect(w.ctx.readDirtyBitmap(w.hwpt, opts)).toEqual(new Uint8Array(16));
  });

  it('§2.5 dirty tracking on a HWPT not allocated with DIRTY_TRACKING is EOPNOTSUPP; on anything but a paging HWPT ENOENT', () => {
    const w = dirty();
    const plain = w.ctx.allocHwpt(w.dev, { parent: w.ioas });
    const opts = { iova: 0x100000n, length: P, pageSize: P };
    expectNoChange(w, () => { w.ctx.setDirtyTracking(plain, true); }, 'EOPNOTSUPP', { argument: 'hwpt' });
    expectNoChange(w, () => w.ctx.readDirtyBitmap(plain, opts), 'EOPNOTSUPP', { argument: 'hwpt' });
    expectNoChange(w, () => { w.ctx.setDirtyTracking(w.ioas, true); }, 'ENOENT', { argument: 'hwpt' });
    expectNoChange(w, () => w.ctx.readDirtyBitmap(999, opts), 'ENOENT', { argument: 'hwpt' });
  });

  it('§2.5 GET_DIRTY_BITMAP errors: values ≥ 2^64−1 and a wrapping end are EOVERFLOW; bad page_size, alignment or length EINVAL', () => {
    const w = dirty();
    w.ctx.setDirtyTracking(w.hwpt, true);
    const r = (o: { iova?: bigint; length?: bigint; pageSize?: bigint }) => () =>
      w.ctx.readDirtyBitmap(w.hwpt, { iova: 0x100000n, length: P, pageSize: P, ...o });
    expectNoChange(w, r({ iova: U64_MAX }), 'EOVERFLOW', { argument: 'iova' });
    expectNoChange(w, r({ length: U64_MAX }), 'EOVERFLOW', { argument: 'length' });
    expectNoChange(w, r({ pageSize: 0n }), 'EINVAL', { argument: 'pageSize' });
    expectNoChange(w, r({ pageSize: 3n * P }), 'EINVAL', { argument: 'pageSize' });
    expectNoChange(w, r({ pageSize: 2048n }), 'EINVAL', { argument: 'pageSize' }); // below the IOMMU's smallest page
    expectNoChange(w, r({ iova: 0x100800n, length: 0x800n }), 'EINVAL');
    expectNoChange(w, r({ iova: 0x101000n, pageSize: 2n * P, length: 2n * P }), 'EINVAL', { argument: 'iova' });
    expectNoChange(w, r({ length: 0n }), 'EINVAL', { argument: 'length' });
    expectNoChange(w, r({ length: P + 1n }), 'EINVAL', { argument: 'length' });
    expectNoChange(w, r({ iova: U64_MAX - 0xfffn, length: 2n * P }), 'EOVERFLOW', { argument: 'length' });
    expectNoChange(w, r({ iova: 0x200000n, length: 128n * P }), 'EINVAL', { argument: 'iova' }); // not fully mapped
  });
});

describe('§2.5 HWPT with several devices', () => {
  it('§2.5 one paging HWPT can be attached to several devices of one IOMMU', () => {
    const w = world();
    const buf = buffer(w.proc, 1, 12);
    const ioas = w.ctx.allocIoas();
    w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: P });
    const a = w.ctx.bindDevice(DEV_A);
    const b = w.ctx.bindDevice(DEV_B);
    const hwpt = w.ctx.allocHwpt(a, { parent: ioas });
    w.ctx.attach(a, hwpt);
    w.ctx.attach(b, hwpt);
    expect(dmaRead(w, DEV_B, 0x10000n, 2)).toEqual(pattern(12, 0, 2));
    expectErrno(() => { w.ctx.destroy(hwpt); }, 'EBUSY');
  });
});
