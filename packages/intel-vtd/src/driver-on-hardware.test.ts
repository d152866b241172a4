import { describe, expect, it } from 'vitest';
import { PhysicalMemory, expandDevices } from '@ioasid/core';
import { IOMMU_READ, IOMMU_WRITE, isIoasidError, type BackendHost, type IommuPageRequest } from '@ioasid/uapi';
import { IoPageTable } from './driver/io-page-table.js';
import { VtdDriver } from './driver/vtd-driver.js';
import { VtdHardware } from './hw/vtd-hardware.js';
import { IQT_REG } from './spec/registers.js';
import { descriptorType } from './spec/invalidation.js';

describe('IoPageTable', () => {
  it('uses a 2 MiB first-stage leaf for 512 contiguous aligned frames: pa | P|RW|US|A|D|PS = 0xE7', () => {
    const memory = new PhysicalMemory({ size: 1n << 32n });
    const pt = new IoPageTable(memory, 'first-stage', 4, 1);
    const pfns = Uint32Array.from({ length: 512 }, (_, i) => 0x400 + i); // frame 0x400 = 4 MiB, 2 MiB aligned
    pt.map(0x200, pfns, 512, true, true); // IOVA 2 MiB
    const pml4e = memory.read64(BigInt(pt.root));
    const pdpt = pml4e & ~0xfffn;
    expect(pml4e & 0xfffn).toBe(0x27n);
    const pd = memory.read64(pdpt) & ~0xfffn;
    expect(memory.read64(pd + 8n)).toBe(0x400000n | 0xe7n);
    expect(pt.tables).toBe(3);
    const freed: number[] = [];
    expect(pt.unmap(0x200, 512, freed)).toBe(512);
    expect(memory.read64(pd + 8n)).toBe(0n);
    expect(freed).toEqual([]); // the PD covers 1 GiB, not inside the range
  });
  it('dirty harvesting: 4 KiB and 2 MiB leaves with D, any start and granule, cleared unless noClear', () => {
    const memory = new PhysicalMemory({ size: 1n << 32n });
    const pt = new IoPageTable(memory, 'second-stage', 4, 1);
    pt.map(0x1ff, Uint32Array.of(0x3ff), 1, true, true); // a 4 KiB leaf just below the 2 MiB one
    pt.map(0x200, Uint32Array.from({ length: 512 }, (_, i) => 0x400 + i), 512, true, true); // a 2 MiB leaf
    pt.map(0x400, Uint32Array.of(0x900, 0x901), 2, true, true); // two 4 KiB leaves after it
    const leaves: bigint[] = [];
    // the three leaf slots: root → L3 → L2 (the 2 MiB entry is its index 1), and the L1 tables under its indices 0 and 2
    const next = (t: bigint, i: number) => memory.read64(t + BigInt(i) * 8n) & 0xffffffffff000n;
    const l2 = next(next(BigInt(pt.root), 0), 0);
    leaves.push(l2 + 8n, next(l2, 0) + 0x1ffn * 8n, next(l2, 2) + 8n);
    for (const slot of leaves) memory.write64(slot, memory.read64(slot) | 0x200n); // D
    const naive = (first: number, pages: number, granule: number) => {
      const bits = new Uint8Array(Math.ceil(pages / granule / 8) + 1);
      for (const v of [0x1ff, ...Array.from({ length: 512 }, (_, i) => 0x200 + i), 0x401]) {
        if (v < first || v >= first + pages) continue;
        const g = Math.floor((v - first) / granule);
        bits[g >>> 3]! |= 1 << (g & 7);
      }
      return bits;
    };
    for (const [first, pages, granule] of [[0x1fe, 0x210, 1], [0x203, 0x1f0, 1], [0x1f0, 0x300, 4], [0x205, 0x1ff, 8], [0x200, 0x200, 512]] as const) {
      const bitmap = new Uint8Array(Math.ceil(pages / granule / 8) + 1);
      expect(pt.readDirty(first, pages, granule, bitmap, true)).toBe(false);
      expect(bitmap).toEqual(naive(first, pages, granule));
    }
    const all = new Uint8Array(0x50);
    expect(pt.readDirty(0x1ff, 0x203, 1, all, false)).toBe(true);
    expect(leaves.map((slot) => memory.read64(slot) & 0x200n)).toEqual([0n, 0n, 0n]);
    expect(pt.readDirty(0x1ff, 0x203, 1, new Uint8Array(0x50), false)).toBe(false);
  });
  it('second stage: write-only is expressible (W without R), tables are R|W', () => {
    const memory = new PhysicalMemory({ size: 1n << 32n });
    const pt = new IoPageTable(memory, 'second-stage', 4, 3);
    pt.map(1, Uint32Array.of(0x99), 1, false, true);
    let t = BigInt(pt.root);
    for (let l = 4; l > 1; l--) {
      const e = memory.read64(t);
      expect(e & 0xfffn).toBe(3n);
      t = e & ~0xfffn;
    }
    expect(memory.read64(t + 8n)).toBe(0x99000n | 2n);
  });
  it('rolls back on EEXIST and on ENOMEM, leaving the frames as they were', () => {
    const memory = new PhysicalMemory({ size: 1n << 32n });
    const pt = new IoPageTable(memory, 'second-stage', 4, 0);
    pt.map(5, Uint32Array.of(7), 1, true, true);
    const used = memory.framesInUse;
    expect(() => {
      pt.map(0x80000, Uint32Array.of(1, 2, 3, 4, 5, 6), 6, true, true); // fine
    }).not.toThrow();
    const afterOk = memory.framesInUse;
    expect(() => {
      pt.map(3, Uint32Array.of(1, 2, 3), 3, true, true);
    }).toThrow(/EEXIST/);
    expect(memory.framesInUse).toBe(afterOk);
    expect(memory.read64(BigInt(0))).toBe(0n);
    memory.failNth.arm(2);
    expect(() => {
      pt.map(1 << 27, Uint32Array.of(9), 1, true, true);
    }).toThrow(/ENOMEM/);
    expect(memory.framesInUse).toBe(afterOk);
    expect(used).toBeLessThan(afterOk);
  });
});

