/**
 * Hostile input to the SMMUv3 hardware model. Valid structures are laid out first (the driver
 * programs stream table, CD tables and page tables for a stage-1 RID, a PASID, a stage-2 nest
 * parent and a bypass stream), then corrupted in memory — random qwords, single-bit flips
 * (reserved fields), pointers outside memory, a table pointing at itself or its parent — and the
 * model is driven directly: DMA through the corrupted structures, command-queue garbage through
 * PROD. It must answer a DMA with data or an SMMUv3 event (never throw), stay within a step
 * budget, report command errors in GERROR/CONS, and write memory only where told: its event
 * and PRI queues, the MSI words of CMD_SYNCs, the access/dirty bits of descriptors it walks,
 * and a DMA's payload.
 */

import {
  EVENT_NAMES,
  GERROR_CMDQ_ERR,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_EVENTQ_BASE,
  SMMU_GERROR,
  SMMU_PRIQ_BASE,
  smmuV3Backend,
  type SmmuV3Hardware,
} from '@ioasid/arm-smmuv3';
import { dmaResultOf, expandDevices } from '@ioasid/core';
import { IOMMU_READ, IOMMU_WRITE, type BackendInstance, type EndpointDescriptor, type FaultClass } from '@ioasid/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fcParams } from './config.js';
import { frameLimit } from './snapshot.js';
import { count } from './stats.js';
import { BudgetExceeded, WatchedMemory, type Region, type WriteRecord } from './watched-memory.js';
import { saveStatsAfterAll } from '../test/save-stats.js';

saveStatsAfterAll('hostile-smmuv3');

const ID = 'arm-smmuv3 (hardware model)';
const MEM = 1n << 32n;
const U64 = (1n << 64n) - 1n;
const BUDGET = 100_000;
const CLASSES: readonly FaultClass[] = ['translation', 'permission', 'address-size', 'blocked', 'bad-config', 'external-abort', 'page-request'];
/** Bits a walk may change in the low dword of a descriptor: AF (10) and AP[2]/S2AP[1] (7, dirty state). */
const AD_BITS = (1 << 10) | (1 << 7);

interface Machine {
  readonly mem: WatchedMemory;
  readonly inst: BackendInstance;
  readonly hw: SmmuV3Hardware;
  readonly eps: readonly EndpointDescriptor[];
  /** Frames holding the driver's structures (stream table, CD tables, page tables). */
  readonly structures: readonly number[];
  /** Queue rings (event, PRI, command), excluded from corruption. */
  readonly rings: readonly Region[];
}

function ring(hw: SmmuV3Hardware, reg: number, entry: number): Region {
  const v = hw.mmio.read64(reg);
  const base = Number(v & 0xffffffffffe0n);
  return { start: base, end: base + entry * 2 ** Number(v & 0x1fn) };
}

/**
 * The driver lays out valid structures: device 0's RID on a stage-1 domain and its PASID 1 on
 * another, device 1 on a stage-2 (nest parent) domain, device 2 on the identity domain.
 */
function machine(): Machine {
  const mem = WatchedMemory.create(MEM);
  const eps = expandDevices(['0000:00:02.0', '0000:00:03.0', '0000:00:04.0']);
  const inst = smmuV3Backend().create({ memory: mem, endpoints: eps, reportPageRequest: () => undefined });
  const hw = inst.hardware as SmmuV3Hardware;
  const drv = inst.driver;
  const dataPfn = mem.allocFrames(32, 32);
  for (let i = 0; i < 32; i++) mem.inner.write32At((dataPfn + i) * 4096, (i + 1) * 0x01010101);
  const pfns = Uint32Array.from({ length: 16 }, (_, i) => dataPfn + i);
  const opts = { nestParent: false, dirtyTracking: false, pasid: false, iopf: false };
  const s1 = drv.allocPagingDomain(eps[0]!, opts);
  s1.map(0x100000n, pfns, 8, IOMMU_READ | IOMMU_WRITE);
  s1.map(0x108000n, pfns.subarray(8), 8, IOMMU_READ);
  drv.attach(eps[0]!, s1, undefined);
  const p1 = drv.allocPagingDomain(eps[0]!, { ...opts, pasid: true });
  p1.map(0x200000n, pfns.subarray(4), 4, IOMMU_READ | IOMMU_WRITE);
  drv.attach(eps[0]!, p1, 1);
  const s2 = drv.allocPagingDomain(eps[1]!, { ...opts, nestParent: true });
  s2.map(0x100000n, pfns, 16, IOMMU_READ | IOMMU_WRITE);
  drv.attach(eps[1]!, s2, undefined);
  const id = drv.identityDomain(eps[2]!);
  if (id !== undefined) drv.attach(eps[2]!, id, undefined);
  const rings = [ring(hw, SMMU_EVENTQ_BASE, 32), ring(hw, SMMU_PRIQ_BASE, 16), ring(hw, SMMU_CMDQ_BASE, 16)];
  const structures: number[] = [];
  for (let p = 1; p < frameLimit(mem.inner); p++) {
    if (p >= dataPfn && p < dataPfn + 32) continue;
    if (rings.some((r) => p * 4096 >= r.start && p * 4096 < r.end)) continue;
    const w = mem.inner.frameWords(p);
    if (w?.some((x) => x !== 0) === true) structures.push(p);
  }
  return { mem, inst, hw, eps, structures, rings };
}

