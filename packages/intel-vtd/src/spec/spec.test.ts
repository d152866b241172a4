import { describe, expect, it } from 'vitest';
import { CAP, ECAP } from './registers.js';
import { decodeFields, encodeFields, getField } from './fields.js';
import { DEFAULT_CAP, DEFAULT_ECAP } from './defaults.js';
import { decodeScalableRootEntry, encodeLegacyRootEntry, encodeScalableRootEntry, legacyRootEntryReserved, scalableRootHalfReserved } from './root-entry.js';
import {
  decodeLegacyContextEntry,
  decodeScalableContextEntry,
  encodeLegacyContextEntry,
  encodeScalableContextEntry,
  legacyContextEntryReserved,
  pdtsForMaxPasid,
  pdtsMaxPasid,
  scalableContextEntryReserved,
} from './context-entry.js';
import { decodePasidEntry, encodePasidDirEntry, encodePasidEntry, pasidEntryReserved, PGTT_NESTED } from './pasid-entry.js';
import { encodeFsLeaf, encodeFsTable, fsCanonical, fsEntryReserved } from './first-stage.js';
import { encodeSsLeaf, encodeSsTable, ssEntryReserved } from './second-stage.js';
import {
  ccDescriptor,
  descriptorType,
  iotlbDescriptor,
  pageGroupResponseDescriptor,
  pasidCacheDescriptor,
  piotlbDescriptor,
  psiAlignedAddress,
  waitDescriptor,
  devTlbDescriptor,
  pasidDevTlbDescriptor,
  iecDescriptor,
} from './invalidation.js';
import { decodeFaultRecord, encodeFaultRecord, faultClass, faultReasonName, legacyFaultReason } from './faults.js';
import { decodePageRequest, encodePageRequest } from './page-request.js';
import { X86_64_PAGE_TABLE } from './x86-64.js';

/** Splits 64-bit words into little-endian dwords. */
function dwords(...qws: bigint[]): number[] {
  return qws.flatMap((q) => [Number(q & 0xffffffffn), Number(q >> 32n)]);
}

describe('CAP/ECAP', () => {
  it('default CAP encodes each field at its bit position', () => {
    const expected =
      6n | // ND
      (0b00110n << 8n) | // SAGAW 39+48
      (47n << 16n) | // MGAW
      (0x22n << 24n) | // FRO
      (0b11n << 34n) | // SLLPS 2M+1G
      (1n << 39n) | // PSI
      (7n << 40n) | // NFR
      (18n << 48n) | // MAMV
      (1n << 54n) | (1n << 55n) | // DWD DRD
      (1n << 56n) | // FL1GP
      (1n << 60n); // FL5LP
    expect(DEFAULT_CAP).toBe(expected);
    expect(getField(DEFAULT_CAP, CAP.FRO) * 16).toBe(0x220);
  });
  it('default ECAP advertises scalable mode, 20-bit PASIDs, nesting, PT, PRS', () => {
    const expected =
      1n | 2n | (1n << 6n) | (1n << 7n) | (0xfn << 8n) | (1n << 26n) | (1n << 29n) | (1n << 30n) | (1n << 31n) |
      (1n << 34n) | (19n << 35n) | (1n << 40n) | (1n << 42n) | (1n << 43n) | (1n << 45n) | (1n << 46n) | (1n << 47n) |
      (1n << 48n) | (1n << 49n);
    expect(DEFAULT_ECAP).toBe(expected);
    const d = decodeFields(ECAP, DEFAULT_ECAP);
    expect(d.PSS + 1).toBe(20);
    expect(d.IRO * 16).toBe(0xf0);
  });
  it('encodeFields masks values to the field width', () => {
    expect(encodeFields(CAP, { ND: 0xff })).toBe(7n);
  });
});

