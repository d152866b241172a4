/**
 * Hostile input to the sPAPR hypervisor model, driven directly by hcall and RTAS (never through
 * the driver): bad LIOBNs, misaligned and out-of-window IOBAs, TCEs with reserved bits or real
 * pages outside the partition, counts past the limits, TCE lists in the wrong place; garbage
 * RTAS calls; and random TCE contents under DMA. The model must answer as LoPAR says (the
 * reference below re-derives each return code), never throw, stay within a step budget,
 * write only the TCE slots a successful hcall names (or a DMA's payload where its TCE points),
 * and isolate a faulting PE (EEH) without touching another PE.
 */

import {
  H_FUNCTION,
  H_GET_TCE,
  H_P4,
  H_PARAMETER,
  H_PUT_TCE,
  H_PUT_TCE_INDIRECT,
  H_STUFF_TCE,
  H_SUCCESS,
  PaprHypervisor,
  RTAS_CREATE_PE_DMA_WINDOW,
  RTAS_QUERY_PE_DMA_WINDOW,
  RTAS_READ_SLOT_RESET_STATE2,
  RTAS_REMOVE_PE_DMA_WINDOW,
  RTAS_RESET_PE_DMA_WINDOWS,
  RTAS_SET_EEH_OPTION,
  RTAS_SET_SLOT_RESET,
  buidCells,
} from '@ioasid/papr-no-passthrough';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fcParams, runs } from './config.js';
import { count } from './stats.js';
import { WatchedMemory, writesOutside, type Region } from './watched-memory.js';
import { saveStatsAfterAll } from '../test/save-stats.js';

saveStatsAfterAll('hostile-papr');

const ID = 'papr-no-passthrough (hypervisor model)';
const DEV = '0000:00:02.0';
const OTHER = '0000:00:03.0';
const MEM = 1n << 32n;
const U64 = (1n << 64n) - 1n;
const BUDGET = 400_000;
const DATA = 0x10000000n; // data pages TCEs point at
const LISTS = 0x20000000n; // TCE lists for H_PUT_TCE_INDIRECT

function machine() {
  const mem = WatchedMemory.create(MEM);
  const hv = new PaprHypervisor({ memory: mem, devices: [DEV, OTHER] });
  for (let p = 0; p < 64; p++) mem.inner.write32At(Number(DATA) + p * 0x1000, (p * 0x01010101) ^ 0xa5a5a5a5);
  return { mem, hv };
}

/** The window of a device: LIOBN, bus range, page shift and where its TCE table lives. */
interface Win {
  readonly liobn: bigint;
  readonly start: bigint;
  readonly size: bigint;
  readonly shift: number;
  readonly table: bigint;
}

function windows(hv: PaprHypervisor, dev: string): Win[] {
  return hv.liobns(dev).map((w) => ({ liobn: BigInt(w.liobn), start: w.start, size: w.size, shift: w.pageShift, table: w.table }));
}

/**
 * LoPAR's TCE hcalls (PAPR profile, KVM semantics): which return code each call gets, and the
 * TCE slots a successful one stores. TCE: RPN | reserved (must be 0 below the window's page) |
 * 2 permission bits; a valid (non-zero permission) TCE must name a page inside the partition.
 */
class TceReference {
  readonly tces = new Map<string, bigint>();
  constructor(readonly wins: readonly Win[]) {}

  private win(liobn: bigint): Win | undefined {
    return liobn > 0xffffffffn ? undefined : this.wins.find((w) => w.liobn === liobn);
  }

  private index(w: Win, ioba: bigint): number {
    if ((ioba & ((1n << BigInt(w.shift)) - 1n)) !== 0n) return -1;
    if (ioba < w.start || ioba >= w.start + w.size) return -1;
    return Number((ioba - w.start) >> BigInt(w.shift));
  }

  valid(w: Win, tce: bigint): boolean {
    const reserved = ((1n << BigInt(w.shift)) - 1n) & ~3n;
    if ((tce & reserved) !== 0n) return false;
    if ((tce & 3n) === 0n) return true;
    const addr = tce & ~((1n << BigInt(w.shift)) - 1n);
    return addr + (1n << BigInt(w.shift)) <= MEM;
  }

