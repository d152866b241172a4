import { describe, expect, it } from 'vitest';
import { Bench } from '../test/bench.js';
import { PGTT_FIRST_STAGE, PGTT_NESTED, PGTT_PASS_THROUGH, PGTT_SECOND_STAGE } from '../spec/pasid-entry.js';
import {
  ccDescriptor,
  iotlbDescriptor,
  pageGroupResponseDescriptor,
  pasidCacheDescriptor,
  piotlbDescriptor,
  waitDescriptor,
} from '../spec/invalidation.js';
import {
  CAP,
  CCMD_REG,
  ECAP,
  FSTS_IQE,
  FSTS_PFO,
  FSTS_PPF,
  FSTS_REG,
  FECTL_REG,
  GSTS_REG,
  GSTS_RTPS,
  GSTS_TES,
  ICS_REG,
  IQH_REG,
  IQER_REG,
  PECTL_REG,
  PQA_REG,
  PQH_REG,
  PQT_REG,
  PRS_REG,
  RTADDR_REG,
} from '../spec/registers.js';
import { DEFAULT_CAP, DEFAULT_ECAP } from '../spec/defaults.js';
import { decodeFaultRecord } from '../spec/faults.js';
import { decodePageRequest } from '../spec/page-request.js';
import { setField } from '../spec/fields.js';
import { encodeSsLeaf } from '../spec/second-stage.js';
import { encodeLegacyContextEntry } from '../spec/context-entry.js';
import { encodeLegacyRootEntry } from '../spec/root-entry.js';

const SID = 0x0310; // 00:02.0 on bus 3 → devfn 0x10
const bytes = (...b: number[]) => Uint8Array.from(b);

function frcd(b: Bench, i: number) {
  const base = 0x220 + i * 16;
  const m = b.hw.mmio;
  return decodeFaultRecord([m.read32(base), m.read32(base + 4), m.read32(base + 8), m.read32(base + 12)]);
}

/** A unit with SID's RID_PASID (0) on a second-stage table. */
function ssBench(options: ConstructorParameters<typeof Bench>[0] = {}) {
  const b = new Bench(options);
  b.enable();
  b.context(SID);
  const ss = b.alloc();
  b.pasidEntry(SID, 0, { present: true, pgtt: PGTT_SECOND_STAGE, aw: 2, ssptptr: BigInt(ss), did: 5 });
  return { b, ss };
}

describe('register protocol', () => {
  it('RTADDR takes effect only at SRTP; GSTS reports RTPS and TES', () => {
    const b = new Bench();
    b.hw.mmio.write64(RTADDR_REG, BigInt(b.root) | (1n << 10n));
    expect(b.hw.mmio.read32(GSTS_REG) & GSTS_RTPS).toBe(0);
    b.enable();
    expect((b.hw.mmio.read32(GSTS_REG) & (GSTS_RTPS | GSTS_TES)) >>> 0).toBe((GSTS_RTPS | GSTS_TES) >>> 0);
    expect(b.hw.mmio.read64(0x08)).toBe(DEFAULT_CAP);
    expect(b.hw.mmio.read64(0x10)).toBe(DEFAULT_ECAP);
    expect(b.hw.mmio.read32(0)).toBe(0x30);
  });
  it('with translation disabled, DMA goes straight to memory', () => {
    const b = new Bench();
    const page = b.alloc();
    b.memory.write(BigInt(page), bytes(9, 8, 7));
    const r = b.read(SID, BigInt(page), 3);
    expect(r).toEqual({ ok: true, data: bytes(9, 8, 7) });
  });
});

