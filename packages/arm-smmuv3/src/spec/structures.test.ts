import { describe, expect, it } from 'vitest';
import { toQwords } from './bits.js';
import { decodeCd, encodeCd, encodeL1Cd } from './cd.js';
import {
  CMD_ATC_INV,
  CMD_CFGI_CD,
  CMD_CFGI_STE,
  CMD_PRI_RESP,
  CMD_RESUME,
  CMD_SYNC,
  CMD_TLBI_NH_VA,
  encodeCommand,
} from './commands.js';
import { decodeEventWords, encodeEventWords, F_TRANSLATION } from './events.js';
import { encodeS1Leaf, encodeS2Leaf, encodeTableDesc, s1StartLevel, s2Sl0, s2StartLevel } from './pgtable.js';
import { decodePriWords, encodePriWords } from './priq.js';
import { decodeSte, encodeSte } from './ste.js';
import { encodeL1Std } from './strtab.js';
import { aarch64CpuPageTable } from './cpu-page-table.js';

describe('STE (IHI0070 §5.2)', () => {
  it('stage-1 STE with a 2-level CD table: qword 0 and 1 worked out by hand', () => {
    const q = encodeSte({ V: 1, Config: 5, S1Fmt: 2, S1ContextPtr: 0x12345000, S1CDMax: 20, S1DSS: 2, S1CIR: 1, S1COR: 1, S1CSH: 3, EATS: 1 });
    // V [0] | Config [3:1] = 0b101 | S1Fmt [5:4] = 2 | S1ContextPtr [51:6] | S1CDMax [63:59] = 20
    expect(q[0]).toBe((20n << 59n) | 0x12345000n | (2n << 4n) | (5n << 1n) | 1n);
    // S1DSS [1:0] = 2 | S1CIR [3:2] = 1 | S1COR [5:4] = 1 | S1CSH [7:6] = 3 | EATS [29:28] = 1
    expect(q[1]).toBe(2n | (1n << 2n) | (1n << 4n) | (3n << 6n) | (1n << 28n));
    expect(q.slice(2)).toEqual([0n, 0n, 0n, 0n, 0n, 0n]);
  });

  it('stage-2 STE: S2VMID, the VTCR fields, S2AA64/S2PTW/S2R and S2TTB', () => {
    const q = encodeSte({
      V: 1, Config: 6, S2VMID: 7, S2T0SZ: 16, S2SL0: 2, S2IR0: 1, S2OR0: 1, S2SH0: 3, S2TG: 0, S2PS: 5,
      S2AA64: 1, S2PTW: 1, S2R: 1, S2TTB: 0x80000000,
    });
    expect(q[0]).toBe(1n | (6n << 1n));
    expect(q[2]).toBe(7n | (16n << 32n) | (2n << 38n) | (1n << 40n) | (1n << 42n) | (3n << 44n) | (5n << 48n) | (1n << 51n) | (1n << 54n) | (1n << 58n));
    expect(q[3]).toBe(0x80000000n);
    const d = decodeSte(q);
    expect([d.S2VMID, d.S2T0SZ, d.S2SL0, d.S2PS, d.S2TTB, d.S2R]).toEqual([7, 16, 2, 5, 0x80000000, 1]);
  });

  it('Linux abort and bypass STEs: w0 = 0x1 and 0x9', () => {
    expect(encodeSte({ V: 1, Config: 0 })[0]).toBe(0x1n);
    expect(encodeSte({ V: 1, Config: 4 })[0]).toBe(0x9n);
  });

  it('MEV is bit 83 (qword 1 bit 19), S1STALLD bit 91 (qword 1 bit 27)', () => {
    expect(encodeSte({ MEV: 1, S1STALLD: 1 })[1]).toBe((1n << 19n) | (1n << 27n));
  });
});