  get(w: Win, i: number): bigint {
    return this.tces.get(`${w.liobn}:${i}`) ?? 0n;
  }

  /** The expected return code, the expected GET value, and the slots stored. */
  call(op: number, a: readonly bigint[], list: (addr: bigint, n: number) => bigint[] | undefined): { ret: number; value?: bigint; slots: { w: Win; i: number; tce: bigint }[] } {
    const none = (ret: number) => ({ ret, slots: [] });
    switch (op) {
      case H_GET_TCE: {
        const w = this.win(a[0]!);
        if (w === undefined) return none(H_PARAMETER);
        const i = this.index(w, a[1]!);
        if (i < 0) return none(H_PARAMETER);
        return { ret: H_SUCCESS, value: this.get(w, i), slots: [] };
      }
      case H_PUT_TCE: {
        const w = this.win(a[0]!);
        if (w === undefined) return none(H_PARAMETER);
        const i = this.index(w, a[1]!);
        if (i < 0 || !this.valid(w, a[2]!)) return none(H_PARAMETER);
        return { ret: H_SUCCESS, slots: [{ w, i, tce: a[2]! }] };
      }
      case H_STUFF_TCE: {
        const w = this.win(a[0]!);
        if (w === undefined) return none(H_PARAMETER);
        if (a[3]! > 512n) return none(H_P4);
        const i = this.index(w, a[1]!);
        const entries = Number(w.size >> BigInt(w.shift));
        if (i < 0 || a[3]! > BigInt(entries - i) || !this.valid(w, a[2]!)) return none(H_PARAMETER);
        return { ret: H_SUCCESS, slots: Array.from({ length: Number(a[3]!) }, (_, k) => ({ w, i: i + k, tce: a[2]! })) };
      }
      case H_PUT_TCE_INDIRECT: {
        if (a[0]! >= 1n << 63n) return none(H_FUNCTION);
        const w = this.win(a[0]!);
        if (w === undefined || a[3]! > 512n) return none(H_PARAMETER);
        const n = Number(a[3]!);
        if (a[2]! % 4096n !== 0n || a[2]! + BigInt(n) * 8n > MEM) return none(H_PARAMETER);
        const i = this.index(w, a[1]!);
        const entries = Number(w.size >> BigInt(w.shift));
        if (i < 0 || n > entries - i) return none(H_PARAMETER);
        const tces = list(a[2]!, n)!;
        if (tces.some((t) => !this.valid(w, t))) return none(H_PARAMETER);
        return { ret: H_SUCCESS, slots: tces.map((tce, k) => ({ w, i: i + k, tce })) };
      }
      default:
        return none(H_FUNCTION);
    }
  }

  store(slots: readonly { w: Win; i: number; tce: bigint }[]): void {
    for (const s of slots) this.tces.set(`${s.w.liobn}:${s.i}`, s.tce);
  }
}

const bswap64 = (v: bigint) => {
  let out = 0n;
  for (let i = 0; i < 8; i++) out = (out << 8n) | ((v >> BigInt(8 * i)) & 0xffn);
  return out;
};

/** One hcall in symbolic form: which LIOBN/IOBA/TCE class, resolved against the live windows. */
interface Hcall {
  readonly op: number;
  readonly liobn: number;
  readonly ioba: number;
  readonly tce: number;
  readonly count: number;
  readonly list: number;
  readonly raw: readonly bigint[];
}

const hcallArb: fc.Arbitrary<Hcall> = fc.record({
  op: fc.oneof({ weight: 10, arbitrary: fc.constantFrom(H_GET_TCE, H_PUT_TCE, H_STUFF_TCE, H_PUT_TCE_INDIRECT) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x400 }) }),
  // mostly well-formed (indices 0–3 of each class), sometimes hostile
  liobn: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 4, max: 9 }) }),
  ioba: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 4, max: 9 }) }),
  tce: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 4, max: 9 }) }),
  count: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 5 }) }, { weight: 1, arbitrary: fc.integer({ min: 6, max: 9 }) }),
  list: fc.integer({ min: 0, max: 5 }),
  raw: fc.array(fc.bigInt({ min: 0n, max: U64 }), { minLength: 4, maxLength: 4 }),
});

