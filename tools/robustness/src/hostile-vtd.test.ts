/**
 * Hostile input to the VT-d hardware model, driven directly through its registers and memory
 * (never through the driver): root, context, PASID-directory, PASID and page-table entries made
 * of random bits, reserved bits, pointers outside memory and loops between levels; invalidation
 * queue garbage (unknown types, reserved bits, misaligned tails, wait descriptors writing
 * anywhere); random register writes. The model must answer a DMA with data or a fault record of
 * the VT-d fault reasons (never throw), stay within a step budget, and write memory only where
 * it is told to: A/D/EA bits of the entries it walks, a DMA's payload, the status words of wait
 * descriptors, and its page request queue.
 */

import {
  FS_A,
  FS_D,
  FS_EA,
  FSTS_IQE,
  FSTS_REG,
  GCMD_QIE,
  GCMD_REG,
  GCMD_SRTP,
  GCMD_TE,
  IQA_REG,
  IQH_REG,
  IQT_REG,
  LEGACY_FAULT,
  PGTT_FIRST_STAGE,
  PGTT_NESTED,
  PGTT_PASS_THROUGH,
  PGTT_SECOND_STAGE,
  PQA_REG,
  RTADDR_REG,
  SM_FAULT,
  SS_A,
  SS_D,
  VtdHardware,
  ccDescriptor,
  decodeFaultRecord,
  encodeFsLeaf,
  encodeFsTable,
  encodeLegacyContextEntry,
  encodeLegacyRootEntry,
  encodePasidDirEntry,
  encodePasidEntry,
  encodeScalableContextEntry,
  encodeScalableRootEntry,
  encodeSsLeaf,
  encodeSsTable,
  iotlbDescriptor,
  pasidCacheDescriptor,
  piotlbDescriptor,
  waitDescriptor,
  type QiDescriptor,
} from '@ioasid/intel-vtd';
import type { FaultClass } from '@ioasid/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fcParams } from './config.js';
import { count } from './stats.js';
import { BudgetExceeded, WatchedMemory, type Region, type WriteRecord } from './watched-memory.js';
import { saveStatsAfterAll } from '../test/save-stats.js';

saveStatsAfterAll('hostile-vtd');

const ID = 'intel-vtd (hardware model)';
const MEM = 1n << 32n;
const U64 = (1n << 64n) - 1n;
const BUDGET = 100_000;
const POOL = 0x100000; // 64 table frames: every structure the walks may meet
const POOL_FRAMES = 64;
const DATA = 0x400000; // data frames
const QUEUE = 0x800000; // the invalidation queue (4 KiB)
const PRQ = 0x900000; // the page request queue
const CLASSES: readonly FaultClass[] = ['translation', 'permission', 'address-size', 'blocked', 'bad-config', 'external-abort', 'page-request'];
const CODES = new Set<number>(([...Object.values(SM_FAULT), ...Object.values(LEGACY_FAULT)] as unknown[]).filter((v): v is number => typeof v === 'number'));
/** The bits a walk may set in the low dword of an entry: first-stage A, D, EA; second-stage A, D. */
const AD_BITS = FS_A | FS_D | FS_EA | SS_A | SS_D;

/** A 64-bit entry, from a class: zero, a table pointer into the pool (possibly to itself), out of memory, data, or random. */
const entryArb = fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: POOL_FRAMES - 1 }), fc.integer({ min: 0, max: 0xfff }), fc.bigInt({ min: 0n, max: U64 })).map(
  ([cls, frame, low, rnd]) => {
    const pool = BigInt(POOL + frame * 0x1000);
    switch (cls) {
      case 0:
        return 0n;
      case 1:
      case 2:
      case 3:
        return pool | BigInt(low) | 1n; // present, random flags (reserved bits included)
      case 4:
        return pool | 0x7n; // plain present + RW + US table/leaf pointer
      case 5:
        return (MEM + BigInt(frame) * 0x1000n) | 0x7n; // outside memory
      case 6:
        return BigInt(DATA + frame * 0x1000) | 0x67n; // a data page leaf, A/D already set
      case 7:
        return BigInt(DATA + frame * 0x1000) | 0x7n | (1n << 63n); // XD set
      default:
        return rnd;
    }
  },
);

