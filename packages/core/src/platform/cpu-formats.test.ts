import { describe, expect, it } from 'vitest';
import { AARCH64_CPU_PAGE_TABLE, X86_64_CPU_PAGE_TABLE } from './cpu-formats.js';

const enc = (f: (out: Uint32Array) => void) => {
  const out = new Uint32Array(2);
  f(out);
  return (BigInt(out[1]!) << 32n) | BigInt(out[0]!);
};

describe('CPU page-table formats (spec vectors)', () => {
  it('x86-64: table = PA | P | R/W | U/S; leaf = PA | P | U/S (| R/W) (| XD at bit 63)', () => {
    const pa = 0x12_3456_7000;
    expect(enc((o) => { X86_64_CPU_PAGE_TABLE.table(pa, o); })).toBe(0x12_3456_7000n | 1n | 2n | 4n);
    expect(enc((o) => { X86_64_CPU_PAGE_TABLE.leaf(pa, true, false, o); })).toBe((1n << 63n) | 0x12_3456_7000n | 1n | 2n | 4n);
    expect(enc((o) => { X86_64_CPU_PAGE_TABLE.leaf(pa, false, true, o); })).toBe(0x12_3456_7000n | 1n | 4n);
  });
  it('AArch64: table = PA | 0b11; page = PA | 0b11 | AP[1] | SH=ISH | AF | nG (| AP[2]) | PXN (| UXN)', () => {
    const pa = 0x89_abcd_e000;
    expect(enc((o) => { AARCH64_CPU_PAGE_TABLE.table(pa, o); })).toBe(0x89_abcd_e000n | 3n);
    const base = 0x89_abcd_e000n | 3n | (1n << 6n) | (3n << 8n) | (1n << 10n) | (1n << 11n) | (1n << 53n);
    expect(enc((o) => { AARCH64_CPU_PAGE_TABLE.leaf(pa, true, false, o); })).toBe(base | (1n << 54n));
    expect(enc((o) => { AARCH64_CPU_PAGE_TABLE.leaf(pa, false, true, o); })).toBe(base | (1n << 7n));
  });
});