describe('CD (IHI0070 §5.4)', () => {
  it('a Linux-style stage-1 CD worked out by hand', () => {
    const q = encodeCd({
      T0SZ: 16, TG0: 0, IR0: 1, OR0: 1, SH0: 3, EPD1: 1, V: 1, IPS: 5, AA64: 1, R: 1, A: 1, ASET: 1, ASID: 0x1234,
      TTB0: 0x456789000, MAIR0: 0xf404ff44,
    });
    expect(q[0]).toBe(
      16n | (1n << 8n) | (1n << 10n) | (3n << 12n) | (1n << 30n) | (1n << 31n) | (5n << 32n) | (1n << 41n) | (1n << 45n) | (1n << 46n) | (1n << 47n) | (0x1234n << 48n),
    );
    expect(q[1]).toBe(0x456789000n);
    expect(q[3]).toBe(0xf404ff44n);
    const d = decodeCd(q);
    expect([d.ASID, d.TTB0, d.IPS, d.V, d.EPD1]).toEqual([0x1234, 0x456789000, 5, 1, 1]);
  });

  it('HD is bit 42, HA bit 43, S bit 44', () => {
    expect(encodeCd({ HD: 1, HA: 1, S: 1 })[0]).toBe((1n << 42n) | (1n << 43n) | (1n << 44n));
  });
});

describe('L1STD and L1CD (§5.1, §5.3)', () => {
  it('L1STD: Span [4:0] | L2Ptr [51:6]', () => {
    expect(toQwords(encodeL1Std({ span: 9, l2Ptr: 0x100004000 }))).toEqual([0x100004000n | 9n]);
  });
  it('L1CD: V [0] | L2Ptr [51:12]', () => {
    expect(toQwords(encodeL1Cd({ V: 1, L2Ptr: 0x200010000 }))).toEqual([0x200010000n | 1n]);
  });
});

describe('VMSAv8-64 descriptors (Arm ARM D8.3)', () => {
  it('stage-1 page: 0b11 | AttrIndx | AP[1] | SH | AF | nG | PXN | UXN', () => {
    const w = encodeS1Leaf({ pa: 0x812345000, page: true, attrIndx: 1, ap: 0b01, sh: 3, af: true, ng: true, pxn: true, uxn: true });
    expect(toQwords(w)).toEqual([0x812345000n | 3n | (1n << 2n) | (1n << 6n) | (3n << 8n) | (1n << 10n) | (1n << 11n) | (3n << 53n)]);
  });
  it('stage-1 2 MiB block: 0b01 | AF', () => {
    expect(toQwords(encodeS1Leaf({ pa: 0x40200000, page: false, af: true }))).toEqual([0x40200000n | 1n | (1n << 10n)]);
  });
  it('stage-2 page: MemAttr [5:2] | S2AP [7:6] | SH | AF', () => {
    expect(toQwords(encodeS2Leaf({ pa: 0x1000, page: true, memAttr: 0xf, s2ap: 3, sh: 3, af: true }))).toEqual([
      0x1000n | 3n | (0xfn << 2n) | (3n << 6n) | (3n << 8n) | (1n << 10n),
    ]);
  });
  it('table descriptor: NLTA | 0b11', () => {
    expect(toQwords(encodeTableDesc(0x1234567000))).toEqual([0x1234567000n | 3n]);
  });
  it('start levels: 48-bit 4K → L0, 39-bit → L1, 48-bit 64K → L1; SL0 2 ↔ L0 for 4K', () => {
    expect(s1StartLevel(48, 12)).toBe(0);
    expect(s1StartLevel(39, 12)).toBe(1);
    expect(s1StartLevel(48, 16)).toBe(1);
    expect(s1StartLevel(48, 14)).toBe(0);
    expect(s2StartLevel(2, 12)).toBe(0);
    expect(s2StartLevel(0, 16)).toBe(3);
    expect(s2Sl0(0, 12)).toBe(2); // Linux: sl = 0 + 1 = 1, ~1 & 3 = 2
    expect(s2Sl0(1, 16)).toBe(2);
  });
  it('AArch64 CPU leaf: AP[1] user, AP[2] when read-only, SH ISH, AF, nG, PXN, UXN unless exec', () => {
    const out = new Uint32Array(2);
    aarch64CpuPageTable.leaf(0x5000, false, false, out);
    expect(toQwords(out)).toEqual([0x5000n | 3n | (1n << 6n) | (1n << 7n) | (3n << 8n) | (1n << 10n) | (1n << 11n) | (1n << 53n) | (1n << 54n)]);
    aarch64CpuPageTable.table(0x9000, out);
    expect(toQwords(out)).toEqual([0x9003n]);
  });
});