function machine() {
  const mem = WatchedMemory.create(MEM);
  for (let f = 0; f < 64; f++) mem.inner.write32At(DATA + f * 0x1000, f * 0x11111111);
  const hw = new VtdHardware({ memory: mem });
  return { mem, hw };
}

const ROOT = 0x200000;

/**
 * Valid structures first, as a driver would write them (scalable or legacy mode), for devfn
 * 0–3 of bus 0 and PASIDs 0–3 (first-stage, second-stage, nested and pass-through entries,
 * 4-level tables mapping pages 0–15 to data frames); returns the address of every qword written,
 * so that corruptions can hit any level.
 */
function build(mem: WatchedMemory, scalable: boolean, pgtts: readonly number[]): number[] {
  const qwords: number[] = [];
  let next = 0;
  const frame = () => POOL + (next++ % POOL_FRAMES) * 0x1000;
  const put = (a: number, v: bigint) => {
    mem.inner.write64(BigInt(a), v);
    qwords.push(a);
  };
  const table4 = (leaf: (page: number) => bigint, tableEntry: (t: bigint) => bigint): number => {
    const root = frame();
    const l3 = frame();
    const l2 = frame();
    const l1 = frame();
    put(root, tableEntry(BigInt(l3)));
    put(l3, tableEntry(BigInt(l2)));
    put(l2, tableEntry(BigInt(l1)));
    for (let p = 0; p < 16; p++) put(l1 + p * 8, leaf(p));
    return root;
  };
  const fsRoot = table4((p) => encodeFsLeaf(BigInt(DATA + p * 0x1000), { writable: p % 3 !== 2 }), encodeFsTable);
  const ssRoot = table4((p) => encodeSsLeaf(BigInt(DATA + ((p + 5) % 64) * 0x1000), { read: true, write: p % 4 !== 3 }), encodeSsTable);
  const ct = frame();
  if (!scalable) {
    const [lo, hi] = encodeLegacyRootEntry({ present: true, ctp: BigInt(ct) });
    put(ROOT, lo);
    put(ROOT + 8, hi);
    for (let devfn = 0; devfn < 4; devfn++) {
      const [a, b] = encodeLegacyContextEntry({ present: true, tt: devfn === 3 ? 2 : 0, ssptptr: BigInt(ssRoot), aw: 2, did: devfn + 1 });
      put(ct + devfn * 16, a);
      put(ct + devfn * 16 + 8, b);
    }
    return qwords;
  }
  const [lo, hi] = encodeScalableRootEntry({ lp: true, lctp: BigInt(ct), up: false, uctp: 0n });
  put(ROOT, lo);
  put(ROOT + 8, hi);
  for (let devfn = 0; devfn < 4; devfn++) {
    const dir = frame();
    const pt = frame();
    encodeScalableContextEntry({ present: true, paside: true, pdts: 0, pasidDirPtr: BigInt(dir), ridPasid: 0 }).forEach((q, i) => {
      put(ct + devfn * 32 + i * 8, q);
    });
    put(dir, encodePasidDirEntry({ present: true, smptblptr: BigInt(pt) }));
    for (let pasid = 0; pasid < 4; pasid++) {
      const pgtt = pgtts[(devfn * 4 + pasid) % pgtts.length]!;
      encodePasidEntry({ present: true, pgtt, aw: 2, did: devfn + 1, fsptptr: BigInt(fsRoot), ssptptr: BigInt(ssRoot), sre: true }).forEach((q, i) => {
        put(pt + pasid * 64 + i * 8, q);
      });
    }
  }
  return qwords;
}