describe('root and context entries', () => {
  it('legacy root entry = CTP | P', () => {
    expect(encodeLegacyRootEntry({ present: true, ctp: 0x12345000n })).toEqual([0x12345001n, 0n]);
  });
  it('scalable root entry carries two halves', () => {
    const [lo, hi] = encodeScalableRootEntry({ lp: true, lctp: 0x1000n, up: true, uctp: 0x2_0000_3000n });
    expect(lo).toBe(0x1001n);
    expect(hi).toBe(0x2_0000_3001n);
    const d = decodeScalableRootEntry(dwords(lo, hi));
    expect(d).toEqual({ lp: true, lctp: 0x1000, up: true, uctp: 0x2_0000_3000 });
    expect(scalableRootHalfReserved(0x1001 | 0x2, 0, 48)).toBe(true); // bit 1 reserved
    expect(scalableRootHalfReserved(0x1001, 1 << 16, 48)).toBe(true); // address bit 48 ≥ HAW
  });
  it('legacy context entry: TT bits 3:2, AW bits 66:64, DID bits 87:72', () => {
    const [lo, hi] = encodeLegacyContextEntry({ present: true, tt: 2, ssptptr: 0xabc000n, aw: 2, did: 0x1234 });
    expect(lo).toBe(0xabc000n | (2n << 2n) | 1n);
    expect(hi).toBe((0x1234n << 8n) | 2n);
    expect(decodeLegacyContextEntry(dwords(lo, hi))).toEqual({ present: true, fpd: false, tt: 2, ssptptr: 0xabc000, aw: 2, did: 0x1234 });
  });
  it('scalable context entry: PDTS bits 11:9, RID_PASID bits 83:64', () => {
    const v = encodeScalableContextEntry({ present: true, paside: true, pre: true, pdts: 7, pasidDirPtr: 0x40000n, ridPasid: 0x12345 });
    expect(v[0]).toBe(0x40000n | (7n << 9n) | (1n << 4n) | (1n << 3n) | 1n);
    expect(v[1]).toBe(0x12345n);
    const d = decodeScalableContextEntry(dwords(...v));
    expect(d.pdts).toBe(7);
    expect(d.ridPasid).toBe(0x12345);
    expect(scalableContextEntryReserved(dwords(...v), 48, false)).toBe(false);
    expect(scalableContextEntryReserved(dwords(v[0] | (1n << 5n), v[1], 0n, 0n), 48, false)).toBe(true);
    expect(scalableContextEntryReserved(dwords(v[0], v[1], 1n, 0n), 48, false)).toBe(true);
  });
  it('PDTS arithmetic: 4 KiB directory → 2^15 PASIDs → PDTS 2; 2^20 → 7', () => {
    expect(pdtsForMaxPasid(2 ** 15)).toBe(2); // log2(2^15 >> 6) − 7 = 9 − 7
    expect(pdtsForMaxPasid(2 ** 20)).toBe(7);
    expect(pdtsMaxPasid(7)).toBe(2 ** 20);
  });
});

describe('PASID entries', () => {
  it('directory entry = SMPTBLPTR | P', () => {
    expect(encodePasidDirEntry({ present: true, smptblptr: 0x7000n })).toBe(0x7001n);
  });
  it('nested PASID entry places each field at its bit', () => {
    const v = encodePasidEntry({
      present: true, pgtt: PGTT_NESTED, aw: 2, ssptptr: 0x5000n, did: 9, pwsnp: true, sre: true, wpe: true, fspm: 1, eafe: true, fsptptr: 0x9000n, ssade: true,
    });
    expect(v[0]).toBe(0x5000n | (1n << 9n) | (3n << 6n) | (2n << 2n) | 1n);
    expect(v[1]).toBe(9n | (1n << 23n));
    expect(v[2]).toBe(0x9000n | (1n << 7n) | (1n << 4n) | (1n << 2n) | 1n);
    const d = decodePasidEntry(dwords(...v));
    expect(d).toMatchObject({ pgtt: 3, aw: 2, did: 9, pwsnp: true, sre: true, wpe: true, fspm: 1, eafe: true, fsptptr: 0x9000, ssptptr: 0x5000, ssade: true });
    const caps = { haw: 48, sc: true, smpwcs: true, mts: false, ssads: true, eafs: true, srs: true };
    expect(pasidEntryReserved(dwords(...v), caps)).toBe(false);
    expect(pasidEntryReserved(dwords(...v), { ...caps, ssads: false })).toBe(true);
    expect(pasidEntryReserved(dwords(v[0]!, v[1]!, v[2]!, 1n), caps)).toBe(true); // val[3]
  });
});