describe('second-stage translation (PGTT 010b)', () => {
  it('reads and writes through a mapped page', () => {
    const { b, ss } = ssBench();
    const page = b.alloc();
    b.ssMap(ss, 0x1000_0000, page, true, true);
    expect(b.write(SID, 0x1000_0010n, bytes(1, 2, 3)).ok).toBe(true);
    expect(b.memory.read(BigInt(page + 0x10), 3)).toEqual(bytes(1, 2, 3));
    expect(b.read(SID, 0x1000_0010n, 3)).toEqual({ ok: true, data: bytes(1, 2, 3) });
  });
  it('an unmapped IOVA faults 0x79, recorded in FRCD[0] with FSTS.PPF and a fault event', () => {
    const { b } = ssBench();
    b.hw.mmio.write32(FECTL_REG, 0); // unmask
    const r = b.read(SID, 0x2000_0123n, 4);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.fault).toMatchObject({ code: 0x79, class: 'translation', name: 'SM: Read/Write permission error in second-level paging entry' });
    expect(b.hw.mmio.read32(FSTS_REG) & FSTS_PPF).toBe(FSTS_PPF);
    expect(frcd(b, 0)).toMatchObject({ f: true, fr: 0x79, sid: SID, fi: 0x2000_0000n, t1: true, pp: false });
    expect(b.interrupts).toEqual(['fault']);
    // Clearing F (RW1C at +12) clears PPF.
    b.hw.mmio.write32(0x220 + 12, 0x80000000);
    expect(b.hw.mmio.read32(FSTS_REG) & FSTS_PPF).toBe(0);
  });
  it('a read-only leaf refuses writes with 0x85; beyond AW is 0x84', () => {
    const { b, ss } = ssBench();
    b.ssMap(ss, 0x3000, b.alloc(), true, false);
    const w = b.write(SID, 0x3000n, bytes(1));
    expect(!w.ok && w.fault.code).toBe(0x85);
    const far = b.read(SID, 1n << 48n, 1);
    expect(!far.ok && far.fault.code).toBe(0x84);
  });
  it('the qemu profile reports the legacy codes 0x06/0x05/0x04', () => {
    const { b, ss } = ssBench({ profile: 'qemu' });
    b.ssMap(ss, 0x3000, b.alloc(), true, false);
    const r = b.read(SID, 0x9000n, 1);
    const w = b.write(SID, 0x3000n, bytes(1));
    expect(!r.ok && [r.fault.code, r.fault.name]).toEqual([0x06, 'PTE Read access is not set']);
    expect(!w.ok && w.fault.code).toBe(0x05);
    expect(!r.ok && r.fault.class).toBe('translation');
  });
  it('second-stage A/D: A on every level, D on the leaf for a write (SSADE)', () => {
    const b = new Bench();
    b.enable();
    b.context(SID);
    const ss = b.alloc();
    b.pasidEntry(SID, 0, { present: true, pgtt: PGTT_SECOND_STAGE, aw: 2, ssptptr: BigInt(ss), did: 5, ssade: true });
    const leaf = b.ssMap(ss, 0x5000, b.alloc(), true, true);
    b.read(SID, 0x5000n, 1);
    expect(b.r64(leaf) & 0x300n).toBe(0x100n);
    expect(b.r64(ss) & 0x100n).toBe(0x100n);
    b.write(SID, 0x5000n, bytes(1));
    expect(b.r64(leaf) & 0x300n).toBe(0x300n);
  });
});