/** The writes a model may make: A/D bits anywhere it walks; else the payload (written DMA), the PRQ, wait status words. */
function unexplained(writes: readonly WriteRecord[], allowed: readonly Region[]): WriteRecord[] {
  const out: WriteRecord[] = [];
  for (const w of writes) {
    for (let i = 0; i < w.length; i++) {
      const a = w.addr + i;
      const diff = w.before[i]! ^ w.after[i]!;
      if (diff === 0) continue;
      if (allowed.some((r) => a >= r.start && a < r.end)) continue;
      // a bit a walk may set, in the low dword of an 8-byte entry, set (0 → 1) only
      const inDword = a & 7;
      const bits = inDword < 4 ? (AD_BITS >>> (8 * inDword)) & 0xff : 0;
      if ((diff & ~bits) === 0 && (w.after[i]! & diff) === diff) continue;
      out.push(w);
      break;
    }
  }
  return out;
}

const dmaArb = fc.record({
  bus: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 0xff) }),
  devfn: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
  pasid: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 3, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xfffff }) }),
  iova: fc.oneof(
    { weight: 6, arbitrary: fc.bigInt({ min: 0n, max: 0x13n }).map((p) => p * 0x1000n) },
    { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: 0x13n }).map((p) => p * 0x1000n + 0xffcn) },
    { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: U64 }) },
    { weight: 1, arbitrary: fc.constantFrom(0xfee00000n, 1n << 47n, (1n << 48n) - 8n) },
  ),
  write: fc.boolean(),
  size: fc.constantFrom(1, 8, 16),
  exec: fc.boolean(),
  priv: fc.boolean(),
});

