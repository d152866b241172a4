import { describe, expect, it } from 'vitest';
import { harness, EVTQ, STRTAB } from '../test/hw-harness.js';
import {
  CMD_CFGI_CD,
  CMD_CFGI_STE,
  CMD_PRI_RESP,
  CMD_RESUME,
  CMD_SYNC,
  CMD_TLBI_NH_ASID,
  CMD_TLBI_NH_VA,
  CMD_TLBI_S2_IPA,
  CMD_TLBI_S12_VMALL,
  PRI_RESP_SUCC,
} from '../spec/commands.js';
import {
  C_BAD_CD,
  C_BAD_STE,
  C_BAD_STREAMID,
  C_BAD_SUBSTREAMID,
  EVT_CLASS_IN,
  EVT_CLASS_TT,
  F_ACCESS,
  F_ADDR_SIZE,
  F_CD_FETCH,
  F_PERMISSION,
  F_STE_FETCH,
  F_STREAM_DISABLED,
  F_TRANSLATION,
  F_WALK_EABT,
} from '../spec/events.js';
import { encodeL1Cd } from '../spec/cd.js';
import { encodeL1Std } from '../spec/strtab.js';
import { encodeS1Leaf, encodeS2Leaf } from '../spec/pgtable.js';
import {
  CERROR_ILL,
  CR0_CMDQEN,
  CR0_SMMUEN,
  GBPA_ABORT,
  GBPA_UPDATE,
  GERROR_CMDQ_ERR,
  SMMU_CMDQ_CONS,
  SMMU_CR0,
  SMMU_CR0ACK,
  SMMU_GBPA,
  SMMU_GERROR,
  SMMU_GERRORN,
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_IDR5,
  SMMU_PRIQ_PROD,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
} from '../spec/registers.js';
import { STE_S1DSS_BYPASS, STE_S1DSS_SSID0, STE_S1DSS_TERMINATE } from '../spec/ste.js';
import { PRG_RESPONSE_FAILURE, PRG_RESPONSE_SUCCESS } from '../spec/priq.js';
import { SmmuV3Hardware } from './smmu-v3.js';
import { PhysicalMemory } from '@ioasid/core';

const PA = 0x40000000;
const VA = 0x12345000;

/** A stage-1 STE → CD → 4-level 4K table with one RW user page VA → PA (ASID 5). */
function s1Setup(extra: { cd?: object; ste?: object; leaf?: Parameters<typeof encodeS1Leaf>[0] } = {}) {
  const h = harness();
  const cd = h.alloc(64);
  const root = h.alloc(4096);
  h.writeCd(cd, { V: 1, AA64: 1, T0SZ: 16, TG0: 0, IPS: 5, EPD1: 1, R: 1, A: 1, ASID: 5, TTB0: root, ...extra.cd });
  h.writeSte(1, { V: 1, Config: 5, S1ContextPtr: cd, ...extra.ste });
  const slot = h.map(root, VA, encodeS1Leaf(extra.leaf ?? { pa: PA, page: true, af: true, ng: true, ap: 0b01 }));
  h.memory.write(BigInt(PA), Uint8Array.of(0xde, 0xad, 0xbe, 0xef));
  return { h, cd, root, slot };
}