/** Changed bytes no rule explains: outside `allowed`, and not an access/dirty bit of a descriptor. */
function unexplained(writes: readonly WriteRecord[], allowed: readonly Region[]): WriteRecord[] {
  return writes.filter((w) => {
    for (let i = 0; i < w.length; i++) {
      const a = w.addr + i;
      const diff = w.before[i]! ^ w.after[i]!;
      if (diff === 0 || allowed.some((r) => a >= r.start && a < r.end)) continue;
      const inDword = a & 7;
      const bits = inDword < 4 ? (AD_BITS >>> (8 * inDword)) & 0xff : 0;
      if ((diff & ~bits) === 0) continue;
      return true;
    }
    return false;
  });
}

const corruptionArb = fc.tuple(
  fc.integer({ min: 0, max: 0xffffff }),
  fc.oneof(
    fc.bigInt({ min: 0n, max: U64 }).map((v) => ({ set: v })),
    fc.constant({ set: 0n }),
    fc.integer({ min: 0, max: 63 }).map((bit) => ({ flip: bit })),
    fc.integer({ min: 0, max: 2 }).map((up) => ({ loop: up })),
    fc.constant({ set: (MEM + 0x3000n) | 3n }),
  ),
);

const dmaArb = fc.record({
  dev: fc.integer({ min: 0, max: 2 }),
  pasid: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xfffff }) }),
  iova: fc.oneof(
    { weight: 6, arbitrary: fc.bigInt({ min: 0x100n, max: 0x110n }).map((p) => p * 0x1000n) },
    { weight: 2, arbitrary: fc.bigInt({ min: 0x200n, max: 0x204n }).map((p) => p * 0x1000n + 0xffcn) },
    { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: U64 }) },
    { weight: 1, arbitrary: fc.constantFrom(0n, 1n << 48n, (1n << 52n) - 8n) },
  ),
  write: fc.boolean(),
  size: fc.constantFrom(1, 8, 16),
});

