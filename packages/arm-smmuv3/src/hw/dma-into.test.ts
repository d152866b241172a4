import { describe, expect, it } from 'vitest';
import type { DmaFault } from '@ioasid/uapi';
import { harness } from '../test/hw-harness.js';
import { encodeS1Leaf, encodeS2Leaf } from '../spec/pgtable.js';
import { C_BAD_STE, C_BAD_SUBSTREAMID, F_BAD_ATS_TREQ, F_PERMISSION, F_TRANSLATION } from '../spec/events.js';
import {
  CMD_CFGI_CD,
  CMD_CFGI_STE,
  CMD_PREFETCH_CONFIG,
  CMD_SYNC,
  CMD_TLBI_NH_ALL,
  CMD_TLBI_NH_ASID,
  CMD_TLBI_NH_VA,
  CMD_TLBI_NH_VAA,
  CMD_TLBI_NSNH_ALL,
  CMD_TLBI_S12_VMALL,
  type SmmuCommand,
} from '../spec/commands.js';
import { CR0_CMDQEN, CR0_EVENTQEN, CR0_PRIQEN, CR0_SMMUEN, GBPA_ABORT, GBPA_UPDATE, SMMU_CR0, SMMU_GBPA } from '../spec/registers.js';
import type { SmmuDmaRequest } from './smmu-v3.js';

type H = ReturnType<typeof harness>;

const VA = 0x12345000;
const PA = 0x40000000;
/** The second page of VA maps to a PA that is not next to the first (a transfer in two pieces). */
const PA2 = 0x40003000;
/** VA + 3 pages maps here: a frame nothing ever wrote. */
const UNWRITTEN = 0x50000000;

/**
 * STE 1 → CD (ASID 5) → 4K stage-1 table: VA → PA, VA + 4K → PA2 and VA + 12K → UNWRITTEN, RW
 * user pages; VA + 8K is not mapped.
 */
function setup(cd: object = {}) {
  const h = harness();
  const cdAddr = h.alloc(64);
  const root = h.alloc(4096);
  h.writeCd(cdAddr, { V: 1, AA64: 1, T0SZ: 16, TG0: 0, IPS: 5, EPD1: 1, R: 1, A: 1, ASID: 5, TTB0: root, ...cd });
  h.writeSte(1, { V: 1, Config: 5, S1ContextPtr: cdAddr });
  const slot = h.map(root, VA, encodeS1Leaf({ pa: PA, page: true, af: true, ng: true, ap: 0b01 }));
  h.map(root, VA + 4096, encodeS1Leaf({ pa: PA2, page: true, af: true, ng: true, ap: 0b01 }));
  h.map(root, VA + 3 * 4096, encodeS1Leaf({ pa: UNWRITTEN, page: true, af: true, ng: true, ap: 0b01 }));
  const bytes = new Uint8Array(4096);
  for (let i = 0; i < 4096; i++) bytes[i] = (i * 7 + 1) & 0xff;
  h.memory.write(BigInt(PA), bytes);
  h.memory.write(BigInt(PA2), bytes.map((b) => b ^ 0xff));
  return { h, bytes, cdAddr, root, slot };
}

/** A buffer full of 0xee: a byte the model did not write shows. */
const dirty = (n: number) => new Uint8Array(n).fill(0xee);