describe('registers', () => {
  it('IDRs advertise the default features (IHI0070 §6.3.1-6)', () => {
    const h = harness();
    const idr0 = h.hw.mmio.read32(SMMU_IDR0);
    // S2P | S1P | TTF=AArch64 | COHACC | HTTU=2 | ATS | ASID16 | PRI | VMID16 | CD2L | TTENDIAN=LE | ST_LEVEL=1
    expect(idr0).toBe(1 | 2 | (2 << 2) | (1 << 4) | (2 << 6) | (1 << 10) | (1 << 12) | (1 << 16) | (1 << 18) | (1 << 19) | (2 << 21) | (1 << 27));
    expect((h.hw.mmio.read32(SMMU_IDR1) >>> 6) & 0x1f).toBe(20);
    expect(h.hw.mmio.read32(SMMU_IDR5) & 0x7f).toBe(5 | (1 << 4) | (1 << 5) | (1 << 6));
  });

  it('CR0ACK mirrors CR0 and RES0 bits are dropped', () => {
    const h = harness();
    h.hw.mmio.write32(SMMU_CR0, 0xffffffff);
    expect(h.hw.mmio.read32(SMMU_CR0ACK)).toBe(0x5df);
  });

  it('GBPA changes only through the Update protocol, and STRTAB_BASE is read-only while SMMUEN', () => {
    const h = harness();
    h.hw.mmio.write32(SMMU_GBPA, GBPA_ABORT);
    expect(h.hw.mmio.read32(SMMU_GBPA)).toBe(0);
    h.hw.mmio.write32(SMMU_GBPA, GBPA_ABORT | GBPA_UPDATE);
    expect(h.hw.mmio.read32(SMMU_GBPA)).toBe(GBPA_ABORT);
    h.hw.mmio.write64(SMMU_STRTAB_BASE, 0x5000n);
    expect(h.hw.mmio.read64(SMMU_STRTAB_BASE)).toBe(BigInt(STRTAB));
  });

  it('SMMUEN=0 bypasses with GBPA, or aborts without an event when GBPA.ABORT', () => {
    const memory = new PhysicalMemory({ size: 1n << 32n });
    memory.write(0x3000n, Uint8Array.of(7));
    const hw = new SmmuV3Hardware({ memory });
    expect(hw.dma({ streamId: 0, iova: 0x3000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(7) });
    hw.mmio.write32(SMMU_GBPA, GBPA_ABORT | GBPA_UPDATE);
    const r = hw.dma({ streamId: 0, iova: 0x3000n, size: 1, write: false });
    expect(r.ok ? undefined : r.fault.class).toBe('blocked');
  });
});

describe('stream table', () => {
  it('bypass STE passes through; abort STE aborts with no event; V=0 is C_BAD_STE', () => {
    const h = harness();
    h.memory.write(0x5000n, Uint8Array.of(9, 8));
    h.writeSte(3, { V: 1, Config: 4 });
    expect(h.hw.dma({ streamId: 3, iova: 0x5000n, size: 2, write: false })).toEqual({ ok: true, data: Uint8Array.of(9, 8) });
    h.writeSte(4, { V: 1, Config: 0 });
    const a = h.hw.dma({ streamId: 4, iova: 0x5000n, size: 2, write: false });
    expect(a.ok).toBe(false);
    expect(h.events()).toEqual([]);
    const b = h.hw.dma({ streamId: 5, iova: 0x5000n, size: 2, write: false });
    expect(b.ok ? 0 : b.fault.code).toBe(C_BAD_STE);
    const [ev] = h.events();
    expect(ev).toMatchObject({ EventID: C_BAD_STE, StreamID: 5, RnW: 1, InputAddr: 0x5000n });
  });

  it('a StreamID beyond LOG2SIZE is C_BAD_STREAMID; a stream table outside memory is F_STE_FETCH', () => {
    const h = harness();
    const r = h.hw.dma({ streamId: 256, iova: 0n, size: 4, write: false });
    expect(r.ok ? 0 : r.fault.code).toBe(C_BAD_STREAMID);
    expect(h.events()[0]?.EventID).toBe(C_BAD_STREAMID);
    const small = harness({}, 1n << 24n); // the stream table is set at 0x100000, memory is 16 MiB: fine
    small.writeSte(0, { V: 1, Config: 4 });
    expect(small.hw.dma({ streamId: 0, iova: 0n, size: 4, write: false }).ok).toBe(true);
    const far = harness();
    far.hw.mmio.write32(SMMU_CR0, CR0_CMDQEN | 4);
    far.hw.mmio.write64(SMMU_STRTAB_BASE, 1n << 40n);
    far.hw.mmio.write32(SMMU_CR0, CR0_CMDQEN | 4 | CR0_SMMUEN);
    const f = far.hw.dma({ streamId: 0, iova: 0n, size: 4, write: false });
    expect(f.ok ? 0 : f.fault.code).toBe(F_STE_FETCH);
    expect(far.events()[0]).toMatchObject({ EventID: F_STE_FETCH, Addr: 2 ** 40 });
  });

  it('2-level stream table: L1STD Span bounds the level-2 array (§3.3.2)', () => {
    const h = harness();
    h.hw.mmio.write32(SMMU_CR0, 0xe);
    const l1 = h.alloc(4096);
    const l2 = h.alloc(4096);
    h.hw.mmio.write64(SMMU_STRTAB_BASE, BigInt(l1));
    h.hw.mmio.write32(SMMU_STRTAB_BASE_CFG, (1 << 16) | (8 << 6) | 16); // FMT 2-level, SPLIT 8, LOG2SIZE 16
    h.hw.mmio.write32(SMMU_CR0, 0xf);
    // SID 0x0102: L1 index 1, L2 index 2. Span 3 ⇒ 2^(3-1) = 4 STEs.
    h.writeWords(l1 + 8, encodeL1Std({ span: 3, l2Ptr: l2 }));
    h.writeWords(l2 + 2 * 64, new Uint32Array([0x9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])); // V | Config=bypass
    expect(h.hw.dma({ streamId: 0x102, iova: 0x1000n, size: 1, write: false }).ok).toBe(true);
    const r = h.hw.dma({ streamId: 0x104, iova: 0x1000n, size: 1, write: false }); // L2 index 4 ≥ 4
    expect(r.ok ? 0 : r.fault.code).toBe(C_BAD_STREAMID);
  });
});

describe('stage 1', () => {
  it('translates through STE → CD → 4-level 4K table', () => {
    const { h } = s1Setup();
    expect(h.hw.dma({ streamId: 1, iova: BigInt(VA + 1), size: 3, write: false })).toEqual({ ok: true, data: Uint8Array.of(0xad, 0xbe, 0xef) });
    h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: true, data: Uint8Array.of(0x11) });
    expect(h.memory.read(BigInt(PA), 1)).toEqual(Uint8Array.of(0x11));
  });

  it('F_TRANSLATION for an unmapped page, recorded with SSV/StreamID/InputAddr; R=0 suppresses it', () => {
    const { h } = s1Setup();
    const r = h.hw.dma({ streamId: 1, iova: 0x9000n, size: 4, write: true, data: new Uint8Array(4) });
    expect(r.ok ? 0 : r.fault.class).toBe('translation');
    expect(h.events()).toMatchObject([{ EventID: F_TRANSLATION, StreamID: 1, RnW: 0, S2: 0, CLASS: EVT_CLASS_IN, InputAddr: 0x9000n }]);
    const q = s1Setup({ cd: { R: 0 } });
    expect(q.h.hw.dma({ streamId: 1, iova: 0x9000n, size: 4, write: false }).ok).toBe(false);
    expect(q.h.events()).toEqual([]);
  });

  it('A=0 terminates RAZ/WI: reads return zero, writes are ignored', () => {
    const { h } = s1Setup({ cd: { A: 0 } });
    expect(h.hw.dma({ streamId: 1, iova: 0x9000n, size: 2, write: false })).toEqual({ ok: true, data: new Uint8Array(2) });
    expect(h.events()[0]?.EventID).toBe(F_TRANSLATION);
  });

  it('F_PERMISSION: AP[2]=1 is read-only; AP[1]=0 refuses unprivileged access', () => {
    const ro = s1Setup({ leaf: { pa: PA, page: true, af: true, ng: true, ap: 0b11 } });
    expect(ro.h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false }).ok).toBe(true);
    const w = ro.h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: true, data: Uint8Array.of(1) });
    expect(w.ok ? '' : w.fault.class).toBe('permission');
    expect(ro.h.events()[0]?.EventID).toBe(F_PERMISSION);
    const privOnly = s1Setup({ leaf: { pa: PA, page: true, af: true, ng: true, ap: 0b00 } });
    expect(privOnly.h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false }).ok).toBe(false);
    expect(privOnly.h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false, priv: true }).ok).toBe(true);
  });

  it('AF=0 is F_ACCESS; AFFD suppresses it; HA sets AF in memory', () => {
    const leaf = { pa: PA, page: true, af: false, ng: true, ap: 0b01 };
    const a = s1Setup({ leaf });
    expect(a.h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false }).ok).toBe(false);
    expect(a.h.events()[0]?.EventID).toBe(F_ACCESS);
    const b = s1Setup({ leaf, cd: { AFFD: 1 } });
    expect(b.h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false }).ok).toBe(true);
    const c = s1Setup({ leaf, cd: { HA: 1 } });
    expect(c.h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false }).ok).toBe(true);
    expect(c.h.read64(c.slot) & (1n << 10n)).toBe(1n << 10n);
  });

  it('HD: a write to a DBM read-only page clears AP[2] in memory (dirty)', () => {
    const c = s1Setup({ leaf: { pa: PA, page: true, af: true, ng: true, ap: 0b11, dbm: true }, cd: { HA: 1, HD: 1 } });
    expect(c.h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false }).ok).toBe(true);
    expect(c.h.read64(c.slot) & (1n << 7n)).toBe(1n << 7n); // still clean after a read
    expect(c.h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: true, data: Uint8Array.of(5) }).ok).toBe(true);
    expect(c.h.read64(c.slot) & (1n << 7n)).toBe(0n);
  });

  it('F_ADDR_SIZE when the output is beyond CD.IPS', () => {
    const { h } = s1Setup({ cd: { IPS: 0 }, leaf: { pa: 2 ** 33, page: true, af: true, ng: true, ap: 0b01 } }); // IPS 0 = 32 bits
    const r = h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false });
    expect(r.ok ? '' : r.fault.class).toBe('address-size');
    expect(h.events()[0]?.EventID).toBe(F_ADDR_SIZE);
  });

  it('a VA beyond T0SZ is F_TRANSLATION; EPD0 faults everything', () => {
    const { h } = s1Setup();
    expect(h.hw.dma({ streamId: 1, iova: 1n << 48n, size: 1, write: false }).ok).toBe(false);
    expect(h.events()[0]?.EventID).toBe(F_TRANSLATION);
    const e = s1Setup({ cd: { EPD0: 1 } });
    expect(e.h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false }).ok).toBe(false);
  });

  it('2 MiB blocks at level 2, and 16K / 64K granules', () => {
    const b = harness();
    const cd = b.alloc(64);
    const root = b.alloc(4096);
    b.writeCd(cd, { V: 1, AA64: 1, T0SZ: 16, TG0: 0, IPS: 5, EPD1: 1, R: 1, A: 1, ASID: 1, TTB0: root });
    b.writeSte(1, { V: 1, Config: 5, S1ContextPtr: cd });
    b.map(root, 0x40000000, encodeS1Leaf({ pa: 0x80000000, page: false, af: true, ap: 0b01 }), 2);
    b.memory.write(BigInt(0x80000000 + 0x12345), Uint8Array.of(42));
    expect(b.hw.dma({ streamId: 1, iova: 0x40012345n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(42) });
    for (const [tg, g] of [[2, 14], [1, 16]] as const) {
      const h = harness();
      const cdg = h.alloc(64);
      const r = h.alloc(2 ** g);
      // 48-bit VA: 16K starts at level 0 (2-entry PGD), 64K at level 1.
      const start = g === 14 ? 0 : 1;
      h.writeCd(cdg, { V: 1, AA64: 1, T0SZ: 16, TG0: tg, IPS: 5, EPD1: 1, R: 1, A: 1, ASID: 1, TTB0: r });
      h.writeSte(1, { V: 1, Config: 5, S1ContextPtr: cdg });
      const va = 0x7654 * 2 ** g;
      h.map(r, va, encodeS1Leaf({ pa: 0x20 * 2 ** g, page: true, af: true, ap: 0b01 }), 3, g, start);
      h.memory.write(BigInt(0x20 * 2 ** g + 5), Uint8Array.of(g));
      expect(h.hw.dma({ streamId: 1, iova: BigInt(va + 5), size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(g) });
    }
  });

  it('a table outside memory is F_WALK_EABT with its fetch address', () => {
    const { h } = s1Setup({ cd: { TTB0: 2 ** 36 } });
    expect(h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false }).ok).toBe(false);
    expect(h.events()[0]).toMatchObject({ EventID: F_WALK_EABT, Addr: 2 ** 36 });
  });

  it('CD V=0 is C_BAD_CD; a CD outside memory is F_CD_FETCH', () => {
    const { h, cd } = s1Setup({ cd: { V: 0 } });
    expect(h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false }).ok).toBe(false);
    expect(h.events()[0]?.EventID).toBe(C_BAD_CD);
    expect(cd).toBeGreaterThan(0);
    const f = s1Setup({ ste: { S1ContextPtr: 2 ** 36 } });
    expect(f.h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false }).ok).toBe(false);
    expect(f.h.events()[0]).toMatchObject({ EventID: F_CD_FETCH, Addr: 2 ** 36 });
  });
});