describe('SMMUv3 hardware model: corrupted structures and command-queue garbage', () => {
  it('DMA through corrupted STEs, CDs and page tables: data or an SMMUv3 event; writes only queues, A/D bits and the payload', () => {
    fc.assert(
      fc.property(fc.array(corruptionArb, { minLength: 0, maxLength: 8 }), fc.array(dmaArb, { minLength: 1, maxLength: 12 }), (corruptions, dmas) => {
        const m = machine();
        const { mem, hw } = m;
        for (const [pick, c] of corruptions) {
          const frame = m.structures[pick % m.structures.length]!;
          // a qword that holds something, mostly
          const w = mem.inner.frameWords(frame)!;
          let q = (pick >>> 8) % 512;
          for (let k = 0; k < 512 && w[2 * q] === 0 && w[2 * q + 1] === 0; k++) q = (q + 1) % 512;
          const a = BigInt(frame * 4096 + q * 8);
          const old = mem.inner.read64(a);
          const v = 'set' in c ? c.set : 'flip' in c ? old ^ (1n << BigInt(c.flip)) : (BigInt(frame - c.loop) * 4096n) | 3n;
          mem.inner.write64(a, v & U64);
        }
        hw.flushCaches(); // the next DMAs walk what is in memory now
        const allowed = [...m.rings];
        for (const d of dmas) {
          const data = new Uint8Array(d.size).fill(0xd9);
          mem.arm(BUDGET);
          mem.writes.length = 0;
          mem.recording = true;
          let r;
          try {
            const req = { iova: d.iova, size: d.size, write: d.write, ...(d.pasid === undefined ? {} : { pasid: d.pasid }), ...(d.write ? { data } : {}) };
            r = dmaResultOf(req, (into) => m.inst.dmaInto(m.eps[d.dev]!, req, into));
          } catch (e) {
            if (e instanceof BudgetExceeded) throw e;
            throw new Error(`DMA threw: ${String(e)}`, { cause: e });
          } finally {
            mem.recording = false;
          }
          count(ID, 'malformed');
          const left = unexplained(mem.writes, allowed);
          const what = `DMA ${d.write ? 'write' : 'read'} at 0x${d.iova.toString(16)} from ${m.eps[d.dev]!.name}${d.pasid === undefined ? '' : ` SSID ${d.pasid}`}`;
          if (!r.ok) {
            expect(CLASSES, what).toContain(r.fault.class);
            // an event of IHI0070 §7.3, or a silent abort (STE.Config = abort records no event), an
            // external abort, or a page request
            const silent = r.fault.class === 'blocked' || r.fault.class === 'external-abort' || r.fault.class === 'page-request';
            expect(silent || EVENT_NAMES[r.fault.code] !== undefined, `${what}: event 0x${r.fault.code.toString(16)} (${r.fault.name})`).toBe(true);
            expect(left, `${what}: a faulting DMA wrote memory`).toEqual([]);
          } else if (!d.write) {
            expect(left, `${what}: a read wrote memory`).toEqual([]);
          } else {
            for (const x of left) for (let i = 0; i < x.length; i++) if (x.before[i] !== x.after[i]) expect(x.after[i], `${what}: wrote something else than the payload`).toBe(0xd9);
          }
        }
        count(ID, 'sequences');
        count(ID, 'operations', dmas.length);
      }),
      fcParams('hostile smmuv3 tables', 120, 5000),
    );
  });

  it('command-queue garbage through PROD: no throw, no hang, CMDQ_ERR for what is illegal, writes only where CMD_SYNCs point', () => {
    const cmdArb = fc.oneof(
      fc.tuple(fc.bigInt({ min: 0n, max: U64 }), fc.bigInt({ min: 0n, max: U64 })),
      // CMD_SYNC (0x46) with CS = 0..3 and an MSI address in memory, beyond it, or at 0
      fc.tuple(fc.integer({ min: 0, max: 3 }), fc.oneof(fc.bigInt({ min: 0n, max: 0xfffn }).map((k) => 0x3000000n + k * 4n), fc.constantFrom(0n, MEM - 4n, MEM + 0x100n))).map(
        ([cs, addr]): [bigint, bigint] => [0x46n | (BigInt(cs) << 12n) | (0x5a5an << 32n), addr],
      ),
      // a known opcode with random operands (reserved fields included)
      fc.tuple(fc.constantFrom(0x01, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x11, 0x12, 0x20, 0x28, 0x2a, 0x2c, 0x30, 0x40, 0x41, 0x44, 0x45), fc.bigInt({ min: 0n, max: U64 }), fc.bigInt({ min: 0n, max: U64 })).map(
        ([op, a, b]): [bigint, bigint] => [(a & ~0xffn) | BigInt(op), b],
      ),
    );
    fc.assert(
      fc.property(fc.array(cmdArb, { minLength: 1, maxLength: 24 }), fc.integer({ min: 0, max: 0xffffffff }), (cmds, prodJunk) => {
        const { mem, hw } = machine();
        const q = ring(hw, SMMU_CMDQ_BASE, 16);
        const log2 = Math.log2((q.end - q.start) / 16);
        const mask = 2 ** log2 - 1;
        let prod = hw.mmio.read32(SMMU_CMDQ_PROD);
        const allowed: Region[] = [ring(hw, SMMU_EVENTQ_BASE, 32), ring(hw, SMMU_PRIQ_BASE, 16)];
        for (const [w0, w1] of cmds) {
          const at = q.start + (prod & mask) * 16;
          mem.inner.write64(BigInt(at), w0);
          mem.inner.write64(BigInt(at + 8), w1);
          if ((w0 & 0xffn) === 0x46n) allowed.push({ start: Number(w1 & 0xffffffffffffcn), end: Number(w1 & 0xffffffffffffcn) + 4 });
          prod = (prod + 1) & (2 * mask + 1);
        }
        mem.arm(BUDGET * 4);
        mem.writes.length = 0;
        mem.recording = true;
        try {
          hw.mmio.write32(SMMU_CMDQ_PROD, (prodJunk & 0xf) === 0 ? prodJunk : prod);
        } finally {
          mem.recording = false;
        }
        count(ID, 'malformed', cmds.length);
        expect(unexplained(mem.writes, allowed), 'the command queue wrote memory no CMD_SYNC named').toEqual([]);
        const cons = hw.mmio.read32(SMMU_CMDQ_CONS);
        const p = hw.mmio.read32(SMMU_CMDQ_PROD);
        // CONS stopped short of PROD only on an error, which GERROR reports (with CONS.ERR)
        if (((cons ^ p) & (2 * mask + 1)) !== 0) expect(hw.mmio.read32(SMMU_GERROR) & GERROR_CMDQ_ERR, `CONS 0x${cons.toString(16)} ≠ PROD 0x${p.toString(16)}`).toBe(GERROR_CMDQ_ERR);
        count(ID, 'sequences');
        count(ID, 'operations', 1);
      }),
      fcParams('hostile smmuv3 cmdq', 150, 6000),
    );
  });
});