describe('caches stay stale until invalidated', () => {
  it('IOTLB: a remapped leaf is not seen until an IOTLB PSI for the DID', () => {
    const { b, ss } = ssBench();
    b.enableQi();
    const p1 = b.alloc();
    const p2 = b.alloc();
    b.memory.write(BigInt(p1), bytes(1));
    b.memory.write(BigInt(p2), bytes(2));
    const leaf = b.ssMap(ss, 0x7000, p1, true, true);
    expect(b.read(SID, 0x7000n, 1)).toEqual({ ok: true, data: bytes(1) });
    b.w64(leaf, encodeSsLeaf(BigInt(p2), { read: true, write: true }));
    expect(b.read(SID, 0x7000n, 1)).toEqual({ ok: true, data: bytes(1) }); // stale
    b.submit(iotlbDescriptor({ granularity: 3, did: 6, addr: 0x7000n, am: 0 })); // other DID: no effect
    expect(b.read(SID, 0x7000n, 1)).toEqual({ ok: true, data: bytes(1) });
    b.submit(piotlbDescriptor({ granularity: 2, did: 5, pasid: 0 })); // P_IOTLB leaves SS-only entries alone
    expect(b.read(SID, 0x7000n, 1)).toEqual({ ok: true, data: bytes(1) });
    b.submit(iotlbDescriptor({ granularity: 3, did: 5, addr: 0x7000n, am: 0 }));
    expect(b.read(SID, 0x7000n, 1)).toEqual({ ok: true, data: bytes(2) });
  });
  it('PASID cache: a cleared PASID entry keeps translating until a PASID-selective PC invalidation', () => {
    const { b, ss } = ssBench();
    b.enableQi();
    b.ssMap(ss, 0x7000, b.alloc(), true, true);
    expect(b.read(SID, 0x7000n, 1).ok).toBe(true);
    const pe = b.pasidEntry(SID, 0, { present: false, pgtt: 0, did: 0 });
    expect(b.r64(pe)).toBe(0n);
    expect(b.read(SID, 0x7000n, 1).ok).toBe(true); // stale PASID cache + IOTLB
    b.submit(pasidCacheDescriptor({ granularity: 1, did: 5, pasid: 0 }), iotlbDescriptor({ granularity: 2, did: 5 }));
    const r = b.read(SID, 0x7000n, 1);
    expect(!r.ok && r.fault.code).toBe(0x59);
  });
  it('context cache: a cleared context entry is used until a device-selective CC invalidation', () => {
    const { b, ss } = ssBench();
    b.enableQi();
    b.ssMap(ss, 0x7000, b.alloc(), true, true);
    expect(b.read(SID, 0x7000n, 1).ok).toBe(true);
    b.context(SID, { present: false });
    b.submit(iotlbDescriptor({ granularity: 1 }));
    expect(b.read(SID, 0x7000n, 1).ok).toBe(true); // context + PASID caches still hold it
    b.submit(ccDescriptor({ granularity: 3, sid: SID + 1, fm: 0 })); // another function
    expect(b.read(SID, 0x7000n, 1).ok).toBe(true);
    b.submit(ccDescriptor({ granularity: 3, sid: SID + 1, fm: 3 })); // FM=3 masks function bits 2:0
    const r = b.read(SID, 0x7000n, 1);
    expect(!r.ok && [r.fault.code, r.fault.class]).toEqual([0x41, 'blocked']);
  });
  it('paging-structure cache: a freed last-level table is still walked after a PSI with IH=1, not after IH=0', () => {
    const { b, ss } = ssBench();
    b.enableQi();
    const p1 = b.alloc();
    b.ssMap(ss, 0x20_0000, p1, true, true);
    b.ssMap(ss, 0x20_1000, b.alloc(), true, true);
    expect(b.read(SID, 0x20_0000n, 1).ok).toBe(true);
    // Unhook the whole 2 MiB region's table at level 2.
    const l4 = Number(b.r64(ss) & ~0xfffn);
    const l3 = Number(b.r64(l4) & ~0xfffn);
    b.w64(l3 + 1 * 8, 0n);
    b.submit(iotlbDescriptor({ granularity: 3, did: 5, addr: 0x20_0000n, am: 9, ih: true }));
    expect(b.read(SID, 0x20_1000n, 1).ok).toBe(true); // PDE cache still points at the table
    b.submit(iotlbDescriptor({ granularity: 3, did: 5, addr: 0x20_0000n, am: 9 }));
    const r = b.read(SID, 0x20_1000n, 1);
    expect(!r.ok && r.fault.code).toBe(0x79);
  });
});