function resolve(h: Hcall, wins: readonly Win[]): bigint[] {
  const w = wins[h.liobn % wins.length]!;
  const liobn = [w.liobn, w.liobn, w.liobn, w.liobn, 0n, 0xdeadn, h.raw[0]!, (1n << 63n) | w.liobn, w.liobn + 0x100000000n, wins[(h.liobn + 1) % wins.length]!.liobn][h.liobn]!;
  const page = 1n << BigInt(w.shift);
  const ioba = [w.start, w.start + page * 3n, w.start + page * 17n, w.start + w.size - page, w.start + w.size, w.start + 0x800n, h.raw[1]!, w.start + page * 5n + 8n, 1n << 59n, U64 - 0xfffn][h.ioba]!;
  const rpn = DATA + BigInt(h.tce % 8) * page;
  const tce = [rpn | 3n, rpn | 1n, rpn | 2n, 0n, rpn | 0x10n | 3n, MEM | 3n, (MEM - 0x1000n) | 3n, h.raw[2]!, rpn, (rpn + 0x800n) | 3n][h.tce]!;
  const cnt = [0n, 1n, 2n, 3n, 16n, 512n, 513n, 0x10000n, h.raw[3]! & 0xffffn, U64][h.count]!;
  const list = [LISTS, LISTS + 0x1000n, LISTS + 0x8n, MEM - 0x8n, MEM + 0x1000n, LISTS + 0x2000n][h.list]!;
  switch (h.op) {
    case H_GET_TCE:
      return [liobn, ioba];
    case H_PUT_TCE:
      return [liobn, ioba, tce];
    case H_STUFF_TCE:
      return [liobn, ioba, tce, cnt];
    case H_PUT_TCE_INDIRECT:
      return [liobn, ioba, list, cnt > 600n ? cnt : cnt];
    default:
      return [...h.raw];
  }
}

