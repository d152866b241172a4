import { describe, expect, it } from 'vitest';
import { lpaePageDescriptor, lpaeStartLevel, lpaeTableDescriptor, lpaeTcr } from './arm-lpae.js';
import { encodeCd } from './cd.js';
import { decodeConfig, encodeConfig, pageSizesOf } from './config.js';
import { decodeFault, encodeFault } from './fault.js';
import { parseProperties } from './probe.js';
import { encodeMap } from './requests.js';
import { encodeAttachTable, encodeInvalidate, encodePageResp } from './extension.js';

const w64 = (w: Uint32Array) => BigInt(w[0]!) | (BigInt(w[1]!) << 32n);

describe('Arm LPAE descriptors (4 KiB granule)', () => {
  it('table descriptor: address bits 47:12 | 0b11', () => {
    const w = new Uint32Array(2);
    lpaeTableDescriptor(0x1234_5678_9000, w);
    expect(w64(w)).toBe(0x1234_5678_9000n | 3n);
  });
  it('page descriptor: V|page, SH=ISH (3<<8), AF (1<<10), nG (1<<11), AP[1] (1<<6), PXN (1<<53), UXN (1<<54)', () => {
    const w = new Uint32Array(2);
    lpaePageDescriptor(0x8_0000_3000, true, false, w);
    expect(w64(w)).toBe(0x8_0000_3000n | 3n | (1n << 6n) | (3n << 8n) | (1n << 10n) | (1n << 11n) | (1n << 53n) | (1n << 54n));
    lpaePageDescriptor(0x3000, false, true, w);
    // read-only adds AP[2] (1<<7); executable drops UXN
    expect(w64(w)).toBe(0x3000n | 3n | (1n << 6n) | (1n << 7n) | (3n << 8n) | (1n << 10n) | (1n << 11n) | (1n << 53n));
  });
  it('TCR and start level: T0SZ 16 → 48-bit, 4 levels from level 0; T0SZ 25 → 39-bit, from level 1', () => {
    expect(lpaeTcr(48)).toBe(16n | (1n << 8n) | (1n << 10n) | (3n << 12n));
    expect(lpaeStartLevel(16)).toBe(0);
    expect(lpaeStartLevel(25)).toBe(1);
    expect(lpaeStartLevel(34)).toBe(2);
  });
});

describe('SMMUv3 CD', () => {
  it('word 0: T0SZ | V(31); word 1: AA64 (bit 41 → w1 bit 9) | ASID << 16; TTB0 bits 51:4 at byte 8', () => {
    const b = encodeCd({ t0sz: 16, valid: true, asid: 0x42, ttb0: 0x1_2345_6000 });
    const dv = new DataView(b.buffer);
    expect(dv.getUint32(0, true)).toBe((16 | (1 << 31)) >>> 0);
    expect(dv.getUint32(4, true)).toBe((1 << 9) | (0x42 << 16));
    expect(dv.getBigUint64(8, true)).toBe(0x1_2345_6000n);
  });
});

describe('config, fault and probe codecs', () => {
  it('round-trips the config and lists page sizes from the mask', () => {
    const c = { pageSizeMask: 0x201000n, inputStart: 0x1000n, inputEnd: 0xffff_ffffn, domainStart: 1, domainEnd: 7, probeSize: 24, bypass: 1 };
    expect(decodeConfig(encodeConfig(c))).toEqual(c);
    expect(pageSizesOf(0x201000n)).toEqual([0x1000n, 0x200000n]);
  });
  it('fault record: reason @0, flags @4, endpoint @8, reserved1 @12, address @16', () => {
    const b = encodeFault({ reason: 2, flags: 0x101, endpoint: 0x10, reserved1: 0, address: 0xdead_b000n });
    expect([...b.subarray(0, 12)]).toEqual([2, 0, 0, 0, 0x01, 0x01, 0, 0, 0x10, 0, 0, 0]);
    expect(decodeFault(b).address).toBe(0xdead_b000n);
    b[1] = 1;
    expect(decodeFault(b).reserved).toBe(0x100);
  });
  it('probe parsing skips reserved-bit and unknown properties by their length, stops at NONE', () => {
    const b = new Uint8Array(64);
    b.set([0x02, 0x10, 4, 0], 0); // type 2 with reserved bit 12 set, length 4
    b.set([0x07, 0x00, 0, 0], 8); // unknown type 7, length 0
    b.set([0x01, 0x00, 20, 0, 1], 12); // RESV_MEM MSI
    new DataView(b.buffer).setBigUint64(20, 0xfee00000n, true);
    new DataView(b.buffer).setBigUint64(28, 0xfeefffffn, true);
    const props = parseProperties(b, 64);
    expect(props.length).toBe(3);
    expect(props[2]).toEqual({ type: 1, resvMem: { subtype: 1, start: 0xfee00000n, end: 0xfeefffffn } });
  });
  it('request encoders put fields at the spec offsets', () => {
    const m = encodeMap(3, 0x1000n, 0x1fffn, 0x8000n, 3);
    const dv = new DataView(m.buffer);
    expect([m.length, m[0], dv.getUint32(4, true), dv.getBigUint64(16, true), dv.getUint32(32, true)]).toEqual([36, 3, 3, 0x1fffn, 3]);
    const at = encodeAttachTable({ domain: 5, endpoint: 0x10, flags: 2, parent: 4, format: 1, lpae: { tcr: 16n, ttbr0: 0x10000n } });
    const av = new DataView(at.buffer);
    expect([at.length, at[0], av.getUint32(20, true), av.getUint16(28, true), av.getBigUint64(48, true)]).toEqual([76, 6, 4, 1, 0x10000n]);
    const inv = encodeInvalidate({ scope: 4, flags: 0, domain: 5, virtStart: 0x2000n, nrPages: 2n, granule: 12 });
    expect([inv.length, inv[0], inv[4], inv[8], inv[40]]).toEqual([60, 7, 4, 5, 12]);
    const pr = encodePageResp(0x10, 3, 7, 0);
    expect([pr.length, pr[0], pr[8], pr[12], pr[16]]).toEqual([28, 8, 1, 3, 7]);
  });
});