describe('substreams (§5.2 S1CDMax/S1DSS, §3.3.3)', () => {
  function cdTable(s1dss: number) {
    const h = harness();
    const table = h.alloc(16 * 64);
    const root0 = h.alloc(4096);
    const root3 = h.alloc(4096);
    const base = { V: 1, AA64: 1, T0SZ: 16, IPS: 5, EPD1: 1, R: 1, A: 1 };
    h.writeCd(table, { ...base, ASID: 1, TTB0: root0 });
    h.writeCd(table + 3 * 64, { ...base, ASID: 2, TTB0: root3 });
    h.map(root0, VA, encodeS1Leaf({ pa: 0x50000000, page: true, af: true, ng: true, ap: 1 }));
    h.map(root3, VA, encodeS1Leaf({ pa: 0x60000000, page: true, af: true, ng: true, ap: 1 }));
    h.memory.write(0x50000000n, Uint8Array.of(0));
    h.memory.write(0x60000000n, Uint8Array.of(3));
    h.writeSte(1, { V: 1, Config: 5, S1ContextPtr: table, S1CDMax: 4, S1DSS: s1dss });
    return h;
  }
  const rd = (h: ReturnType<typeof harness>, ssid?: number) =>
    h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false, ...(ssid === undefined ? {} : { substreamId: ssid }) });

  it('SSID selects the CD; SSID ≥ 2^S1CDMax is C_BAD_SUBSTREAMID', () => {
    const h = cdTable(STE_S1DSS_SSID0);
    expect(rd(h, 3)).toEqual({ ok: true, data: Uint8Array.of(3) });
    expect(rd(h)).toEqual({ ok: true, data: Uint8Array.of(0) });
    const r = rd(h, 16);
    expect(r.ok ? 0 : r.fault.code).toBe(C_BAD_SUBSTREAMID);
  });

  it('S1DSS=SSID0 refuses SSID 0 with F_STREAM_DISABLED; TERMINATE refuses no-SSID traffic; BYPASS passes it', () => {
    const h = cdTable(STE_S1DSS_SSID0);
    const r = rd(h, 0);
    expect(r.ok ? 0 : r.fault.code).toBe(F_STREAM_DISABLED);
    const t = cdTable(STE_S1DSS_TERMINATE);
    const rt = rd(t);
    expect(rt.ok ? 0 : rt.fault.code).toBe(F_STREAM_DISABLED);
    expect(rd(t, 0)).toEqual({ ok: true, data: Uint8Array.of(0) });
    const b = cdTable(STE_S1DSS_BYPASS);
    b.memory.write(BigInt(VA), Uint8Array.of(0x77));
    expect(rd(b)).toEqual({ ok: true, data: Uint8Array.of(0x77) });
  });

  it('2-level CD table (S1Fmt 64K leaves): an L1CD with V=0 is C_BAD_SUBSTREAMID', () => {
    const h = harness();
    const l1 = h.alloc(8 * 1024);
    const leaf = h.alloc(65536);
    const root = h.alloc(4096);
    // SSID 0x803 → L1 index 2, leaf index 3.
    h.writeWords(l1 + 2 * 8, encodeL1Cd({ V: 1, L2Ptr: leaf }));
    h.writeCd(leaf + 3 * 64, { V: 1, AA64: 1, T0SZ: 16, IPS: 5, EPD1: 1, R: 1, A: 1, ASID: 9, TTB0: root });
    h.map(root, VA, encodeS1Leaf({ pa: 0x50000000, page: true, af: true, ng: true, ap: 1 }));
    h.writeSte(1, { V: 1, Config: 5, S1ContextPtr: l1, S1CDMax: 20, S1Fmt: 2, S1DSS: STE_S1DSS_SSID0 });
    expect(rd(h, 0x803).ok).toBe(true);
    const r = rd(h, 0xc03);
    expect(r.ok ? 0 : r.fault.code).toBe(C_BAD_SUBSTREAMID);
  });

  it('a SubstreamID on a stage-1-bypass STE is C_BAD_SUBSTREAMID', () => {
    const h = harness();
    h.writeSte(2, { V: 1, Config: 4 });
    const r = h.hw.dma({ streamId: 2, substreamId: 1, iova: 0n, size: 1, write: false });
    expect(r.ok ? 0 : r.fault.code).toBe(C_BAD_SUBSTREAMID);
  });
});