describe('entries read in place (the dwords start at `at` in a table frame)', () => {
  /** A 4 KiB frame's words with `entry` at dword `at` and every other word all ones. */
  function frameWith(entry: number[], at: number): Uint32Array {
    const w = new Uint32Array(1024).fill(0xffffffff);
    w.set(entry, at);
    return w;
  }
  it('decoders and reserved checks see only the entry, at any offset', () => {
    const root = dwords(...encodeLegacyRootEntry({ present: true, ctp: 0x3000n }));
    expect(legacyRootEntryReserved(frameWith(root, 12), 48, 12)).toBe(false);
    expect(legacyRootEntryReserved(frameWith([root[0]!, root[1]!, 1, 0], 12), 48, 12)).toBe(true);
    const lce = dwords(...encodeLegacyContextEntry({ present: true, tt: 0, ssptptr: 0xabc000n, aw: 2, did: 7 }));
    const lf = frameWith(lce, 1020);
    expect(decodeLegacyContextEntry(lf, undefined, 1020)).toEqual(decodeLegacyContextEntry(lce));
    expect(legacyContextEntryReserved(lf, 48, 1020)).toBe(false);
    expect(legacyContextEntryReserved(frameWith([lce[0]!, lce[1]!, lce[2]!, 1], 1020), 48, 1020)).toBe(true);
    const sce = dwords(...encodeScalableContextEntry({ present: true, paside: true, pdts: 2, pasidDirPtr: 0x40000n, ridPasid: 5 }));
    const sf = frameWith(sce, 1016);
    expect(decodeScalableContextEntry(sf, undefined, 1016)).toEqual(decodeScalableContextEntry(sce));
    expect(scalableContextEntryReserved(sf, 48, false, 1016)).toBe(false);
    expect(scalableContextEntryReserved(frameWith([...sce.slice(0, 7), 1], 1016), 48, false, 1016)).toBe(true); // bit 255
    const pe = dwords(...encodePasidEntry({ present: true, pgtt: PGTT_NESTED, aw: 2, ssptptr: 0x5000n, did: 9, fsptptr: 0x9000n }));
    const pf = frameWith(pe, 1008);
    expect(decodePasidEntry(pf, undefined, 1008)).toEqual(decodePasidEntry(pe));
    const caps = { haw: 48, sc: true, smpwcs: true, mts: true, ssads: true, eafs: true, srs: true };
    expect(pasidEntryReserved(pf, caps, 1008)).toBe(false);
    expect(pasidEntryReserved(frameWith([...pe.slice(0, 15), 1], 1008), caps, 1008)).toBe(true); // val[7]
  });
});

