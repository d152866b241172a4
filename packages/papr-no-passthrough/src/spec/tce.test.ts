import { describe, expect, it } from 'vitest';
import { TCE_PCI_READ, TCE_PCI_WRITE, bswap32, decodeTce, encodeTce } from './tce.js';
import { hcallReturnName, hcallReturnRegister, H_PARAMETER, H_P4, H_GET_TCE, H_PUT_TCE, H_STUFF_TCE, H_PUT_TCE_INDIRECT } from './hcall.js';
import { configAddr, buidCells, pageShiftsOfMask, maskOfPageShift } from './rtas.js';
import { pciLiobn, tceIndex, translateIoba, DDW_WINDOW_START } from './dma-window.js';

describe('TCE encoding (LoPAR TCE Definition)', () => {
  it('puts the RPN in bits 63..12 and read/write in bits 1..0', () => {
    // real page 0x1234 (address 0x1234000), read/write = 0b11
    expect(encodeTce(0x1234n << 12n, true, true)).toBe((0x1234n << 12n) | 3n);
    // read-only: 01 — the device may read memory
    expect(encodeTce(0x5000n, true, false)).toBe(0x5000n | 1n);
    // write-only: 10
    expect(encodeTce(0x5000n, false, true)).toBe(0x5000n | 2n);
    // page fault: 00
    expect(encodeTce(0x5000n, false, false)).toBe(0x5000n);
    // an RPN above 2^32 pages: bit 63 set
    expect(encodeTce(1n << 63n, true, false)).toBe((1n << 63n) | 1n);
    expect(TCE_PCI_READ).toBe(1);
    expect(TCE_PCI_WRITE).toBe(2);
  });

  it('drops the low 12 bits of the address and decodes back', () => {
    expect(encodeTce(0x1234fffn, false, true)).toBe(0x1234000n | 2n);
    expect(decodeTce((0xabcden << 12n) | 2n)).toEqual({ address: 0xabcde000n, read: false, write: true });
  });

  it('byte-swaps 32-bit words (big-endian entries over little-endian accessors)', () => {
    expect(bswap32(0x11223344)).toBe(0x44332211);
    expect(bswap32(0x000000ff)).toBe(0xff000000);
    expect(bswap32(bswap32(0xdeadbeef))).toBe(0xdeadbeef);
  });
});

describe('hcall numbers and return codes (LoPAR, hvcall.h)', () => {
  it('has the opcodes LoPAR gives', () => {
    expect([H_GET_TCE, H_PUT_TCE, H_STUFF_TCE, H_PUT_TCE_INDIRECT]).toEqual([0x1c, 0x20, 0x138, 0x13c]);
  });
  it('names and widens return codes to the 64-bit R3 value', () => {
    expect(hcallReturnName(H_PARAMETER)).toBe('H_PARAMETER');
    expect(hcallReturnRegister(H_PARAMETER)).toBe(0xfffffffffffffffcn); // 2^64 − 4
    expect(hcallReturnRegister(H_P4)).toBe(0xffffffffffffffc7n); // 2^64 − 57
    expect(hcallReturnName(-999)).toBe('H_-999');
  });
});

describe('PE addressing and DDW masks', () => {
  it('config_addr = (bus << 16) | (devfn << 8)', () => {
    // 0000:01:02.3 → bus 1, devfn (2 << 3) | 3 = 0x13
    expect(configAddr(1, (2 << 3) | 3)).toBe(0x011300);
  });
  it('splits the BUID into hi/lo cells', () => {
    expect(buidCells(0x800000020000000n)).toEqual([0x08000000, 0x20000000]);
  });
  it('maps page-size mask bits to shifts', () => {
    // 0x01 4K, 0x02 64K, 0x04 16M, 0x100 2M
    expect(pageShiftsOfMask(0x107)).toEqual([12, 16, 21, 24]);
    expect(maskOfPageShift(34)).toBe(0x80);
    expect(maskOfPageShift(13)).toBe(0);
  });
});

describe('window arithmetic', () => {
  it('indexes a window by (ioba − start) >> pageShift', () => {
    // 64 KiB pages at 2^59: ioba 2^59 + 0x30000 → index 3
    expect(tceIndex(DDW_WINDOW_START + 0x30000n, DDW_WINDOW_START, 1n << 40n, 16)).toBe(3);
    // one past the end, and one below the start
    expect(tceIndex(DDW_WINDOW_START + (1n << 40n), DDW_WINDOW_START, 1n << 40n, 16)).toBe(-1);
    expect(tceIndex(DDW_WINDOW_START - 1n, DDW_WINDOW_START, 1n << 40n, 16)).toBe(-1);
  });
  it('translates with the page offset of the window page size', () => {
    // TCE 0x20000 | rw in a 64 KiB window; ioba offset 0x1234 in the page → 0x21234
    expect(translateIoba(0x20000n | 3n, DDW_WINDOW_START + 0x51234n, 16)).toBe(0x21234n);
  });
  it('builds QEMU-style PCI LIOBNs', () => {
    expect(pciLiobn(0, 0)).toBe(0x80000000);
    expect(pciLiobn(2, 1)).toBe(0x80000201);
  });
});