describe('caches stay stale until invalidated (§4.3, §4.4)', () => {
  it('TLB: a changed PTE is not seen until TLBI_NH_VA', () => {
    const { h, slot } = s1Setup();
    h.memory.write(0x70000000n, Uint8Array.of(0x70));
    expect(rd1(h)).toEqual(Uint8Array.of(0xde));
    h.writeWords(slot, encodeS1Leaf({ pa: 0x70000000, page: true, af: true, ng: true, ap: 1 }));
    expect(rd1(h)).toEqual(Uint8Array.of(0xde));
    h.cmd({ op: CMD_TLBI_NH_VA, vmid: 0, asid: 6, addr: VA, leaf: true }, { op: CMD_SYNC });
    expect(rd1(h)).toEqual(Uint8Array.of(0xde)); // another ASID: no effect
    h.cmd({ op: CMD_TLBI_NH_VA, vmid: 0, asid: 5, addr: VA, leaf: true }, { op: CMD_SYNC });
    expect(rd1(h)).toEqual(Uint8Array.of(0x70));
    h.writeWords(slot, new Uint32Array(2));
    expect(rd1(h)).toEqual(Uint8Array.of(0x70));
    h.cmd({ op: CMD_TLBI_NH_ASID, vmid: 0, asid: 5 }, { op: CMD_SYNC });
    expect(rd1(h)).toBeUndefined();
  });

  it('range TLBI (RIL): NUM/SCALE/TG cover (NUM+1)·2^SCALE pages', () => {
    const { h, slot } = s1Setup();
    expect(rd1(h)).toEqual(Uint8Array.of(0xde));
    h.writeWords(slot, new Uint32Array(2));
    // Range at VA-2 pages, 4 pages: NUM=3, SCALE=0, TG=1 (4K), TTL=3.
    h.cmd({ op: CMD_TLBI_NH_VA, asid: 5, addr: VA - 0x2000, num: 3, scale: 0, tg: 1, ttl: 3, leaf: true }, { op: CMD_SYNC });
    expect(rd1(h)).toBeUndefined();
  });

  it('CD cache: a changed CD is not seen until CFGI_CD; STE cache until CFGI_STE', () => {
    const { h, cd } = s1Setup();
    expect(rd1(h)).toEqual(Uint8Array.of(0xde));
    h.writeCd(cd, { V: 0 });
    h.cmd({ op: CMD_TLBI_NH_ASID, asid: 5 }, { op: CMD_SYNC });
    expect(rd1(h)).toEqual(Uint8Array.of(0xde));
    h.cmd({ op: CMD_CFGI_CD, sid: 1, ssid: 0, leaf: true }, { op: CMD_SYNC });
    expect(rd1(h)).toBeUndefined();
    expect(h.events().at(-1)?.EventID).toBe(C_BAD_CD);
    h.writeSte(1, { V: 1, Config: 4 });
    expect(rd1(h)).toBeUndefined();
    h.cmd({ op: CMD_CFGI_STE, sid: 1, leaf: true }, { op: CMD_SYNC });
    expect(rd1(h)).toEqual(Uint8Array.of(0));
  });
});