describe('VT-d hardware model: hostile tables, queue and registers', () => {
  it('corrupted root/context/PASID/page-table entries (random bits, reserved bits, pointers outside memory, loops): data or a VT-d fault; writes only A/D bits and the payload', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(fc.constantFrom(PGTT_FIRST_STAGE, PGTT_SECOND_STAGE, PGTT_NESTED, PGTT_PASS_THROUGH, 0, 5, 7), { minLength: 4, maxLength: 16 }),
        fc.array(
          fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.oneof(entryArb.map((v) => ({ set: v })), fc.integer({ min: 0, max: 63 }).map((bit) => ({ flip: bit })), fc.integer({ min: 0, max: 3 }).map((up) => ({ loop: up })))),
          { minLength: 0, maxLength: 6 },
        ),
        fc.array(dmaArb, { minLength: 1, maxLength: 12 }),
        (scalable, pgtts, corruptions, dmas) => {
          const { mem, hw } = machine();
          const qwords = build(mem, scalable, pgtts);
          for (const [i, c] of corruptions) {
            const a = qwords[i % qwords.length]!;
            const old = mem.inner.read64(BigInt(a));
            const v = 'set' in c ? c.set : 'flip' in c ? old ^ (1n << BigInt(c.flip)) : (BigInt(a) & ~0xfffn) - BigInt(c.loop * 0x1000) | (old & 0xfffn) | 1n;
            mem.inner.write64(BigInt(a), v & U64);
          }
          mem.inner.write64(BigInt(PRQ - 8), 0n);
          hw.mmio.write64(PQA_REG, BigInt(PRQ)); // a page request queue of 4 KiB, if PRI gets used
          hw.mmio.write64(RTADDR_REG, BigInt(ROOT) | (scalable ? 1n << 10n : 0n));
          hw.mmio.write32(GCMD_REG, GCMD_SRTP);
          hw.mmio.write32(GCMD_REG, GCMD_TE);
          for (const d of dmas) {
            const data = new Uint8Array(d.size).fill(0xe7);
            mem.arm(BUDGET);
            mem.writes.length = 0;
            mem.recording = true;
            let r;
            try {
              r = hw.dma({
                sourceId: (d.bus << 8) | d.devfn, iova: d.iova, size: d.size, write: d.write,
                ...(d.pasid === undefined ? {} : { pasid: d.pasid, exec: d.exec, priv: d.priv }),
                ...(d.write ? { data } : {}),
              });
            } catch (e) {
              if (e instanceof BudgetExceeded) throw e;
              throw new Error(`DMA threw: ${String(e)}`, { cause: e });
            } finally {
              mem.recording = false;
            }
            count(ID, 'malformed');
            const prq: Region = { start: PRQ, end: PRQ + 0x1000 };
            const left = unexplained(mem.writes, [prq]);
            if (!r.ok) {
              expect(CLASSES).toContain(r.fault.class);
              expect(r.fault.class === 'page-request' || r.fault.class === 'external-abort' || CODES.has(r.fault.code), `fault code 0x${r.fault.code.toString(16)} (${r.fault.name}) is a VT-d fault reason (or the platform's Unsupported Request)`).toBe(true);
              // a faulting DMA moves no byte, even a write crossing into the page that faulted (FINDINGS.md F3, fixed)
              expect(left, `a faulting DMA wrote memory: ${JSON.stringify(left.map((w) => w.addr.toString(16)))}`).toEqual([]);
              // a recorded fault is in the fault recording register it names, with its reason and source
              const rec = r.fault.record as { recorded?: unknown; frcdIndex?: unknown };
              if (r.fault.class !== 'page-request' && rec.recorded === true && typeof rec.frcdIndex === 'number') {
                const base = hw.caps.froBytes + rec.frcdIndex * 16;
                const f = decodeFaultRecord([0, 4, 8, 12].map((o) => hw.mmio.read32(base + o)));
                expect(rec.frcdIndex).toBeLessThan(hw.caps.nfr);
                expect([f.f, f.fr, f.sid], `FRCD[${rec.frcdIndex}] holds the fault`).toEqual([true, r.fault.code, (d.bus << 8) | d.devfn]);
                hw.mmio.write32(base + 12, 0x80000000); // clear F (RW1C), so that later faults find a free record
              }
            } else if (!d.write) {
              expect(r.data.length).toBe(d.size);
              expect(left, 'a read DMA wrote memory').toEqual([]);
            } else {
              // the payload, once, in at most two pieces (a page crossing), and nothing else
              const bytes = left.reduce((s, w) => s + w.after.filter((b, i) => b !== w.before[i]).length, 0);
              expect(bytes).toBeLessThanOrEqual(d.size);
              for (const w of left) for (let i = 0; i < w.length; i++) if (w.before[i] !== w.after[i]) expect(w.after[i]).toBe(0xe7);
            }
          }
          count(ID, 'sequences');
          count(ID, 'operations', dmas.length);
        },
      ),
      fcParams('hostile vtd tables', 150, 6000),
    );
  });

  it('invalidation-queue garbage and random register writes: no throw, no hang, queue errors reported, writes only where wait descriptors say', () => {
    const regs = [GCMD_REG, IQA_REG, IQT_REG, IQH_REG, RTADDR_REG, FSTS_REG, 0x28, 0x38, 0x3c, 0x40, 0x9c, 0xa0, 0xb0, 0xc0, 0xc8, 0xd0, 0xdc, 0xe0, 0x108, 0x200, 0x220, 0x22c, 0xffc, 0x1000, 3];
    /** A descriptor: a valid one of each kind, or garbage (random words, unknown types, reserved bits). */
    const descArb: fc.Arbitrary<QiDescriptor> = fc.oneof(
      { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 0xffff })).map(([g, did]) => ccDescriptor({ granularity: g, did, sid: did })) },
      { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 0xffff }), fc.bigInt({ min: 0n, max: 0xfffffn }), fc.integer({ min: 0, max: 0x3f })).map(([g, did, page, am]) => iotlbDescriptor({ granularity: g, did, addr: page << 12n, am })) },
      { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 2, max: 3 }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xfffff })).map(([g, did, pasid]) => piotlbDescriptor({ granularity: g, did, pasid })) },
      { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 0xfffff })).map(([g, pasid]) => pasidCacheDescriptor({ granularity: g, pasid })) },
      {
        weight: 3,
        arbitrary: fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 0xffffffff }), fc.oneof(fc.bigInt({ min: 0n, max: 0xfffn }).map((k) => 0xa00000n + k * 4n), fc.constantFrom(MEM - 4n, MEM, MEM + 0x1000n, 0n, BigInt(POOL)))).map(
          ([sw, data, addr]) => waitDescriptor({ statusWrite: sw, statusData: data, statusAddr: addr, interrupt: !sw }),
        ),
      },
      { weight: 2, arbitrary: fc.tuple(fc.bigInt({ min: 0n, max: U64 }), fc.bigInt({ min: 0n, max: U64 })) },
      { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 63 }), fc.integer({ min: 1, max: 7 })).map(([b0, b1, type]): QiDescriptor => [BigInt(type) | (1n << BigInt(b0)), 1n << BigInt(b1)]) },
    );
    fc.assert(
      fc.property(
        fc.array(descArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: regs.length - 1 }), fc.integer({ min: 0, max: 0xffffffff })), { maxLength: 12 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.boolean(),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 127 }), fc.bigInt({ min: 0n, max: U64 })), { maxLength: 4 }),
        (descs, regWrites, tail, wide, garbageUpper) => {
          const { mem, hw } = machine();
          const size = wide ? 32 : 16;
          descs.forEach(([qw0, qw1], k) => {
            const at = QUEUE + (k * size) % 0x1000;
            mem.inner.write64(BigInt(at), qw0);
            mem.inner.write64(BigInt(at + 8), qw1);
          });
          // 256-bit descriptors: their upper half must be zero; sometimes it is not
          if (wide) for (const [k, v] of garbageUpper) mem.inner.write64(BigInt(QUEUE + (k * size) % 0x1000 + 16), v);
          hw.mmio.write64(IQA_REG, BigInt(QUEUE) | (wide ? 1n << 11n : 0n));
          hw.mmio.write32(GCMD_REG, GCMD_QIE);
          // where wait descriptors may write: their status addresses (4 bytes each)
          const allowed: Region[] = [];
          for (let a = QUEUE; a < QUEUE + 0x1000; a += wide ? 32 : 16) {
            const s = mem.inner.read64(BigInt(a + 8)) & ~3n;
            allowed.push({ start: Number(s), end: Number(s) + 4 });
          }
          mem.arm(BUDGET);
          mem.writes.length = 0;
          mem.recording = true;
          const end = (descs.length * size) % 0x1000;
          hw.mmio.write64(IQT_REG, BigInt((tail & 3) === 0 ? tail & 0xfff0 : end));
          for (const [r, v] of regWrites) {
            const off = regs[r]!;
            if (off === GCMD_REG || off === IQA_REG || off === RTADDR_REG || off === PQA_REG) continue; // would move the queue or tables under the check
            hw.mmio.write32(off, v);
            hw.mmio.read32(off);
          }
          hw.mmio.write64(IQT_REG, BigInt((tail >>> 8) & 0xff0));
          mem.recording = false;
          count(ID, 'malformed', descs.length + regWrites.length);
          const outside = mem.changes().filter((w) => !allowed.some((r) => w.addr >= r.start && w.addr + w.length <= r.end));
          expect(outside, 'the queue wrote memory no wait descriptor named').toEqual([]);
          const head = hw.mmio.read32(IQH_REG);
          expect(head).toBeLessThan(0x1000);
          // the queue either drained or stopped with IQE
          const t = hw.mmio.read32(IQT_REG) & 0x7fff0;
          if (head !== t) expect(hw.mmio.read32(FSTS_REG) & FSTS_IQE, `head 0x${head.toString(16)} ≠ tail 0x${t.toString(16)} without IQE`).toBe(FSTS_IQE);
          count(ID, 'sequences');
          count(ID, 'operations', regWrites.length + 2);
        },
      ),
      fcParams('hostile vtd queue', 150, 6000),
    );
  });
});