describe('dmaInto: the non-allocating DMA entry point', () => {
  it('reads the same bytes as dma() into the caller\'s buffer, at every small size and offset', () => {
    const { h } = setup();
    for (const off of [0, 1, 3, 4, 4092, 4093, 4095, 4096 + 5]) {
      for (let size = 0; size <= 20; size++) {
        const req: SmmuDmaRequest = { streamId: 1, iova: BigInt(VA + off), size, write: false };
        const into = dirty(size + 3);
        expect(h.hw.dmaInto(req, into)).toBeUndefined();
        const r = h.hw.dma(req);
        expect(r.ok).toBe(true);
        if (r.ok) {
          expect(into.subarray(0, size)).toEqual(r.data);
          expect(r.data).toHaveLength(size);
        }
        expect(into.subarray(size)).toEqual(dirty(3)); // nothing past the read
      }
    }
  });

  it('a read across two pages (two translations) lands whole; so does a large one', () => {
    const { h, bytes } = setup();
    const into = dirty(4096);
    expect(h.hw.dmaInto({ streamId: 1, iova: BigInt(VA + 2048), size: 4096, write: false }, into)).toBeUndefined();
    expect(into.subarray(0, 2048)).toEqual(bytes.subarray(2048));
    expect(into.subarray(2048)).toEqual(bytes.subarray(0, 2048).map((b) => b ^ 0xff));
  });

  it('a frame never written reads as zeros (not the buffer\'s old bytes)', () => {
    const { h } = setup();
    const into = dirty(8);
    expect(h.hw.dmaInto({ streamId: 1, iova: BigInt(VA + 3 * 4096 + 8), size: 8, write: false }, into)).toBeUndefined();
    expect(into).toEqual(new Uint8Array(8));
  });

  it('writes take req.data and leave `into` alone', () => {
    const { h } = setup();
    const into = dirty(4);
    expect(h.hw.dmaInto({ streamId: 1, iova: BigInt(VA + 4094), size: 0, write: true, data: Uint8Array.of(1, 2, 3, 4) }, into)).toBeUndefined();
    expect(into).toEqual(dirty(4));
    expect(h.memory.read(BigInt(PA + 4094), 2)).toEqual(Uint8Array.of(1, 2));
    expect(h.memory.read(BigInt(PA2), 2)).toEqual(Uint8Array.of(3, 4));
  });

  it('a fault is the same record dma() returns, and no byte of the buffer moves', () => {
    const a = setup();
    const b = setup();
    const req: SmmuDmaRequest = { streamId: 1, iova: BigInt(VA + 4096 * 2), size: 4, write: false };
    const into = dirty(4);
    const f = a.h.hw.dmaInto(req, into);
    const r = b.h.hw.dma(req);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(f).toEqual(r.fault);
    expect(f?.code).toBe(F_TRANSLATION);
    expect(into).toEqual(dirty(4));
    expect(a.h.events()).toEqual(b.h.events());
  });

  it('a read whose second page faults moves no byte (every page translates first)', () => {
    const { h } = setup();
    const into = dirty(8192);
    const f = h.hw.dmaInto({ streamId: 1, iova: BigInt(VA + 4096 + 100), size: 8000, write: false }, into);
    expect(f?.class).toBe('translation');
    expect(f?.iova).toBe(BigInt(VA + 8192));
    expect(into).toEqual(dirty(8192));
  });

  it('CD.A=0 (RAZ/WI): a terminated read fills the caller\'s buffer with zeros, also across pages', () => {
    const { h, bytes } = setup({ A: 0 });
    const one = dirty(4);
    expect(h.hw.dmaInto({ streamId: 1, iova: 0x9000n, size: 4, write: false }, one)).toBeUndefined();
    expect(one).toEqual(new Uint8Array(4));
    // The first page translates, the second terminates: its bytes are zero.
    const two = dirty(8192);
    expect(h.hw.dmaInto({ streamId: 1, iova: BigInt(VA + 4096 + 4000), size: 8000, write: false }, two)).toBeUndefined();
    expect(two.subarray(0, 96)).toEqual(bytes.subarray(4000).map((b) => b ^ 0xff));
    expect(two.subarray(96, 8000)).toEqual(new Uint8Array(8000 - 96));
    expect(two.subarray(8000)).toEqual(dirty(192));
  });

  it('a buffer shorter than the read is a RangeError before anything is issued', () => {
    const { h } = setup();
    expect(() => h.hw.dmaInto({ streamId: 1, iova: 0x9000n, size: 4, write: false }, new Uint8Array(3))).toThrow(RangeError);
    expect(h.events()).toEqual([]); // the unmapped IOVA was never translated
  });

  it('sizes as core counts them: a negative or non-numeric size reads nothing, a fraction rounds down', () => {
    const { h, bytes } = setup();
    const none = dirty(2);
    for (const size of [-1, Number.NaN, 0.5]) {
      expect(h.hw.dmaInto({ streamId: 1, iova: BigInt(VA), size, write: false }, none)).toBeUndefined();
      expect(h.hw.dma({ streamId: 1, iova: BigInt(VA), size, write: false })).toEqual({ ok: true, data: new Uint8Array(0) });
    }
    expect(none).toEqual(dirty(2));
    expect(h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 2.9, write: false })).toEqual({ ok: true, data: bytes.subarray(0, 2) });
  });

  it('the input address is taken modulo 2^64, and a fault reports it so', () => {
    const { h, bytes } = setup();
    const wrapped = (1n << 64n) + BigInt(VA);
    expect(h.hw.dma({ streamId: 1, iova: wrapped, size: 2, write: false })).toEqual({ ok: true, data: bytes.subarray(0, 2) });
    const f: DmaFault | undefined = h.hw.dmaInto({ streamId: 1, iova: -1n, size: 1, write: false }, dirty(1));
    expect(f?.iova).toBe((1n << 64n) - 1n); // TTB1 half with EPD1 set
    const high = h.hw.dmaInto({ streamId: 1, iova: 1n << 60n, size: 1, write: false }, dirty(1));
    expect(high?.iova).toBe(1n << 60n);
  });

  it('endpointDmaInto: the platform request, with its PASID as the SubstreamID', () => {
    const { h, bytes } = setup();
    const into = dirty(3);
    expect(h.hw.endpointDmaInto(1, { iova: BigInt(VA + 1), size: 3, write: false }, false, into)).toBeUndefined();
    expect(into).toEqual(bytes.subarray(1, 4));
    expect(h.hw.endpointDma(1, { iova: BigInt(VA + 1), size: 3, write: false }, false)).toEqual({ ok: true, data: bytes.subarray(1, 4) });
    // The STE has no CD table: a SubstreamID is C_BAD_SUBSTREAMID.
    expect(h.hw.endpointDmaInto(1, { iova: BigInt(VA), size: 1, write: false, pasid: 3 }, false, dirty(1))?.name).toBe('C_BAD_SUBSTREAMID');
  });
});

