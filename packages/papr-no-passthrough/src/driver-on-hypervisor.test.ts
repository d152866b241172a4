import { describe, expect, it } from 'vitest';
import { PhysicalMemory, expandDevices } from '@ioasid/core';
import { IOMMU_READ, IOMMU_WRITE, isIoasidError } from '@ioasid/uapi';
import { PaprHypervisor } from './hw/hypervisor.js';
import { PaprDriver } from './driver/papr-driver.js';
import { H_GET_TCE, H_HARDWARE, H_PUT_TCE, H_PUT_TCE_INDIRECT, H_STUFF_TCE, type HcallResult } from './spec/hcall.js';
import type { PaprFirmware } from './spec/firmware.js';
import type { RtasResult } from './spec/rtas.js';

const DEV = '0000:00:02.0';
const PAGING = { nestParent: false, dirtyTracking: false, pasid: false, iopf: false };

/** Firmware that records every call and can make the n-th hcall fail with H_HARDWARE. */
class RecordingFirmware implements PaprFirmware {
  readonly calls: { op: number; args: bigint[] }[] = [];
  readonly rtasCalls: string[] = [];
  failAt = 0;
  constructor(private readonly hv: PaprHypervisor) {}
  hcall(opcode: number, ...args: bigint[]): HcallResult {
    this.calls.push({ op: opcode, args });
    if (this.failAt > 0 && this.calls.length === this.failAt) return { ret: H_HARDWARE, values: [] };
    return this.hv.hcall(opcode, ...args);
  }
  rtas(name: string, args: readonly (number | bigint)[], nret?: number): RtasResult {
    this.rtasCalls.push(name);
    return this.hv.rtas(name, args, nret);
  }
}

function setup(memorySize = 1n << 34n) {
  const memory = new PhysicalMemory({ size: memorySize });
  const [ep] = expandDevices([DEV]);
  const hv = new PaprHypervisor({ memory, devices: [DEV] });
  const fw = new RecordingFirmware(hv);
  const driver = new PaprDriver({ firmware: fw, tree: hv.deviceTree(), memory });
  const liobn = BigInt(hv.liobns(DEV)[0]!.liobn);
  const tce = (ioba: bigint) => hv.hcall(H_GET_TCE, liobn, ioba).values[0]!;
  return { memory, hv, fw, driver, ep: ep!, liobn, tce };
}

const seq = (base: number, n: number) => Uint32Array.from({ length: n }, (_, i) => base + i);

describe('PaprDriver setup (Linux enable_ddw)', () => {
  it('queries with 6 outputs and creates a 64 KiB-page window covering memory', () => {
    const { fw, hv } = setup();
    expect(fw.rtasCalls).toEqual(['ibm,query-pe-dma-window', 'ibm,create-pe-dma-window']);
    // 2^34 bytes of memory / 2^16 = 2^18 TCEs ≤ the 2^31 largest block → window shift 34
    expect(hv.liobns(DEV)[1]).toMatchObject({ start: 1n << 59n, size: 1n << 34n, pageShift: 16 });
  });

  it('falls back to the block size when the block cannot cover memory', () => {
    const memory = new PhysicalMemory({ size: 1n << 34n });
    const hv = new PaprHypervisor({ memory, pes: [{ devices: [DEV], largestBlock: 4096 }] });
    new PaprDriver({ firmware: hv, tree: hv.deviceTree(), memory });
    // 4096 = 2^12 TCEs of 64 KiB → 2^28 bytes
    expect(hv.liobns(DEV)[1]!.size).toBe(1n << 28n);
  });

  it('a PE without DDW keeps only its default window', () => {
    const memory = new PhysicalMemory({ size: 1n << 34n });
    const hv = new PaprHypervisor({ memory, pes: [{ devices: [DEV], ddw: false }] });
    const driver = new PaprDriver({ firmware: hv, tree: hv.deviceTree(), memory });
    const [ep] = expandDevices([DEV]);
    expect(driver.hwInfo(ep!).iovaRanges).toEqual([{ start: 0n, last: 0x7fffffffn }]);
  });
});