describe('first-stage, nested and pass-through', () => {
  it('first stage with PASID: user pages, canonical check, A/D written, U/S=0 refused for user requests', () => {
    const b = new Bench();
    b.enable();
    b.context(SID);
    const fs = b.alloc();
    b.pasidEntry(SID, 7, { present: true, pgtt: PGTT_FIRST_STAGE, did: 1, fsptptr: BigInt(fs), sre: true });
    const page = b.alloc();
    b.memory.write(BigInt(page), bytes(0x5a));
    const leaf = b.fsMap(fs, 0x4000_0000, page, false);
    expect(b.read(SID, 0x4000_0000n, 1, { pasid: 7 })).toEqual({ ok: true, data: bytes(0x5a) });
    expect(b.r64(leaf) & 0x60n).toBe(0x20n); // A set, D clear
    const w = b.write(SID, 0x4000_0000n, bytes(1), { pasid: 7 });
    expect(!w.ok && w.fault.code).toBe(0x85);
    const sup = b.write(SID, 0x4000_0000n, bytes(1), { pasid: 7, priv: true }); // supervisor, WPE=0: R/W ignored
    expect(sup.ok).toBe(true);
    expect(b.r64(leaf) & 0x40n).toBe(0x40n);
    const nc = b.read(SID, 0x8000_0000_0000n, 1, { pasid: 7 });
    expect(!nc.ok && nc.fault.code).toBe(0x80);
    b.fsMap(fs, 0x5000_0000, b.alloc(), true, { user: false });
    const us = b.read(SID, 0x5000_0000n, 1, { pasid: 7 });
    expect(!us.ok && us.fault.code).toBe(0x81);
    const np = b.read(SID, 0x6000_0000n, 1, { pasid: 7 });
    expect(!np.ok && [np.fault.code, np.fault.class]).toEqual([0x71, 'translation']);
    const x = b.fsMap(fs, 0x7000_0000, b.alloc(), true, { xd: true });
    expect(x).toBeGreaterThan(0);
    const ex = b.read(SID, 0x7000_0000n, 1, { pasid: 7, exec: true });
    expect(!ex.ok && ex.fault.code).toBe(0x82);
  });
  it('a supervisor request needs SRE (0x5D); a PASID without PASIDE is 0x45; beyond PDTS is 0x46', () => {
    const b = new Bench();
    b.enable();
    b.context(SID);
    b.pasidEntry(SID, 3, { present: true, pgtt: PGTT_FIRST_STAGE, did: 1, fsptptr: BigInt(b.alloc()) });
    const r = b.read(SID, 0n, 1, { pasid: 3, priv: true });
    expect(!r.ok && r.fault.code).toBe(0x5d);
    const big = b.read(SID, 0n, 1, { pasid: 1 << 15 });
    expect(!big.ok && big.fault.code).toBe(0x46);
    b.context(SID + 8, { paside: false });
    const np = b.read(SID + 8, 0n, 1, { pasid: 3 });
    expect(!np.ok && np.fault.code).toBe(0x45);
  });
  it('nested: the first-stage tables and output are guest-physical, translated by the second stage', () => {
    const b = new Bench();
    b.enable();
    b.context(SID);
    const ss = b.alloc();
    // Guest memory: GPA 0x10_0000.. maps to host pages allocated on demand.
    const gpaOf = new Map<number, number>();
    let nextGpa = 0x10_0000;
    const guestAlloc = () => {
      const hpa = b.alloc();
      const gpa = nextGpa;
      nextGpa += 0x1000;
      b.ssMap(ss, gpa, hpa, true, true);
      gpaOf.set(gpa, hpa);
      return gpa;
    };
    const gRoot = guestAlloc();
    // Build the guest FS table in guest-physical terms: write host pages behind each GPA.
    const hostOf = (gpa: number) => gpaOf.get(gpa)!;
    const dataGpa = guestAlloc();
    b.memory.write(BigInt(hostOf(dataGpa) + 8), bytes(0x77));
    // fsMap writes at physical addresses; translate each table GPA to its host page.
    const levels = [gRoot];
    for (let i = 0; i < 3; i++) levels.push(guestAlloc());
    for (let lvl = 0; lvl < 3; lvl++) b.w64(hostOf(levels[lvl]!) + 0, BigInt(levels[lvl + 1]!) | 0x27n);
    b.w64(hostOf(levels[3]!) + 0, BigInt(dataGpa) | 0x67n); // IOVA 0 → dataGpa, writable
    b.pasidEntry(SID, 9, { present: true, pgtt: PGTT_NESTED, did: 8, aw: 2, ssptptr: BigInt(ss), fsptptr: BigInt(gRoot) });
    expect(b.read(SID, 8n, 1, { pasid: 9 })).toEqual({ ok: true, data: bytes(0x77) });
    // A second-stage read-permission hole under a first-stage table → 0x76.
    const b2 = b.read(SID, 0x1000n, 1, { pasid: 9 });
    expect(!b2.ok && b2.fault.code).toBe(0x71);
    b.ssMap(ss, levels[3]!, hostOf(levels[3]!), false, false);
    // (no invalidation: a fresh IOVA misses the IOTLB; nested walks use no paging-structure cache)
    const miss = b.read(SID, 0x2000n, 1, { pasid: 9 });
    expect(!miss.ok && miss.fault.code).toBe(0x76);
  });
  it('pass-through (PGTT 100b): output = input; beyond HAW is 0x83; output in the MSI window is 0x87', () => {
    const b = new Bench();
    b.enable();
    b.context(SID);
    b.pasidEntry(SID, 0, { present: true, pgtt: PGTT_PASS_THROUGH, did: 1 });
    const page = b.alloc();
    b.memory.write(BigInt(page), bytes(4));
    expect(b.read(SID, BigInt(page), 1)).toEqual({ ok: true, data: bytes(4) });
    const far = b.read(SID, 1n << 48n, 1);
    expect(!far.ok && far.fault.code).toBe(0x83);
    const msi = b.read(SID, 0xfee0_0000n, 4);
    expect(!msi.ok && msi.fault.code).toBe(0x87);
    expect(b.write(SID, 0xfee0_0000n, bytes(1, 0, 0, 0)).ok).toBe(true); // interrupt message
    expect(b.hw.stats.interruptMessages).toBe(1);
  });
  it('an invalid PGTT is 0x5B; a PGTT the unit lacks (NEST=0) too', () => {
    const b = new Bench({ ecap: setField(DEFAULT_ECAP, ECAP.NEST, 0) });
    b.enable();
    b.context(SID);
    b.pasidEntry(SID, 0, { present: true, pgtt: 5, did: 1 });
    b.pasidEntry(SID, 1, { present: true, pgtt: PGTT_NESTED, did: 1, aw: 2 });
    const r0 = b.read(SID, 0n, 1);
    const r1 = b.read(SID, 0n, 1, { pasid: 1 });
    expect(!r0.ok && r0.fault.code).toBe(0x5b);
    expect(!r1.ok && r1.fault.code).toBe(0x5b);
  });
});