describe('sPAPR hypervisor: hostile hcalls, RTAS and TCE contents', () => {
  it('every TCE hcall gets LoPAR\'s return code, stores exactly the slots it names, and nothing else', () => {
    fc.assert(
      fc.property(fc.array(hcallArb, { minLength: 1, maxLength: runs(40, 80) }), fc.array(fc.bigInt({ min: 0n, max: U64 }), { minLength: 8, maxLength: 8 }), (calls, junk) => {
        const { mem, hv } = machine();
        // a 64-bit window too, so that calls meet two page sizes
        const [bHi, bLo] = buidCells(hv.buid);
        const cfg = hv.configAddr(DEV);
        const created = hv.rtas(RTAS_CREATE_PE_DMA_WINDOW, [cfg, bHi, bLo, 16, 32]);
        expect(created.status).toBe(0);
        const wins = [...windows(hv, DEV), ...windows(hv, OTHER)];
        const ref = new TceReference(wins);
        // TCE lists (big-endian): valid ones, one with a bad entry, junk
        const lists: bigint[][] = [
          Array.from({ length: 600 }, (_, k) => (DATA + BigInt(k % 8) * 0x1000n) | 3n),
          Array.from({ length: 600 }, (_, k) => (k === 1 ? MEM | 3n : (DATA + BigInt(k % 8) * 0x10000n) | 1n)),
          Array.from({ length: 600 }, (_, k) => junk[k % 8]!),
        ];
        lists.forEach((l, j) => {
          l.forEach((t, k) => {
            mem.inner.write64(LISTS + BigInt(j) * 0x1000n + BigInt(k) * 8n, bswap64(t));
          });
        });
        const readList = (addr: bigint, n: number) => Array.from({ length: n }, (_, k) => bswap64(mem.inner.read64(addr + BigInt(k) * 8n)));
        for (const h of calls) {
          const args = resolve(h, wins);
          const want = ref.call(h.op, args, readList);
          mem.arm(BUDGET);
          mem.writes.length = 0;
          mem.recording = true;
          const got = hv.hcall(h.op, ...args);
          mem.recording = false;
          count(ID, 'malformed');
          const what = `hcall 0x${h.op.toString(16)}(${args.map((x) => `0x${x.toString(16)}`).join(', ')})`;
          expect(got.ret, what).toBe(want.ret);
          if (want.value !== undefined) expect(got.values[0], what).toBe(want.value);
          // writes: only the TCE slots the call stores (8 bytes each, in the window's table)
          const allowed: Region[] = want.ret === H_SUCCESS ? want.slots.map((s) => ({ start: Number(s.w.table) + s.i * 8, end: Number(s.w.table) + s.i * 8 + 8 })) : [];
          expect(writesOutside(mem, allowed), `${what} wrote outside the slots it names`).toEqual([]);
          if (want.ret === H_SUCCESS) ref.store(want.slots);
          for (const s of want.slots.slice(0, 4)) {
            const back = hv.hcall(H_GET_TCE, s.w.liobn, s.w.start + (BigInt(s.i) << BigInt(s.w.shift)));
            expect(back.values[0], `${what}: slot ${s.i} reads back`).toBe(ref.get(s.w, s.i));
          }
        }
        count(ID, 'sequences');
        count(ID, 'operations', calls.length);
      }),
      fcParams('hostile papr hcalls', 80, 4000),
    );
  });

  it('garbage RTAS calls (names, arities, config addresses, BUIDs, options) answer a status, never throw or write memory', () => {
    const names = [RTAS_QUERY_PE_DMA_WINDOW, RTAS_CREATE_PE_DMA_WINDOW, RTAS_REMOVE_PE_DMA_WINDOW, RTAS_RESET_PE_DMA_WINDOWS, 'ibm,reset-pe-dma-window', RTAS_SET_EEH_OPTION, RTAS_SET_SLOT_RESET, RTAS_READ_SLOT_RESET_STATE2, 'ibm,nonsense', ''];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            name: fc.integer({ min: 0, max: names.length - 1 }),
            cfg: fc.integer({ min: 0, max: 3 }),
            buid: fc.integer({ min: 0, max: 2 }),
            rest: fc.array(fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: -5, max: 0x7fffffff })), { maxLength: 5 }),
            arity: fc.integer({ min: 0, max: 8 }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        (calls) => {
          const { mem, hv } = machine();
          const [bHi, bLo] = buidCells(hv.buid);
          for (const c of calls) {
            const cfg = [hv.configAddr(DEV), hv.configAddr(OTHER), 0, 0x7f00][c.cfg]!;
            const buid = [[bHi, bLo], [bHi, bLo + 1], [0, 0]][c.buid]!;
            const args = [cfg, ...buid, ...c.rest].slice(0, Math.max(c.arity, 0));
            const name = names[c.name]!;
            mem.arm(BUDGET);
            mem.writes.length = 0;
            mem.recording = true;
            const r = hv.rtas(name, args);
            mem.recording = false;
            count(ID, 'malformed');
            expect(Number.isInteger(r.status), `${name}(${args.join(', ')})`).toBe(true);
            expect(r.outputs.every((o) => Number.isFinite(o))).toBe(true);
            if (!name.startsWith('ibm,') || name === 'ibm,nonsense') expect(r.status).toBeLessThan(0);
            expect(mem.changes(), `${name}(${args.join(', ')}) wrote memory`).toEqual([]);
            for (const d of [DEV, OTHER]) expect([0, 1, 2, 4, 5]).toContain(hv.peState(d));
          }
          count(ID, 'sequences');
          count(ID, 'operations', calls.length);
        },
      ),
      fcParams('hostile papr rtas', 100, 5000),
    );
  });

  it('random TCE contents under DMA: data from the page a TCE names or a fault that freezes only that PE; recovery by EEH', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 15 }), fc.oneof(fc.bigInt({ min: 0n, max: U64 }), fc.bigInt({ min: 0n, max: 7n }).map((k) => (DATA + k * 0x1000n) | 3n), fc.constant(MEM | 3n), fc.constant((MEM - 0x1000n) | 1n))), { minLength: 1, maxLength: 16 }),
        fc.array(fc.record({ page: fc.integer({ min: 0, max: 17 }), off: fc.integer({ min: 0, max: 4095 }), size: fc.constantFrom(1, 4, 8), write: fc.boolean() }), { minLength: 1, maxLength: 16 }),
        (entries, dmas) => {
          const { mem, hv } = machine();
          const [bHi, bLo] = buidCells(hv.buid);
          const w = windows(hv, DEV)[0]!;
          const tces = new Map<number, bigint>();
          for (const [i, v] of entries) {
            // straight into the TCE table (big-endian), as a corrupted or hostile table would be
            mem.inner.write64(w.table + BigInt(i) * 8n, bswap64(v));
            tces.set(i, v);
          }
          // the other PE maps its page 0 for real
          const other = windows(hv, OTHER)[0]!;
          expect(hv.hcall(H_PUT_TCE, other.liobn, 0n, DATA | 3n).ret).toBe(H_SUCCESS);
          for (const d of dmas) {
            const iova = BigInt(d.page) * 0x1000n + BigInt(Math.min(d.off, 4096 - d.size));
            const tce = tces.get(d.page) ?? 0n;
            const need = d.write ? 2n : 1n;
            const page = tce & ~0xfffn;
            const reservedSet = (tce & 0xffcn) !== 0n;
            const reachable = (tce & need) !== 0n && page + 0x1000n <= MEM;
            const data = new Uint8Array(d.size).fill(0x3c);
            mem.arm(BUDGET);
            mem.writes.length = 0;
            mem.recording = true;
            const r = hv.dma({ device: DEV, iova, size: d.size, write: d.write, ...(d.write ? { data } : {}) });
            mem.recording = false;
            count(ID, 'malformed');
            const what = `DMA ${d.write ? 'write' : 'read'} at 0x${iova.toString(16)} through TCE 0x${tce.toString(16)}`;
            if (!r.ok) {
              expect(mem.changes(), `${what}: a failed DMA wrote memory`).toEqual([]);
              expect(reachable && !reservedSet, `${what}: faulted (${r.fault.name}) although the TCE allows it`).toBe(false);
              expect(hv.peState(DEV)).toBe(2); // EEH: the PE is frozen
              // the other PE is not
              expect(hv.dma({ device: OTHER, iova: 0n, size: 4, write: false }).ok).toBe(true);
              const again = hv.dma({ device: DEV, iova, size: d.size, write: false });
              expect(!again.ok && again.fault.class).toBe('frozen');
              // recovery: thaw MMIO (2 → 4), thaw DMA (4 → 0)
              const cfg = hv.configAddr(DEV);
              expect(hv.rtas(RTAS_SET_EEH_OPTION, [cfg, bHi, bLo, 2]).status).toBe(0);
              expect(hv.rtas(RTAS_SET_EEH_OPTION, [cfg, bHi, bLo, 3]).status).toBe(0);
              expect(hv.peState(DEV)).toBe(0);
              continue;
            }
            expect(reachable, `${what}: went through a TCE that does not allow it`).toBe(true);
            const at = page + (iova & 0xfffn);
            if (d.write) {
              expect(mem.changes().every((x) => BigInt(x.addr) >= at && BigInt(x.addr + x.length) <= at + BigInt(d.size)), `${what}: wrote elsewhere`).toBe(true);
              expect(mem.inner.read(at, d.size)).toEqual(data);
            } else {
              expect(mem.changes()).toEqual([]);
              expect(r.data).toEqual(mem.inner.read(at, d.size));
            }
          }
          count(ID, 'sequences');
          count(ID, 'operations', entries.length + dmas.length);
        },
      ),
      fcParams('hostile papr tces', 150, 8000),
    );
  });
});