/** A 4-byte read of `iova` through dmaInto: the bytes, or the fault's event name. */
function rd(h: H, iova: number | bigint, extra: Partial<SmmuDmaRequest> = {}): number[] | string {
  const into = dirty(4);
  const f = h.hw.dmaInto({ streamId: 1, iova: BigInt(iova), size: 4, write: false, ...extra }, into);
  return f === undefined ? [...into] : f.name;
}

describe('the last-translation cache never outlives what the TLB and configuration caches hold', () => {
  const first = (bytes: Uint8Array) => [...bytes.subarray(0, 4)];
  const other = (bytes: Uint8Array) => [...bytes.subarray(0, 4)].map((b) => b ^ 0xff);
  const remap = (h: H, root: number) => h.map(root, VA, encodeS1Leaf({ pa: PA2, page: true, af: true, ng: true, ap: 0b01 }));

  it('a rewritten PTE stays stale through CMD_SYNC, PREFETCH and a TLBI of another ASID, until TLBI_NH_VA of its own', () => {
    const { h, bytes, root } = setup();
    expect(rd(h, VA)).toEqual(first(bytes));
    remap(h, root);
    expect(rd(h, VA)).toEqual(first(bytes));
    h.cmd({ op: CMD_SYNC }, { op: CMD_PREFETCH_CONFIG, sid: 1 }, { op: CMD_TLBI_NH_VA, asid: 6, addr: VA, leaf: true }, { op: CMD_SYNC });
    expect(rd(h, VA)).toEqual(first(bytes)); // the TLB still holds it: so may the last translation
    h.cmd({ op: CMD_TLBI_NH_VA, asid: 5, addr: VA, leaf: true }, { op: CMD_SYNC });
    expect(rd(h, VA)).toEqual(other(bytes));
  });

  it.each<[string, SmmuCommand]>([
    ['TLBI_NH_ASID', { op: CMD_TLBI_NH_ASID, asid: 5 }],
    ['TLBI_NH_VAA', { op: CMD_TLBI_NH_VAA, addr: VA, leaf: true }],
    ['TLBI_NH_ALL', { op: CMD_TLBI_NH_ALL }],
    ['TLBI_NSNH_ALL', { op: CMD_TLBI_NSNH_ALL }],
    ['TLBI_S12_VMALL', { op: CMD_TLBI_S12_VMALL, vmid: 0 }],
  ])('%s drops it', (_name, cmd) => {
    const { h, bytes, slot } = setup();
    expect(rd(h, VA)).toEqual(first(bytes));
    h.writeWords(slot, new Uint32Array(2)); // the leaf becomes invalid
    expect(rd(h, VA)).toEqual(first(bytes));
    h.cmd(cmd, { op: CMD_SYNC });
    expect(rd(h, VA)).toBe('F_TRANSLATION');
  });

  it('a changed CD or STE takes effect at CFGI_CD / CFGI_STE, not before', () => {
    const { h, bytes, cdAddr } = setup();
    expect(rd(h, VA)).toEqual(first(bytes));
    h.writeCd(cdAddr, { V: 0 });
    expect(rd(h, VA)).toEqual(first(bytes));
    h.cmd({ op: CMD_CFGI_CD, sid: 1, ssid: 0, leaf: true }, { op: CMD_SYNC });
    expect(rd(h, VA)).toBe('C_BAD_CD');
    const s = setup();
    expect(rd(s.h, VA)).toEqual(first(s.bytes));
    s.h.writeSte(1, { V: 1, Config: 0 }); // abort
    expect(rd(s.h, VA)).toEqual(first(s.bytes));
    s.h.cmd({ op: CMD_CFGI_STE, sid: 1, leaf: true }, { op: CMD_SYNC });
    expect(rd(s.h, VA)).toBe('STE.Config abort');
  });

  it('register writes: SMMUEN=0 bypasses at once (GBPA), GBPA.ABORT blocks, SMMUEN=1 translates again', () => {
    const { h, bytes } = setup();
    h.memory.write(BigInt(VA), Uint8Array.of(1, 2, 3, 4)); // what the identity map reads
    expect(rd(h, VA)).toEqual(first(bytes));
    const on = CR0_SMMUEN | CR0_EVENTQEN | CR0_CMDQEN | CR0_PRIQEN;
    h.hw.mmio.write32(SMMU_CR0, on & ~CR0_SMMUEN);
    expect(rd(h, VA)).toEqual([1, 2, 3, 4]);
    h.hw.mmio.write32(SMMU_GBPA, GBPA_ABORT | GBPA_UPDATE);
    expect(rd(h, VA)).toBe('GBPA.ABORT');
    h.hw.mmio.write32(SMMU_CR0, on);
    expect(rd(h, VA)).toEqual(first(bytes));
  });

  it('another StreamID, SubstreamID, ATS request or access type is translated on its own', () => {
    const { h, bytes } = setup();
    expect(rd(h, VA)).toEqual(first(bytes));
    expect(rd(h, VA, { streamId: 2 })).toBe('C_BAD_STE');
    expect(h.events().at(-1)?.EventID).toBe(C_BAD_STE);
    expect(rd(h, VA)).toEqual(first(bytes));
    expect(rd(h, VA, { substreamId: 1 })).toBe('C_BAD_SUBSTREAMID');
    expect(h.events().at(-1)?.EventID).toBe(C_BAD_SUBSTREAMID);
    expect(rd(h, VA)).toEqual(first(bytes));
    expect(rd(h, VA, { ats: true })).toBe('F_BAD_ATS_TREQ'); // STE.EATS = 0
    expect(h.events().at(-1)?.EventID).toBe(F_BAD_ATS_TREQ);
    // A read-only, privileged-only page: a cached privileged read is no licence to write or to
    // read unprivileged.
    const ro = harness();
    const cd = ro.alloc(64);
    const root = ro.alloc(4096);
    ro.writeCd(cd, { V: 1, AA64: 1, T0SZ: 16, TG0: 0, IPS: 5, EPD1: 1, R: 1, A: 1, ASID: 5, TTB0: root });
    ro.writeSte(1, { V: 1, Config: 5, S1ContextPtr: cd });
    ro.map(root, VA, encodeS1Leaf({ pa: PA, page: true, af: true, ng: true, ap: 0b10 }));
    expect(rd(ro, VA, { priv: true })).toEqual([0, 0, 0, 0]);
    expect(ro.hw.dmaInto({ streamId: 1, iova: BigInt(VA), size: 0, write: true, data: Uint8Array.of(1), priv: true }, dirty(0))?.code).toBe(F_PERMISSION);
    expect(rd(ro, VA, { priv: true })).toEqual([0, 0, 0, 0]);
    expect(rd(ro, VA)).toBe('F_PERMISSION');
    expect(rd(ro, VA, { priv: true, exec: true })).toEqual([0, 0, 0, 0]);
  });

  it('the next page, and a transfer that leaves the leaf, are translated (not served from the last leaf)', () => {
    const { h, bytes } = setup();
    expect(rd(h, VA + 4092)).toEqual([...bytes.subarray(4092)]);
    expect(rd(h, VA + 4096)).toEqual(other(bytes));
    expect(rd(h, VA + 4094)).toEqual([...bytes.subarray(4094), ...other(bytes).slice(0, 2)]);
    expect(rd(h, VA + 8192)).toBe('F_TRANSLATION');
    expect(rd(h, VA)).toEqual(first(bytes));
    expect(rd(h, (1n << 32n) + BigInt(VA))).toBe('F_TRANSLATION'); // same low word, other high word
  });

  it('a leaf that memory does not hold whole is checked on every DMA (EXTERNAL_ABORT past the end)', () => {
    // 1 GiB + 1 MiB of memory, and a 2 MiB block at 1 GiB: half of it is beyond memory.
    const h = harness({}, (1n << 30n) + (1n << 20n));
    const cd = h.alloc(64);
    const root = h.alloc(4096);
    h.writeCd(cd, { V: 1, AA64: 1, T0SZ: 16, TG0: 0, IPS: 5, EPD1: 1, R: 1, A: 1, ASID: 5, TTB0: root });
    h.writeSte(1, { V: 1, Config: 5, S1ContextPtr: cd });
    h.map(root, 0x200000, encodeS1Leaf({ pa: 1 << 30, page: false, af: true, ng: true, ap: 0b01 }), 2);
    h.memory.write(BigInt((1 << 30) + 8), Uint8Array.of(5, 6, 7, 8));
    expect(rd(h, 0x200008)).toEqual([5, 6, 7, 8]);
    expect(rd(h, 0x200000 + (1 << 20) - 2)).toBe('EXTERNAL_ABORT');
    expect(rd(h, 0x200000 + (1 << 20) + 8)).toBe('EXTERNAL_ABORT');
    expect(rd(h, 0x200008)).toEqual([5, 6, 7, 8]);
  });
});