describe('commands (§4)', () => {
  it('CFGI_STE: StreamID [63:32], Leaf qword 1 [0]', () => {
    expect(encodeCommand({ op: CMD_CFGI_STE, sid: 0x1234, leaf: true })).toEqual([0x03n | (0x1234n << 32n), 1n]);
  });
  it('CFGI_CD: SubstreamID [31:12]', () => {
    expect(encodeCommand({ op: CMD_CFGI_CD, sid: 5, ssid: 0x1ffff })).toEqual([0x05n | (0x1ffffn << 12n) | (5n << 32n), 0n]);
  });
  it('range TLBI_NH_VA: NUM [16:12], SCALE [24:20], VMID [47:32], ASID [63:48]; Leaf, TTL [9:8], TG [11:10], Addr', () => {
    expect(encodeCommand({ op: CMD_TLBI_NH_VA, vmid: 3, asid: 0x42, addr: 0x7ffff0000000, leaf: true, tg: 1, ttl: 3, num: 3, scale: 2 })).toEqual([
      0x12n | (3n << 12n) | (2n << 20n) | (3n << 32n) | (0x42n << 48n),
      1n | (3n << 8n) | (1n << 10n) | 0x7ffff0000000n,
    ]);
  });
  it('ATC_INV, PRI_RESP, RESUME, SYNC', () => {
    expect(encodeCommand({ op: CMD_ATC_INV, sid: 7, ssv: true, ssid: 9, size: 52 })).toEqual([0x40n | (1n << 11n) | (9n << 12n) | (7n << 32n), 52n]);
    expect(encodeCommand({ op: CMD_PRI_RESP, sid: 1, ssv: true, ssid: 5, prgi: 7, resp: 2 })).toEqual([0x41n | (1n << 11n) | (5n << 12n) | (1n << 32n), 7n | (2n << 12n)]);
    expect(encodeCommand({ op: CMD_RESUME, sid: 2, stag: 0x55, resp: 1 })).toEqual([0x44n | (1n << 12n) | (2n << 32n), 0x55n]);
    expect(encodeCommand({ op: CMD_SYNC, cs: 1, msiData: 0xdead, addr: 0x1000 })).toEqual([0x46n | (1n << 12n) | (0xdeadn << 32n), 0x1000n]);
  });
});

describe('event and PRI records (§7.3, §8)', () => {
  it('event record: EventID, SSV, SubstreamID, StreamID; RnW [35], S2 [39], CLASS [41:40]; InputAddr; IPA', () => {
    const w = encodeEventWords({
      EventID: F_TRANSLATION, SSV: 1, SubstreamID: 3, StreamID: 0x100, RnW: 1, S2: 1, CLASS: 1,
      InputAddrHi: 1, InputAddrLo: 0x2000, Addr: 0x5000,
    });
    expect(toQwords(w)).toEqual([
      0x10n | (1n << 11n) | (3n << 12n) | (0x100n << 32n),
      (1n << 35n) | (1n << 39n) | (1n << 40n),
      0x100002000n,
      0x5000n,
    ]);
    expect(decodeEventWords(w)).toMatchObject({ name: 'F_TRANSLATION', InputAddr: 0x100002000n, S2: 1, CLASS: 1 });
  });
  it('PRI record: SID [31:0], SSID [51:32], R [60], W [61], Last [62], SSV [63]; PRGI, Addr', () => {
    const r = { StreamID: 8, SSV: 1, SubstreamID: 2, Priv: 0, X: 0, R: 1, W: 0, Last: 1, PRGIndex: 5, Addr: 0x7000 };
    const w = encodePriWords(r);
    expect(toQwords(w)).toEqual([8n | (2n << 32n) | (1n << 60n) | (1n << 62n) | (1n << 63n), 5n | 0x7000n]);
    expect(decodePriWords(w)).toEqual(r);
  });
});