describe('page-table entries', () => {
  it('first stage: Linux writes 0x27 for tables, 0x25/0x67 for leaves', () => {
    expect(encodeFsTable(0x1000n)).toBe(0x1027n);
    expect(encodeFsLeaf(0x2000n, { writable: false })).toBe(0x2025n);
    expect(encodeFsLeaf(0x2000n, { writable: true })).toBe(0x2067n);
    expect(encodeFsLeaf(0x200000n, { writable: true, large: true })).toBe(0x2000e7n);
    expect(encodeFsLeaf(0x2000n, { writable: false, xd: true })).toBe((1n << 63n) | 0x2025n);
  });
  it('first stage reserved bits: PS at L4, 2 MiB leaf bits 20:13, address ≥ HAW', () => {
    expect(fsEntryReserved(0x1000 | 0x81, 0, 4, 48, true)).toBe(true);
    expect(fsEntryReserved(0x200000 | 0x2000 | 0x81, 0, 2, 48, true)).toBe(true);
    expect(fsEntryReserved(0x200000 | 0x1000 | 0x81, 0, 2, 48, true)).toBe(false); // bit 12 = PAT
    expect(fsEntryReserved(0x40000000 | 0x81, 0, 3, 48, false)).toBe(true); // 1 GiB without FL1GP
    expect(fsEntryReserved(0x1001, 1 << 16, 1, 48, true)).toBe(true); // bit 48
  });
  it('canonical addresses', () => {
    expect(fsCanonical(0x00007fff, false)).toBe(true);
    expect(fsCanonical(0x00008000, false)).toBe(false); // bit 47 set, 63:48 clear
    expect(fsCanonical(0xffff8000, false)).toBe(true);
    expect(fsCanonical(0x00008000, true)).toBe(true);
  });
  it('second stage: Linux writes R|W tables; R=W=0 is not present', () => {
    expect(encodeSsTable(0x3000n)).toBe(0x3003n);
    expect(encodeSsLeaf(0x4000n, { read: true, write: false })).toBe(0x4001n);
    expect(encodeSsLeaf(0x200000n, { read: true, write: true, large: true })).toBe(0x200083n);
    expect(ssEntryReserved(0x4001 | 0x800, 0, 2, 48, 3, true)).toBe(true); // SNP in a non-leaf
    expect(ssEntryReserved(0x200083, 0, 2, 48, 0, true)).toBe(true); // 2 MiB without SLLPS
    expect(ssEntryReserved(0x4003, 0x40000000, 1, 48, 3, true)).toBe(true); // bit 62
  });
});

describe('invalidation descriptors', () => {
  it('context-cache device-selective', () => {
    expect(ccDescriptor({ granularity: 3, did: 5, sid: 0x0310, fm: 0 })).toEqual([(0x0310n << 32n) | (5n << 16n) | (3n << 4n) | 1n, 0n]);
  });
  it('IOTLB PSI with IH', () => {
    expect(iotlbDescriptor({ granularity: 3, did: 7, addr: 0x200000n, am: 9, ih: true })).toEqual([(7n << 16n) | (3n << 4n) | 2n, 0x200000n | 0x40n | 9n]);
  });
  it('PASID-based IOTLB, PASID cache, wait, page group response', () => {
    expect(piotlbDescriptor({ granularity: 2, did: 2, pasid: 0x1234 })).toEqual([(0x1234n << 32n) | (2n << 16n) | (2n << 4n) | 6n, 0n]);
    expect(pasidCacheDescriptor({ granularity: 1, did: 3, pasid: 9 })).toEqual([(9n << 32n) | (3n << 16n) | (1n << 4n) | 7n, 0n]);
    expect(waitDescriptor({ statusWrite: true, statusData: 2, statusAddr: 0x8000n, fence: true })).toEqual([(2n << 32n) | (1n << 6n) | (1n << 5n) | 5n, 0x8000n]);
    expect(pageGroupResponseDescriptor({ rid: 0x0100, pasid: 5, code: 1, prgi: 3, lpig: true })).toEqual([
      (5n << 32n) | (0x0100n << 16n) | (1n << 12n) | (1n << 4n) | 9n,
      (3n << 3n) | 4n,
    ]);
    expect(devTlbDescriptor({ sid: 0x10, addr: 0x7000n, size: true, qdep: 4 })).toEqual([(0x10n << 32n) | (4n << 16n) | 3n, 0x7001n]);
    expect(pasidDevTlbDescriptor({ sid: 0x10, pasid: 3, addr: 0n, size: false, global: true })).toEqual([(3n << 32n) | (0x10n << 16n) | 8n, 1n]);
    expect(iecDescriptor({ indexSelective: true, iidx: 4 })).toEqual([(4n << 32n) | (1n << 4n) | 4n, 0n]);
    expect(descriptorType(0x205)).toBe(0x15); // Type[6:4] = bits 11:9
  });
  it('PSI alignment (Linux calculate_psi_aligned_address)', () => {
    // 3 pages at pfn 0x10 → 4 pages, mask 2, pfn 0x10 aligned to 4 → addr 0x10000.
    expect(psiAlignedAddress(0x10000n, 0x12fffn)).toEqual({ addr: 0x10000n, mask: 2, pages: 4n });
    // 2 pages at pfn 0x11..0x12: bitmask 1 & 0x11 ≠ 0 → shared = ~(0x11^0x12) & ~1 → lowest set bit 2 → mask 2, addr 0x10000.
    expect(psiAlignedAddress(0x11000n, 0x12fffn)).toEqual({ addr: 0x10000n, mask: 2, pages: 2n });
  });
});