describe('legacy mode', () => {
  it('walks 16-byte root/context entries and reports legacy codes; a PASID request is 0x31', () => {
    const b = new Bench();
    const ctp = b.alloc();
    const ss = b.alloc();
    const [rlo, rhi] = encodeLegacyRootEntry({ present: true, ctp: BigInt(ctp) });
    b.w64(b.root + 3 * 16, rlo);
    b.w64(b.root + 3 * 16 + 8, rhi);
    const [clo, chi] = encodeLegacyContextEntry({ present: true, tt: 0, ssptptr: BigInt(ss), aw: 2, did: 4 });
    b.w64(ctp + 0x10 * 16, clo);
    b.w64(ctp + 0x10 * 16 + 8, chi);
    b.enable(false);
    const page = b.alloc();
    b.memory.write(BigInt(page), bytes(3));
    b.ssMap(ss, 0x9000, page, true, false);
    expect(b.read(SID, 0x9000n, 1)).toEqual({ ok: true, data: bytes(3) });
    const w = b.write(SID, 0x9000n, bytes(1));
    expect(!w.ok && w.fault.code).toBe(0x05);
    const p = b.read(SID, 0x9000n, 1, { pasid: 1 });
    expect(!p.ok && p.fault.code).toBe(0x31);
    const nr = b.read(0x0410, 0n, 1);
    expect(!nr.ok && [nr.fault.code, nr.fault.name]).toEqual([0x01, 'Present bit in root entry is clear']);
  });
});