describe('map and unmap through batched hcalls', () => {
  it('a single page goes by H_PUT_TCE; 1000 pages by two H_PUT_TCE_INDIRECT of 512 and 488', () => {
    const { fw, driver, ep, tce } = setup();
    const d = driver.allocPagingDomain(ep, PAGING);
    driver.attach(ep, d, undefined);
    fw.calls.length = 0;
    d.map(0x1000n, seq(0x300, 1), 1, IOMMU_READ);
    expect(fw.calls.map((c) => c.op)).toEqual([H_PUT_TCE]);
    expect(tce(0x1000n)).toBe((0x300n << 12n) | 1n);
    fw.calls.length = 0;
    d.map(0x100000n, seq(0x1000, 1000), 1000, IOMMU_READ | IOMMU_WRITE);
    expect(fw.calls.map((c) => [c.op, c.args[1], c.args[3]])).toEqual([
      [H_PUT_TCE_INDIRECT, 0x100000n, 512n],
      [H_PUT_TCE_INDIRECT, 0x100000n + 512n * 4096n, 488n],
    ]);
    expect(tce(0x100000n + 999n * 4096n)).toBe(((0x1000n + 999n) << 12n) | 3n);
    fw.calls.length = 0;
    d.unmap(0x100000n, 1000n * 4096n);
    expect(fw.calls.map((c) => [c.op, c.args[2], c.args[3]])).toEqual([
      [H_STUFF_TCE, 0n, 512n],
      [H_STUFF_TCE, 0n, 488n],
    ]);
    expect(tce(0x100000n)).toBe(0n);
  });

  it('an inactive domain keeps its mappings and writes them on attach; detach clears them', () => {
    const { fw, driver, ep, tce } = setup();
    const d = driver.allocPagingDomain(ep, PAGING);
    d.map(0x2000n, seq(0x400, 2), 2, IOMMU_WRITE);
    expect(fw.calls).toHaveLength(0);
    expect(tce(0x2000n)).toBe(0n);
    driver.attach(ep, d, undefined);
    expect(tce(0x3000n)).toBe((0x401n << 12n) | 2n);
    driver.detach(ep, undefined);
    expect(tce(0x3000n)).toBe(0n);
  });

  it('a failing hcall mid-map clears what was stored and throws EIO; the domain is unchanged', () => {
    const { fw, driver, ep, tce } = setup();
    const d = driver.allocPagingDomain(ep, PAGING);
    driver.attach(ep, d, undefined);
    fw.calls.length = 0;
    fw.failAt = 2; // the second H_PUT_TCE_INDIRECT
    let errno: string | undefined;
    try {
      d.map(0x0n, seq(0x2000, 600), 600, IOMMU_READ);
    } catch (e) {
      if (isIoasidError(e)) errno = e.errno;
    }
    expect(errno).toBe('EIO');
    fw.failAt = 0;
    expect(tce(0x0n)).toBe(0n); // the first 512 were cleared again
    expect(() => { d.unmap(0n, 600n * 4096n); }).toThrow(/ENOENT/);
    d.map(0x0n, seq(0x2000, 600), 600, IOMMU_READ);
    expect(tce(599n * 4096n)).toBe(((0x2000n + 599n) << 12n) | 1n);
  });

  it('rejects 64 KiB-window maps that are not whole 64 KiB pages of contiguous, aligned frames', () => {
    const { driver, ep, hv } = setup();
    const d = driver.allocPagingDomain(ep, PAGING);
    driver.attach(ep, d, undefined);
    const base = 1n << 59n;
    const errno = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return isIoasidError(e) ? e.errno : 'other';
      }
      return undefined;
    };
    expect(errno(() => { d.map(base, seq(0x100, 8), 8, IOMMU_READ); })).toBe('EINVAL'); // 32 KiB
    expect(errno(() => { d.map(base, seq(0x108, 16), 16, IOMMU_READ); })).toBe('EINVAL'); // frame 0x108 not 16-aligned
    const broken = seq(0x100, 16);
    broken[5] = 0x999;
    expect(errno(() => { d.map(base, broken, 16, IOMMU_READ); })).toBe('EINVAL');
    expect(errno(() => { d.map(0x7ffff000n, seq(0x100, 2), 2, IOMMU_READ); })).toBe('EINVAL'); // crosses the 2 GiB end
    expect(errno(() => { d.map(0x1000n, seq(0x100, 1), 1, 0); })).toBe('EINVAL');
    d.map(base + 0x10000n, seq(0x100, 32), 32, IOMMU_READ);
    // IOMMU page 1 of the DDW: real page 0x100 << 12 = 0x100000; page 2: 0x110000
    const ddw = BigInt(hv.liobns(DEV)[1]!.liobn);
    expect(hv.hcall(H_GET_TCE, ddw, base + 0x20000n).values[0]).toBe(0x110000n | 1n);
    expect(errno(() => { d.map(base + 0x20000n, seq(0x200, 16), 16, IOMMU_READ); })).toBe('EEXIST');
  });
});

describe('what PAPR lacks', () => {
  it('no identity or blocked domain; nested, SVA, dirty, PASID are EOPNOTSUPP', () => {
    const { driver, ep } = setup();
    expect(driver.identityDomain(ep)).toBeUndefined();
    expect(driver.blockedDomain(ep)).toBeUndefined();
    const d = driver.allocPagingDomain(ep, PAGING);
    const op = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isIoasidError(e) ? e.errno : 'other';
      }
      return undefined;
    };
    expect(op(() => driver.allocNestedDomain(ep, d, { type: 'vtd_s1', flags: 0, pgtblAddr: 0n, addrWidth: 48 }, { iopf: false }))).toBe('EOPNOTSUPP');
    expect(op(() => driver.allocPagingDomain(ep, { ...PAGING, nestParent: true }))).toBe('EOPNOTSUPP');
    expect(op(() => driver.allocPagingDomain(ep, { ...PAGING, dirtyTracking: true }))).toBe('EOPNOTSUPP');
    expect(op(() => { d.setDirtyTracking(true); })).toBe('EOPNOTSUPP');
    expect(op(() => { driver.attach(ep, d, 1); })).toBe('EOPNOTSUPP');
    expect(driver.attachConflict(ep, d, 1)).toMatch(/PASID/);
    expect(driver.attachConflict(ep, d, undefined)).toBeUndefined();
  });
});