describe('flushCaches', () => {
  it('empties the STE, CD and TLB caches: stale entries are gone and the next DMA fetches and walks again', () => {
    const { h, cd, slot } = s1Setup();
    const fresh = { ste: 0, cd: 0, tlb: 0 };
    expect(h.hw.cacheSizes()).toEqual(fresh);
    expect(rd1(h)).toEqual(Uint8Array.of(0xde));
    expect(h.hw.cacheSizes()).toEqual({ ste: 1, cd: 1, tlb: 1 });
    // TLB: a rewritten PTE is stale until the flush.
    h.memory.write(0x70000000n, Uint8Array.of(0x70));
    h.writeWords(slot, encodeS1Leaf({ pa: 0x70000000, page: true, af: true, ng: true, ap: 1 }));
    expect(rd1(h)).toEqual(Uint8Array.of(0xde));
    h.hw.flushCaches();
    expect(h.hw.cacheSizes()).toEqual(fresh);
    expect(rd1(h)).toEqual(Uint8Array.of(0x70));
    // CD cache: an invalid CD is not seen until the flush.
    h.writeCd(cd, { V: 0 });
    expect(rd1(h)).toEqual(Uint8Array.of(0x70));
    h.hw.flushCaches();
    expect(rd1(h)).toBeUndefined();
    expect(h.events().at(-1)?.EventID).toBe(C_BAD_CD);
    // STE cache: a bypass STE is not seen until the flush (the CD fault above cached the STE).
    h.writeSte(1, { V: 1, Config: 4 });
    expect(rd1(h)).toBeUndefined();
    h.hw.flushCaches();
    expect(rd1(h)).toEqual(Uint8Array.of(0)); // bypass: VA is the PA, memory there is zero
    expect(h.hw.cacheSizes()).toEqual({ ste: 1, cd: 0, tlb: 0 });
  });
});