function rig() {
  const memory = new PhysicalMemory({ size: 1n << 36n });
  const endpoints = expandDevices(['0000:00:02.0', '0000:00:03.0']);
  const reports: IommuPageRequest[] = [];
  const host: BackendHost = { memory, endpoints, reportPageRequest: (r) => reports.push(r) };
  const hw = new VtdHardware({ memory });
  const driver = new VtdDriver(host, [hw.mmio], () => 0);
  hw.onInterrupt = (s) => {
    driver.interrupt(0, s);
  };
  /** The descriptor types the driver queued by `fn`. */
  const queued = (fn: () => void): number[] => {
    const iqa = Number(hw.mmio.read64(0x90) & ~0xfffn);
    const from = Number(hw.mmio.read64(IQT_REG));
    fn();
    const to = Number(hw.mmio.read64(IQT_REG));
    const types: number[] = [];
    for (let off = from; off !== to; off = (off + 32) % 8192) types.push(descriptorType(memory.read32At(iqa + off)));
    return types;
  };
  return { memory, endpoints, hw, driver, queued, reports };
}

describe('VtdDriver invalidation recipes', () => {
  it('replacing a present PASID entry flushes the PASID cache and the old DID (P_IOTLB for a first-stage entry)', () => {
    const { endpoints, driver, queued } = rig();
    const dev = endpoints[0]!;
    const opts = { nestParent: false, dirtyTracking: false, pasid: false, iopf: false };
    const a = driver.allocPagingDomain(dev, opts);
    const b = driver.allocPagingDomain(dev, opts);
    // New entry with CM = 0: no invalidation, only the (absent) write-buffer flush.
    expect(queued(() => { driver.attach(dev, a, undefined); })).toEqual([]);
    // Replace: PASID-cache (7) + PASID-based IOTLB (6) for the old DID, then the wait (5).
    expect(queued(() => { driver.attach(dev, b, undefined); })).toEqual([7, 6, 5]);
    // Unmap on a first-stage domain: P_IOTLB page-selective + wait.
    b.map(0x1000n, Uint32Array.of(0x123), 1, IOMMU_READ | IOMMU_WRITE);
    expect(queued(() => { b.unmap(0x1000n, 0x1000n); })).toEqual([6, 5]);
    // Detach tears down: PASID cache + P_IOTLB.
    expect(queued(() => { driver.detach(dev, undefined); })).toEqual([7, 6, 5]);
    a.free();
    b.free();
  });
  it('a nest parent flushes with IOTLB (type 2) descriptors, also for its nested child DID', () => {
    const { endpoints, driver, queued } = rig();
    const dev = endpoints[0]!;
    const parent = driver.allocPagingDomain(dev, { nestParent: true, dirtyTracking: false, pasid: false, iopf: false });
    const child = driver.allocNestedDomain(dev, parent, { type: 'vtd_s1', flags: 0, pgtblAddr: 0x1000n, addrWidth: 48 }, { iopf: false });
    driver.attach(dev, parent, 5);
    driver.attach(dev, child, undefined);
    parent.map(0x2000n, Uint32Array.of(0x55), 1, IOMMU_READ);
    expect(queued(() => { parent.unmap(0x2000n, 0x1000n); })).toEqual([2, 2, 5]);
  });
  it('attach that cannot allocate a PASID table is ENOMEM and changes nothing', () => {
    const { memory, endpoints, driver, hw } = rig();
    const dev = endpoints[0]!;
    const d = driver.allocPagingDomain(dev, { nestParent: false, dirtyTracking: false, pasid: true, iopf: false });
    const used = memory.framesInUse;
    memory.failNth.arm(1);
    try {
      driver.attach(dev, d, 0x400);
      expect.unreachable();
    } catch (e) {
      expect(isIoasidError(e, 'ENOMEM')).toBe(true);
    }
    expect(memory.framesInUse).toBe(used);
    const r = hw.dma({ sourceId: dev.rid, pasid: 0x400, iova: 0n, size: 1, write: false });
    expect(!r.ok && r.fault.code).toBe(0x51);
    driver.attach(dev, d, 0x400);
    expect(memory.framesInUse).toBe(used + 1);
  });
  it('attachConflict explains PASIDs beyond 20 bits and SVA without a PASID', () => {
    const { endpoints, driver } = rig();
    const dev = endpoints[0]!;
    const d = driver.allocPagingDomain(dev, { nestParent: false, dirtyTracking: false, pasid: true, iopf: false });
    expect(driver.attachConflict(dev, d, 1 << 20)).toMatch(/beyond 20 bits/);
    expect(driver.attachConflict(dev, d, undefined)).toBeUndefined();
  });
});