describe('faults and page requests', () => {
  it('FRCD layout: FR bits 103:96, PV 123:104, PP 95, T 126, F 127', () => {
    const [lo, hi] = encodeFaultRecord({ fi: 0x12345678n, sid: 0x0308, fr: 0x59, pv: 0x42, pp: true, t1: true, at: 0, exe: false, priv: false, t2: false });
    expect(lo).toBe(0x12345000n);
    expect(hi).toBe(0x0308n | (1n << 31n) | (0x59n << 32n) | (0x42n << 40n) | (1n << 62n) | (1n << 63n));
    expect(decodeFaultRecord(dwords(lo, hi))).toMatchObject({ f: true, fr: 0x59, pv: 0x42, pp: true, sid: 0x308, t1: true, fi: 0x12345000n });
  });
  it('reason names are Linux’s strings; QEMU maps SS faults to legacy codes', () => {
    expect(faultReasonName(0x59)).toBe('SM: Present bit in PASID Table Entry is clear');
    expect(faultReasonName(0x06)).toBe('PTE Read access is not set');
    expect(legacyFaultReason(0x79, true)).toBe(0x05);
    expect(legacyFaultReason(0x79, false)).toBe(0x06);
    expect(legacyFaultReason(0x71, false)).toBe(0x71);
    expect(faultClass(0x79)).toBe('translation');
    expect(faultClass(0x85)).toBe('permission');
    expect(faultClass(0x59)).toBe('blocked');
  });
  it('page request descriptor', () => {
    const [qw0, qw1] = encodePageRequest({ pasidPresent: true, rid: 0x0100, pasid: 7, exeReq: false, pmReq: true, rdReq: false, wrReq: true, lpig: true, prgIndex: 5, addr: 0x4000n });
    expect(qw0).toBe(1n | (1n << 8n) | (0x0100n << 16n) | (7n << 32n) | (1n << 53n));
    expect(qw1).toBe(0x4000n | (5n << 3n) | 4n | 2n);
    expect(decodePageRequest(dwords(qw0, qw1))).toMatchObject({ rid: 0x100, pasid: 7, pmReq: true, wrReq: true, prgIndex: 5, addr: 0x4000n });
  });
});

describe('x86-64 CPU page-table format', () => {
  it('tables are P|RW|US; leaves P|US(|RW), XD when not executable', () => {
    const out = new Uint32Array(2);
    X86_64_PAGE_TABLE.table(0x1_2345_6000, out);
    expect([...out]).toEqual([0x23456007, 1]);
    X86_64_PAGE_TABLE.leaf(0x7000, false, false, out);
    expect([...out]).toEqual([0x7005, 0x80000000]);
    X86_64_PAGE_TABLE.leaf(0x7000, true, true, out);
    expect([...out]).toEqual([0x7007, 0]);
  });
});