function rd1(h: ReturnType<typeof harness>): Uint8Array | undefined {
  const r = h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false });
  return r.ok ? r.data : undefined;
}

describe('stage 2 and nesting', () => {
  function s2(h: ReturnType<typeof harness>) {
    const root = h.alloc(4096);
    // S2T0SZ 16 (48-bit IPA), 4K, SL0=2 (start level 0), S2PS 5 (48 bits), VMID 7.
    const ste = { V: 1, Config: 6, S2VMID: 7, S2T0SZ: 16, S2SL0: 2, S2TG: 0, S2PS: 5, S2AA64: 1, S2R: 1, S2TTB: root };
    return { root, ste };
  }

  it('stage-2 only: S2AP bits and TLBI_S2_IPA', () => {
    const h = harness();
    const { root, ste } = s2(h);
    h.writeSte(1, ste);
    const slot = h.map(root, VA, encodeS2Leaf({ pa: PA, page: true, af: true, s2ap: 0b01 }));
    h.memory.write(BigInt(PA), Uint8Array.of(0x31));
    expect(rd1(h)).toEqual(Uint8Array.of(0x31));
    const w = h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: true, data: Uint8Array.of(0) });
    expect(w.ok ? '' : w.fault.class).toBe('permission');
    expect(h.events()[0]).toMatchObject({ EventID: F_PERMISSION, S2: 1, CLASS: EVT_CLASS_IN, Addr: VA });
    h.writeWords(slot, new Uint32Array(2));
    expect(rd1(h)).toEqual(Uint8Array.of(0x31));
    h.cmd({ op: CMD_TLBI_S2_IPA, vmid: 7, addr: VA, leaf: true }, { op: CMD_SYNC });
    expect(rd1(h)).toBeUndefined();
  });

  it('nested: the CD and stage-1 tables are IPAs; a stage-2 fault on a stage-1 table is S2=1 CLASS=TT', () => {
    const h = harness();
    const { root, ste } = s2(h);
    // Guest memory: IPA 0x1000_0000 + x maps to PA 0x2000_0000 + x for 16 pages.
    for (let i = 0; i < 16; i++) h.map(root, 0x10000000 + i * 4096, encodeS2Leaf({ pa: 0x20000000 + i * 4096, page: true, af: true, s2ap: 0b11 }));
    h.map(root, 0x30000000, encodeS2Leaf({ pa: PA, page: true, af: true, s2ap: 0b11 }));
    const cdIpa = 0x10000000;
    const s1RootIpa = 0x10001000;
    h.writeCd(0x20000000, { V: 1, AA64: 1, T0SZ: 16, IPS: 5, EPD1: 1, R: 1, A: 1, ASID: 3, TTB0: s1RootIpa });
    // Stage-1 tables at IPAs 0x10002000.. (PA 0x20002000..), leaf VA → IPA 0x30000000.
    let nextIpa = 0x10002000;
    let t = s1RootIpa;
    for (let level = 0; level < 3; level++) {
      const idx = Math.floor(VA / 2 ** (39 - 9 * level)) % 512;
      h.writeWords(0x20000000 + (t - 0x10000000) + idx * 8, new Uint32Array([(nextIpa | 3) >>> 0, 0]));
      t = nextIpa;
      nextIpa += 4096;
    }
    h.writeWords(0x20000000 + (t - 0x10000000) + (Math.floor(VA / 4096) % 512) * 8, encodeS1Leaf({ pa: 0x30000000, page: true, af: true, ng: true, ap: 1 }));
    h.memory.write(BigInt(PA), Uint8Array.of(0x99));
    h.writeSte(1, { ...ste, Config: 7, S1ContextPtr: cdIpa });
    expect(rd1(h)).toEqual(Uint8Array.of(0x99));
    // Break the stage-2 mapping of the level-1 stage-1 table (IPA 0x10002000), then invalidate.
    h.map(root, 0x10002000, new Uint32Array(2));
    h.cmd({ op: CMD_TLBI_S12_VMALL, vmid: 7 }, { op: CMD_SYNC });
    expect(rd1(h)).toBeUndefined();
    expect(h.events().at(-1)).toMatchObject({ EventID: F_TRANSLATION, S2: 1, CLASS: EVT_CLASS_TT, Addr: 0x10002000 + Math.floor(VA / 2 ** 30) % 512 * 8 });
  });
});