describe('flushTranslationCaches', () => {
  it('empties the TLB and the last translation; the STE and CD caches stay warm', () => {
    const { h, bytes, cdAddr, slot } = setup();
    expect(rd(h, VA)).toEqual([...bytes.subarray(0, 4)]);
    expect(h.hw.cacheSizes()).toEqual({ ste: 1, cd: 1, tlb: 1 });
    // Stale translation and stale configuration alike.
    h.writeWords(slot, encodeS1Leaf({ pa: PA2, page: true, af: true, ng: true, ap: 0b01 }));
    h.writeCd(cdAddr, { V: 0 });
    expect(rd(h, VA)).toEqual([...bytes.subarray(0, 4)]);
    h.hw.flushTranslationCaches();
    expect(h.hw.cacheSizes()).toEqual({ ste: 1, cd: 1, tlb: 0 });
    // The walk sees the new PTE through the cached (stale, still valid) CD.
    expect(rd(h, VA)).toEqual([...bytes.subarray(0, 4)].map((b) => b ^ 0xff));
    expect(h.hw.cacheSizes()).toEqual({ ste: 1, cd: 1, tlb: 1 });
    expect(h.events()).toEqual([]);
    // flushCaches() empties the configuration caches too: now the invalid CD is fetched.
    h.hw.flushCaches();
    expect(rd(h, VA)).toBe('C_BAD_CD');
  });

  it('stage 2 and nested entries go as well', () => {
    const h = harness();
    const root = h.alloc(4096);
    h.writeSte(1, { V: 1, Config: 6, S2VMID: 7, S2T0SZ: 16, S2SL0: 2, S2TG: 0, S2PS: 5, S2AA64: 1, S2R: 1, S2TTB: root });
    const s2slot = h.map(root, VA, encodeS2Leaf({ pa: PA, page: true, af: true, s2ap: 0b11 }));
    h.memory.write(BigInt(PA), Uint8Array.of(1, 2, 3, 4));
    expect(rd(h, VA)).toEqual([1, 2, 3, 4]);
    h.writeWords(s2slot, new Uint32Array(2));
    expect(rd(h, VA)).toEqual([1, 2, 3, 4]);
    h.hw.flushTranslationCaches();
    expect(rd(h, VA)).toBe('F_TRANSLATION');
    expect(h.hw.cacheSizes()).toMatchObject({ ste: 1, tlb: 0 });
  });
});
