import { describe, expect, it } from 'vitest';
import { PhysicalMemory } from '@ioasid/core';
import { PaprHypervisor, SPAPR_PCI_BASE_BUID } from './hypervisor.js';
import {
  H_FUNCTION,
  H_GET_TCE,
  H_P4,
  H_PARAMETER,
  H_PARTIAL,
  H_PUT_TCE,
  H_PUT_TCE_INDIRECT,
  H_STUFF_TCE,
  H_SUCCESS,
} from '../spec/hcall.js';

const DEV = '0000:00:02.0';
const MEM = 1n << 32n; // 4 GiB of partition memory

function setup(profile: 'papr' | 'qemu' = 'papr') {
  const memory = new PhysicalMemory({ size: MEM });
  const hv = new PaprHypervisor({ memory, pes: [{ devices: [DEV] }], profile });
  const [win] = hv.liobns(DEV);
  return { memory, hv, win: win!, liobn: BigInt(win!.liobn) };
}

/** Reads TCE `index` of a table as a big-endian 64-bit word. */
function readBe64(memory: PhysicalMemory, table: bigint, index: number): bigint {
  const b = memory.read(table + BigInt(index * 8), 8);
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

describe('PaprHypervisor construction', () => {
  it('gives each PE a default 4 KiB window at 0: 2 GiB (papr) or 1 GiB (qemu)', () => {
    const { win } = setup();
    expect(win.start).toBe(0n);
    expect(win.size).toBe(0x80000000n);
    expect(win.pageShift).toBe(12);
    expect(win.liobn).toBe(0x80000000); // 0x80000000 | (PE 0 << 8) | window 0
    expect(setup('qemu').win.size).toBe(0x40000000n);
  });

  it('defaults to one PE per device and exposes the BUID', () => {
    const memory = new PhysicalMemory({ size: MEM });
    const hv = new PaprHypervisor({ memory, devices: ['0000:00:02.0', '0000:00:03.0'] });
    expect(hv.buid).toBe(SPAPR_PCI_BASE_BUID);
    expect(hv.liobns('0000:00:03.0')[0]!.liobn).toBe(0x80000100); // PE 1, window 0
    expect(hv.configAddr('0000:00:03.0')).toBe((0 << 16) | ((3 << 3) << 8)); // devfn 0x18 → 0x1800
  });

  it('rejects a device in two PEs and a malformed name', () => {
    const memory = new PhysicalMemory({ size: MEM });
    expect(() => new PaprHypervisor({ memory, pes: [{ devices: [DEV] }, { devices: [DEV] }] })).toThrow(/EEXIST/);
    expect(() => new PaprHypervisor({ memory, pes: [{ devices: ['nope'] }] })).toThrow(/EINVAL/);
  });
});

describe('H_PUT_TCE / H_GET_TCE', () => {
  it('stores a big-endian TCE at (ioba − start) >> 12 and reads it back', () => {
    const { memory, hv, win, liobn } = setup();
    const tce = (0x1234n << 12n) | 3n;
    expect(hv.hcall(H_PUT_TCE, liobn, 0x5000n, tce).ret).toBe(H_SUCCESS);
    // index 5: bytes 40..47 of the table, most significant byte first
    expect(readBe64(memory, win.table, 5)).toBe(tce);
    expect(memory.read(win.table + 40n, 8)).toEqual(Uint8Array.of(0, 0, 0, 0, 0x01, 0x23, 0x40, 0x03));
    expect(hv.hcall(H_GET_TCE, liobn, 0x5000n)).toEqual({ ret: H_SUCCESS, values: [tce] });
  });

  it('returns H_PARAMETER for an unknown LIOBN, an IOBA outside the window or misaligned, and stores nothing', () => {
    const { memory, hv, win, liobn } = setup();
    const tce = 0x1000n | 1n;
    expect(hv.hcall(H_PUT_TCE, 0x1234n, 0n, tce).ret).toBe(H_PARAMETER);
    expect(hv.hcall(H_PUT_TCE, liobn, 0x80000000n, tce).ret).toBe(H_PARAMETER); // first byte past 2 GiB
    expect(hv.hcall(H_PUT_TCE, liobn, 0x1008n, tce).ret).toBe(H_PARAMETER); // not 4 KiB aligned
    expect(hv.hcall(H_GET_TCE, liobn, 0x80000000n).ret).toBe(H_PARAMETER);
    expect(readBe64(memory, win.table, 1)).toBe(0n);
  });

  it('masks a misaligned IOBA under the qemu profile', () => {
    const { memory, hv, win, liobn } = setup('qemu');
    expect(hv.hcall(H_PUT_TCE, liobn, 0x1008n, 0x1000n | 1n).ret).toBe(H_SUCCESS);
    expect(readBe64(memory, win.table, 1)).toBe(0x1001n);
  });

  it('rejects a non-fault TCE outside partition memory and reserved bits, accepts a fault TCE anywhere', () => {
    const { hv, liobn } = setup();
    expect(hv.hcall(H_PUT_TCE, liobn, 0n, MEM | 1n).ret).toBe(H_PARAMETER); // first page past 4 GiB
    expect(hv.hcall(H_PUT_TCE, liobn, 0n, 0x1000n | 0x4n | 1n).ret).toBe(H_PARAMETER); // bit 2 reserved
    expect(hv.hcall(H_PUT_TCE, liobn, 0n, MEM).ret).toBe(H_SUCCESS); // 00: page fault, RPN irrelevant
  });

  it('H_GET_TCE answers H_PARTIAL with the RPN all-ones for a valid TCE outside the partition', () => {
    const { memory, hv, win, liobn } = setup();
    // write the table directly (as a broken hypervisor path could): TCE = 4 GiB | read
    memory.write(win.table, Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 1));
    const tce = (1n << 32n) | 1n;
    expect(hv.hcall(H_GET_TCE, liobn, 0n)).toEqual({ ret: H_PARTIAL, values: [tce | 0xfffffffffffff000n] });
  });

  it('an unknown opcode is H_FUNCTION', () => {
    const { hv } = setup();
    expect(hv.hcall(0x4, 0n).ret).toBe(H_FUNCTION);
  });
});