describe('command queue', () => {
  it('an unknown opcode stops the queue with CERROR_ILL and toggles GERROR.CMDQ_ERR', () => {
    const h = harness();
    h.cmdWords(new Uint32Array([0x7f, 0, 0, 0]));
    expect((h.hw.mmio.read32(SMMU_CMDQ_CONS) >>> 24) & 0x7f).toBe(CERROR_ILL);
    expect(h.hw.mmio.read32(SMMU_GERROR) & GERROR_CMDQ_ERR).toBe(GERROR_CMDQ_ERR);
    expect(h.interrupts).toContain('gerror');
    // Software acks via GERRORN, replaces the command with a SYNC and moves on.
    h.writeWords(0x200000, new Uint32Array([0x46, 0, 0, 0]));
    h.hw.mmio.write32(SMMU_GERRORN, GERROR_CMDQ_ERR);
    h.hw.mmio.write32(SMMU_CMDQ_CONS, 0); // ignored while CMDQEN, so CONS still points at the bad entry
    h.cmd({ op: CMD_SYNC });
    expect(h.hw.mmio.read32(SMMU_CMDQ_CONS)).toBe(2);
  });

  it('CMD_SYNC with CS=SIG_IRQ writes MSIData to MSIAddr', () => {
    const h = harness();
    h.cmd({ op: CMD_SYNC, cs: 1, msiData: 0xcafe, addr: 0x6000 });
    expect(h.memory.read32(0x6000n)).toBe(0xcafe);
  });
});