describe('fault processing', () => {
  it('FPD on the PASID entry suppresses recording; memory errors are never suppressed', () => {
    const b = new Bench();
    b.enable();
    b.context(SID);
    b.pasidEntry(SID, 0, { present: false, fpd: true, pgtt: 0, did: 0 });
    const r = b.read(SID, 0n, 1);
    expect(!r.ok && r.fault.record).toMatchObject({ recorded: false, suppressed: true });
    expect(b.hw.mmio.read32(FSTS_REG) & FSTS_PPF).toBe(0);
    // A root table beyond memory: error accessing the root entry, recorded regardless.
    b.hw.mmio.write64(RTADDR_REG, (1n << 40n) | (1n << 10n));
    b.command(0x40000000);
    b.hw.mmio.write64(CCMD_REG, (1n << 63n) | (1n << 61n)); // global context-cache invalidation
    const e = b.read(SID, 0n, 1);
    expect(!e.ok && [e.fault.code, e.fault.class, e.fault.record.recorded]).toEqual([0x38, 'external-abort', true]);
  });
  it('all records busy → FSTS.PFO and the fault is dropped', () => {
    const b = new Bench({ cap: setField(DEFAULT_CAP, CAP.NFR, 1) }); // two FRCDs
    b.enable();
    for (let i = 0; i < 3; i++) b.read(0x0100 + i, 0n, 1); // root entries absent
    expect(b.hw.mmio.read32(FSTS_REG) & (FSTS_PFO | FSTS_PPF)).toBe(FSTS_PFO | FSTS_PPF);
    expect(frcd(b, 0).sid).toBe(0x0100);
    expect(frcd(b, 1).sid).toBe(0x0101);
  });
});