describe('H_STUFF_TCE', () => {
  it('writes the same TCE into count consecutive entries', () => {
    const { memory, hv, win, liobn } = setup();
    expect(hv.hcall(H_STUFF_TCE, liobn, 0x3000n, 0x7000n | 2n, 4n).ret).toBe(H_SUCCESS);
    for (let i = 3; i < 7; i++) expect(readBe64(memory, win.table, i)).toBe(0x7002n);
    expect(readBe64(memory, win.table, 7)).toBe(0n);
    expect(hv.hcall(H_STUFF_TCE, liobn, 0x3000n, 0n, 4n).ret).toBe(H_SUCCESS);
    expect(readBe64(memory, win.table, 3)).toBe(0n);
  });

  it('count above 512 is H_P4 (LoPAR), a range past the window end H_PARAMETER; nothing stored', () => {
    const { memory, hv, win, liobn } = setup();
    expect(hv.hcall(H_STUFF_TCE, liobn, 0n, 0x7001n, 513n).ret).toBe(H_P4);
    // the window has 2^31 / 2^12 = 524288 entries; start at entry 524287 with count 2
    expect(hv.hcall(H_STUFF_TCE, liobn, 0x7ffff000n, 0x7001n, 2n).ret).toBe(H_PARAMETER);
    expect(readBe64(memory, win.table, 524287)).toBe(0n);
    expect(hv.hcall(H_STUFF_TCE, liobn, 0x7ffff000n, 0x7001n, 1n).ret).toBe(H_SUCCESS);
  });
});

describe('H_PUT_TCE_INDIRECT', () => {
  function list(memory: PhysicalMemory, tces: bigint[]): bigint {
    const addr = BigInt(memory.allocFrame()) * 4096n;
    tces.forEach((t, i) => {
      const b = new Uint8Array(8);
      for (let k = 0; k < 8; k++) b[k] = Number((t >> BigInt(56 - 8 * k)) & 0xffn);
      memory.write(addr + BigInt(8 * i), b);
    });
    return addr;
  }

  it('copies a big-endian list of TCEs into consecutive entries', () => {
    const { memory, hv, win, liobn } = setup();
    const tces = [0x10000n | 3n, 0x11000n | 1n, 0x12000n | 2n];
    const l = list(memory, tces);
    expect(hv.hcall(H_PUT_TCE_INDIRECT, liobn, 0x20000n, l, 3n).ret).toBe(H_SUCCESS);
    tces.forEach((t, i) => { expect(readBe64(memory, win.table, 0x20 + i)).toBe(t); });
  });

  it('takes up to 512 entries; 513, a misaligned list, a list outside memory are H_PARAMETER', () => {
    const { memory, hv, win, liobn } = setup();
    const l = list(memory, Array.from({ length: 512 }, (_, i) => (BigInt(0x100 + i) << 12n) | 3n));
    expect(hv.hcall(H_PUT_TCE_INDIRECT, liobn, 0n, l, 513n).ret).toBe(H_PARAMETER);
    expect(hv.hcall(H_PUT_TCE_INDIRECT, liobn, 0n, l + 8n, 2n).ret).toBe(H_PARAMETER);
    expect(hv.hcall(H_PUT_TCE_INDIRECT, liobn, 0n, MEM, 1n).ret).toBe(H_PARAMETER);
    expect(readBe64(memory, win.table, 0)).toBe(0n);
    expect(hv.hcall(H_PUT_TCE_INDIRECT, liobn, 0n, l, 512n).ret).toBe(H_SUCCESS);
    expect(readBe64(memory, win.table, 511)).toBe((0x2ffn << 12n) | 3n);
  });

  it('validates every TCE first: one bad entry stores none', () => {
    const { memory, hv, win, liobn } = setup();
    const l = list(memory, [0x10000n | 3n, MEM | 3n]);
    expect(hv.hcall(H_PUT_TCE_INDIRECT, liobn, 0n, l, 2n).ret).toBe(H_PARAMETER);
    expect(readBe64(memory, win.table, 0)).toBe(0n);
    // a range that runs past the window end stores none either
    const l2 = list(memory, [0x10000n | 3n, 0x11000n | 3n]);
    expect(hv.hcall(H_PUT_TCE_INDIRECT, liobn, 0x7ffff000n, l2, 2n).ret).toBe(H_PARAMETER);
    expect(readBe64(memory, win.table, 524287)).toBe(0n);
  });

  it('a negative LIOBN (multi-table option, not enabled) is H_FUNCTION', () => {
    const { memory, hv } = setup();
    expect(hv.hcall(H_PUT_TCE_INDIRECT, 1n << 63n, 0n, list(memory, [0n]), 1n).ret).toBe(H_FUNCTION);
  });
});