describe('stall and PRI', () => {
  it('CD.S=1 stalls a translation fault (event Stall=1, STAG); CMD_RESUME retries it', () => {
    const { h, slot } = s1Setup({ cd: { S: 1 } });
    h.writeWords(slot, new Uint32Array(2));
    const r = h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 1, write: false });
    expect(r.ok ? '' : r.fault.class).toBe('page-request');
    const [ev] = h.events();
    expect(ev).toMatchObject({ EventID: F_TRANSLATION, Stall: 1 });
    expect(h.hw.stalled()).toHaveLength(1);
    h.writeWords(slot, encodeS1Leaf({ pa: PA, page: true, af: true, ng: true, ap: 1 }));
    h.cmd({ op: CMD_RESUME, sid: 1, stag: ev!.STAG, resp: 1 }, { op: CMD_SYNC });
    expect(h.hw.stalled()).toHaveLength(0);
    expect(h.hw.resumed.get(ev!.STAG)).toEqual({ ok: true, data: Uint8Array.of(0xde) });
  });

  it('page requests go to the PRI queue in memory; PRI_RESP answers the endpoint', () => {
    const h = harness();
    h.writeSte(1, { V: 1, Config: 4 });
    h.hw.pageRequest({ streamId: 1, substreamId: 5, iova: 0x123456789000n, read: true, write: true, last: true, prgi: 7 });
    expect(h.pri()).toEqual([{ StreamID: 1, SSV: 1, SubstreamID: 5, Priv: 0, X: 0, R: 1, W: 1, Last: 1, PRGIndex: 7, Addr: 0x123456789000 }]);
    expect(h.interrupts).toContain('priq');
    h.cmd({ op: CMD_PRI_RESP, sid: 1, ssv: true, ssid: 5, prgi: 7, resp: PRI_RESP_SUCC });
    expect(h.hw.priResponses.at(-1)).toEqual({ streamId: 1, substreamId: 5, prgi: 7, code: PRG_RESPONSE_SUCCESS, auto: false });
  });

  it('PRIQ disabled: automatic Response Failure; overflow: OVFLG and an automatic response for Last', () => {
    const h = harness();
    h.hw.mmio.write32(SMMU_CR0, 0xd); // PRIQEN off
    h.hw.pageRequest({ streamId: 1, iova: 0x1000n, read: true, write: false, last: true, prgi: 1 });
    expect(h.hw.priResponses.at(-1)).toMatchObject({ code: PRG_RESPONSE_FAILURE, auto: true });
    const o = harness();
    o.writeSte(1, { V: 1, Config: 4 });
    for (let i = 0; i < 16; i++) o.hw.pageRequest({ streamId: 1, iova: 0x1000n, read: true, write: false, last: false, prgi: 1 });
    expect(o.hw.priResponses).toHaveLength(0);
    o.hw.pageRequest({ streamId: 1, iova: 0x1000n, read: true, write: false, last: true, prgi: 2 });
    expect(o.hw.mmio.read32(SMMU_PRIQ_PROD) >>> 31).toBe(1);
    expect(o.hw.priResponses.at(-1)).toEqual({ streamId: 1, substreamId: undefined, prgi: 2, code: PRG_RESPONSE_SUCCESS, auto: true });
  });
});

describe('event queue', () => {
  it('records land at EVENTQ_BASE in order; a full queue sets EVENTQ_PROD.OVFLG', () => {
    const h = harness();
    for (let i = 0; i < 65; i++) h.hw.dma({ streamId: 9, iova: BigInt(i * 4096), size: 1, write: false });
    expect(h.memory.read32(BigInt(EVTQ))).toBe(C_BAD_STE);
    expect(h.memory.read32(BigInt(EVTQ + 4))).toBe(9);
    expect(h.hw.mmio.read32(0x100a8) >>> 31).toBe(1);
    expect(h.events()).toHaveLength(64);
  });
});

describe('qemu profile', () => {
  it('S1CDMax ≠ 0 is C_BAD_STE and CD.S=1 is C_BAD_CD, as QEMU does', () => {
    const h = harness({ profile: 'qemu' });
    h.writeSte(1, { V: 1, Config: 5, S1ContextPtr: h.alloc(64), S1CDMax: 1 });
    const r = h.hw.dma({ streamId: 1, iova: 0n, size: 1, write: false });
    expect(r.ok ? 0 : r.fault.code).toBe(C_BAD_STE);
    const cd = h.alloc(64);
    h.writeCd(cd, { V: 1, AA64: 1, T0SZ: 16, IPS: 4, EPD1: 1, R: 1, A: 1, S: 1, TTB0: h.alloc(4096) });
    h.writeSte(2, { V: 1, Config: 5, S1ContextPtr: cd });
    const c = h.hw.dma({ streamId: 2, iova: 0n, size: 1, write: false });
    expect(c.ok ? 0 : c.fault.code).toBe(C_BAD_CD);
    expect(h.hw.mmio.read32(SMMU_IDR0)).toBe(0x0d40101a);
    expect(CR0_SMMUEN).toBe(1);
  });
});