describe('queued invalidation', () => {
  it('a wait descriptor writes its status data; IF sets ICS.IWC', () => {
    const b = new Bench();
    b.enableQi();
    const status = b.alloc();
    b.submit(waitDescriptor({ statusWrite: true, statusData: 2, statusAddr: BigInt(status + 4), interrupt: true }));
    expect(b.memory.read32(BigInt(status + 4))).toBe(2);
    expect(b.hw.mmio.read32(ICS_REG)).toBe(1);
    expect(b.hw.mmio.read64(IQH_REG)).toBe(32n);
  });
  it('a reserved bit stops the queue with FSTS.IQE, IQH at the bad descriptor, until IQE is cleared', () => {
    const b = new Bench();
    b.enableQi();
    const status = b.alloc();
    b.submit([iotlbDescriptor({ granularity: 1 })[0] | (1n << 8n), 0n], waitDescriptor({ statusWrite: true, statusData: 2, statusAddr: BigInt(status) }));
    expect(b.hw.mmio.read32(FSTS_REG) & FSTS_IQE).toBe(FSTS_IQE);
    expect(b.hw.mmio.read64(IQH_REG)).toBe(0n);
    expect(Number(b.hw.mmio.read64(IQER_REG) & 0xfn)).not.toBe(0);
    expect(b.memory.read32(BigInt(status))).toBe(0);
    // Software replaces the bad descriptor and clears IQE: processing resumes.
    b.w64(Number(b.hw.mmio.read64(0x90) & ~0xfffn), iotlbDescriptor({ granularity: 1 })[0]);
    b.hw.mmio.write32(FSTS_REG, FSTS_IQE);
    expect(b.memory.read32(BigInt(status))).toBe(2);
  });
  it('invalid granularities are errors: P_IOTLB G<2, PASID cache G=2, IOTLB PSI beyond MAMV', () => {
    for (const d of [
      piotlbDescriptor({ granularity: 1, did: 1, pasid: 1 }),
      pasidCacheDescriptor({ granularity: 2 }),
      iotlbDescriptor({ granularity: 3, did: 1, am: 19 }),
    ]) {
      const b = new Bench();
      b.enableQi();
      b.submit(d);
      expect(b.hw.mmio.read32(FSTS_REG) & FSTS_IQE).toBe(FSTS_IQE);
    }
  });
  it('register-based context invalidation reports CAIG and clears ICC', () => {
    const b = new Bench();
    b.hw.mmio.write64(CCMD_REG, (1n << 63n) | (1n << 61n));
    const v = b.hw.mmio.read64(CCMD_REG);
    expect(v >> 63n).toBe(0n);
    expect((v >> 59n) & 3n).toBe(1n);
  });
});

describe('page requests', () => {
  it('with PRE, a not-present first-stage page becomes a page request answered by a page group response', () => {
    const b = new Bench();
    b.enable();
    b.enableQi();
    b.context(SID, { pre: true });
    b.pasidEntry(SID, 4, { present: true, pgtt: PGTT_FIRST_STAGE, did: 1, fsptptr: BigInt(b.alloc()) });
    const prq = b.alloc();
    b.hw.mmio.write64(PQA_REG, BigInt(prq)); // PQS 0: one page, 128 descriptors
    b.hw.mmio.write32(PECTL_REG, 0);
    const r = b.write(SID, 0x1234_5678n, bytes(1), { pasid: 4 });
    expect(!r.ok && r.fault.class).toBe('page-request');
    expect(b.hw.mmio.read64(PQT_REG)).toBe(32n);
    expect(b.hw.mmio.read32(PRS_REG) & 1).toBe(1);
    expect(b.interrupts).toEqual(['page-request']);
    const d = decodePageRequest([0, 1, 2, 3].map((i) => b.memory.read32(BigInt(prq + i * 4))));
    expect(d).toMatchObject({ type: 1, pasidPresent: true, rid: SID, pasid: 4, wrReq: true, rdReq: false, lpig: true, prgIndex: 0, addr: 0x1234_5000n });
    expect(b.hw.mmio.read32(FSTS_REG) & FSTS_PPF).toBe(0); // not a primary fault
    b.hw.mmio.write64(PQH_REG, 32n);
    b.submit(pageGroupResponseDescriptor({ rid: SID, pasid: 4, code: 0, prgi: 0, lpig: true }));
    expect(b.hw.pageRequests()[0]).toMatchObject({ status: 'responded', responseCode: 0 });
  });
});

describe('forwarded descriptors', () => {
  it('device-TLB, interrupt-entry-cache and PASID device-TLB descriptors are accepted and counted', async () => {
    const { devTlbDescriptor, iecDescriptor, pasidDevTlbDescriptor } = await import('../spec/invalidation.js');
    const b = new Bench();
    b.enableQi();
    b.submit(devTlbDescriptor({ sid: SID, addr: 0n, size: false }), iecDescriptor({ indexSelective: false }), pasidDevTlbDescriptor({ sid: SID, pasid: 1, addr: 0n, size: false }));
    expect(b.hw.mmio.read32(FSTS_REG) & FSTS_IQE).toBe(0);
    expect(b.hw.stats.forwardedDescriptors).toBe(3);
  });
});
