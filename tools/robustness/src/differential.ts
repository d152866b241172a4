/**
 * The differential harness: a system of one backend and the {@link Model} driven in lockstep by
 * a sequence of {@link Op}s. Every operation's outcome (errno or result) must be the model's;
 * after every operation, DMA probes at mapped, unmapped, boundary and reserved addresses, from
 * every device with and without PASIDs, must read exactly the bytes the model says (the bytes
 * written through the process or by an earlier DMA) or fault; pin counts must be the model's;
 * and once every context is closed, frames in use and pins are back at their starting values.
 */

import type { System } from '@ioasid/core';
import {
  IoasidError,
  U64_MAX,
  type DeviceSpec,
  type DmaResult,
  type ErrnoName,
  type FaultClass,
  type GuestMemory,
  type GuestStage1,
  type HwInfo,
  type IoasidContext,
  type IovaRange,
  type Process,
} from '@ioasid/uapi';
import type { BackendUnderTest } from './backends.js';
import {
  GUEST_KEY_BASE,
  KEYS_PER_PROC,
  Model,
  ModelCtx,
  RID,
  ModelIoas,
  ModelProc,
  newHwpt,
  type ModelArea,
  type ModelDev,
  type ModelHwpt,
  type ModelRules,
  type PageKey,
  type Prediction,
  type Reach,
} from './model.js';
import { count } from './stats.js';

const PAGE = 0x1000n;
const PAGE_N = 4096;

/** The machine every sequence runs on: a PF with a VF and two mediated devices, and a second PF. */
export const DEVICES: readonly (string | DeviceSpec)[] = [{ name: '0000:00:02.0', vfs: 1, mdevs: 2 }, '0000:00:03.0'];
/** Device names in model order: PF1, VF1, mdev0, mdev1, PF2. */
export const DEVICE_NAMES = ['0000:00:02.0', '0000:00:02.1', '0000:00:02.0/mdev0', '0000:00:02.0/mdev1', '0000:00:03.0'] as const;
/**
 * The context each device is bound to at the start: PF1, VF1, mdev0, mdev1 → 0; PF2 → 1. A
 * parent and its mdevs are never bound by two contexts (core's DMA-ownership rule, FINDINGS.md
 * F1), so both mdevs start with their parent; random unbind/bind steps move them apart.
 */
export const HOME_CTX = [0, 0, 0, 0, 1] as const;
/** Pages of each process's buffer pool the sequences use (from a 2 MiB-aligned 2 MiB mmap). */
export const POOL_PAGES = 64;
/** Guest RAM of the nesting set-up: pages, and how many of the first ones are data pages. */
export const GUEST_PAGES = 256;
/** The guest's data pages (GPA base + j·4K, j < 16); its stage-1 tables come after them. */
export const GUEST_DATA_PAGES = 16;
/** PASIDs the sequences attach explicitly. */
export const FIXED_PASIDS = [1, 2, 3] as const;
/** A PASID nobody ever allocates (probes with it must fault). */
export const STRAY_PASID = 0x7777;
/** Guest IOVAs the stage-1 tables map: GIOVA_BASE + g·4K. */
export const GIOVA_BASE = 0x10000n;

// ---------------------------------------------------------------------------- operations

/** One step of a sequence. Small integers select objects; out-of-range ones wrap. */
export type Op =
  | { readonly t: 'map'; readonly c: number; readonly io: number; readonly a: number; readonly s: number; readonly n: number; readonly v: number; readonly w: boolean }
  | { readonly t: 'mapAuto'; readonly c: number; readonly io: number; readonly n: number; readonly v: number; readonly w: boolean }
  | { readonly t: 'unmap'; readonly c: number; readonly io: number; readonly a: number; readonly s: number; readonly n: number }
  | { readonly t: 'unmapAll'; readonly c: number; readonly io: number }
  | { readonly t: 'unmapArea'; readonly c: number; readonly io: number; readonly i: number }
  | { readonly t: 'copyArea'; readonly c: number; readonly dst: number; readonly src: number; readonly i: number; readonly a2: number; readonly s2: number; readonly w: boolean }
  | { readonly t: 'copy'; readonly c: number; readonly dst: number; readonly src: number; readonly a: number; readonly s: number; readonly n: number; readonly s2: number; readonly a2: number; readonly w: boolean }
  | { readonly t: 'attach'; readonly d: number; readonly tgt: number; readonly p: number }
  | { readonly t: 'detach'; readonly d: number; readonly p: number }
  | { readonly t: 'bind'; readonly c: number; readonly d: number }
  | { readonly t: 'unbind'; readonly d: number }
  | { readonly t: 'allocHwpt'; readonly d: number; readonly io: number; readonly kind: number; readonly slot: number }
  | { readonly t: 'destroyHwpt'; readonly c: number; readonly slot: number }
  | { readonly t: 'nestAlloc'; readonly k: number }
  | { readonly t: 'nestFree'; readonly k: number }
  | { readonly t: 's1map'; readonly k: number; readonly g: number; readonly tgt: number; readonly w: boolean }
  | { readonly t: 's1unmap'; readonly k: number; readonly g: number }
  | { readonly t: 'bindSva'; readonly d: number }
  | { readonly t: 'unbindSva'; readonly d: number }
  | { readonly t: 'munmap'; readonly c: number; readonly v: number }
  | { readonly t: 'procWrite'; readonly c: number; readonly v: number; readonly seed: number }
  | { readonly t: 'dmaWrite'; readonly d: number; readonly key: number; readonly probe: number; readonly len: number; readonly seed: number }
  | { readonly t: 'close'; readonly c: number }
  | { readonly t: 'inject'; readonly n: number; readonly op: Op };

/** A model/system disagreement: the message says which step, what was expected and what happened. */
export class Divergence extends Error {
  override name = 'Divergence';
}

// ---------------------------------------------------------------------------- helpers

/** The byte at `offset` of page `key` before anything writes it. */
export function initialByte(key: PageKey, offset: number): number {
  let h = Math.imul(key + 1, 0x9e3779b1) ^ Math.imul(offset + 1, 0x85ebca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return (h >>> 24) & 0xff;
}

/** The initial contents of page `key`. */
export function initialPage(key: PageKey): Uint8Array {
  const out = new Uint8Array(PAGE_N);
  for (let i = 0; i < PAGE_N; i++) out[i] = initialByte(key, i);
  return out;
}

/** A deterministic byte stream from a seed (xorshift32). */
export function bytesFrom(seed: number, n: number): Uint8Array {
  let x = (seed | 0) || 0x1234567;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

function errnoOf(f: () => unknown): { errno: ErrnoName | undefined; value: unknown; error: unknown } {
  try {
    return { errno: undefined, value: f(), error: undefined };
  } catch (e) {
    if (e instanceof IoasidError) return { errno: e.errno, value: undefined, error: e };
    return { errno: undefined, value: undefined, error: e };
  }
}

/** An IOVA region the sequences map into: `slots` units of `unit` bytes from `base`. */
export interface Arena {
  /** First IOVA. */
  readonly base: bigint;
  /** Bytes per slot (the IOMMU page the region needs). */
  readonly unit: bigint;
  /** Number of slots. */
  readonly slots: number;
  /** What it is for (in messages). */
  readonly label: string;
}

/**
 * The arenas of a device: the start and the end of each IOVA range (the end one running past
 * it), and both edges of each reserved region (running into it).
 */
export function arenasOf(info: HwInfo, unitFor: (r: IovaRange) => bigint): Arena[] {
  const out: Arena[] = [];
  const add = (base: bigint, unit: bigint, slots: number, label: string) => {
    if (base < 0n) return;
    const end = base + BigInt(slots) * unit - 1n;
    const fit = end > U64_MAX ? Number((U64_MAX + 1n - base) / unit) : slots;
    if (fit > 0 && !out.some((a) => a.base === base)) out.push({ base, unit, slots: fit, label });
  };
  for (const r of info.iovaRanges) {
    const u = unitFor(r);
    const start = r.start === 0n ? 0x100000n : r.start;
    add((start + u - 1n) & ~(u - 1n), u, 12, `start of [${hex(r.start)}, ${hex(r.last)}]`);
    add(((r.last + 1n) & ~(u - 1n)) - 8n * u, u, 12, `end of [${hex(r.start)}, ${hex(r.last)}]`);
  }
  for (const rr of info.reservedRegions) {
    add((rr.start & ~0xfffn) - 6n * PAGE, PAGE, 12, `start of reserved ${rr.kind} ${hex(rr.start)}`);
    add(((rr.last + 1n) & ~0xfffn) - 6n * PAGE, PAGE, 12, `end of reserved ${rr.kind} ${hex(rr.last)}`);
  }
  return out;
}

/** Fault classes acceptable for each reason a page is not reachable. */
const CLASSES: Record<Exclude<Reach, { ok: true }>['why'] | 'readonly', readonly FaultClass[]> = {
  blocked: ['blocked', 'translation', 'bad-config'],
  unmapped: ['translation', 'address-size', 'page-request'],
  walk: ['translation', 'bad-config', 'external-abort', 'address-size', 'page-request'],
  // a device with PRI enabled (it has an SVA or IOPF binding) may turn a permission fault into a page request
  readonly: ['permission', 'page-request'],
};

/** A part of a DMA inside one page: the page's key, or undefined for a page the DMA cannot reach. */
interface Span {
  readonly key: PageKey | undefined;
  readonly offset: number;
  readonly length: number;
}

/** What a DMA should do: its spans; whether it must (or may: MSI doorbell) fault, and with which classes. */
interface Expected {
  readonly mustFault: boolean;
  readonly mayFault: boolean;
  readonly spans: readonly Span[];
  readonly classes: ReadonlySet<FaultClass>;
  readonly why: string;
}

/** A probe: a DMA one device issues with one PASID. */
interface Probe {
  readonly iova: bigint;
  readonly size: number;
}

// ---------------------------------------------------------------------------- the harness

/** What a sequence did. */
export interface SequenceResult {
  /** uAPI operations executed. */
  operations: number;
  /** DMA probes compared. */
  probes: number;
}

/** Options of a sequence run. */
export interface HarnessOptions {
  /** Probe after every operation (default true); false probes only at the end. */
  readonly probeEveryStep?: boolean;
  /** Start with {@link OPENING} (default true). */
  readonly opening?: boolean;
}

/** One system and its model, driven in lockstep. */
export class Harness {
  /** The system under test. */
  readonly system: System;
  /** The reference model. */
  readonly model: Model;
  /** The two processes (VMs), one per context. */
  readonly procs: Process[] = [];
  /** The two contexts. */
  readonly ctxs: IoasidContext[] = [];
  /** Their models. */
  readonly mctxs: ModelCtx[] = [];
  /** The devices' models (PF1, VF1, mdev0, mdev1, PF2). */
  readonly devs: ModelDev[] = [];
  /** hw_info of PF1 (every device of the system has the same apertures). */
  readonly info: HwInfo;
  /** The IOVA arenas the operations map into. */
  readonly arenas: Arena[];
  /** What each tracked page holds (written through the process or by a DMA). */
  readonly shadow = new Map<PageKey, Uint8Array>();
  /** ioas ids per context. */
  readonly ioasIds: number[][] = [];
  /** Explicit HWPT slots per context. */
  readonly slots: (ModelHwpt | undefined)[][] = [[undefined, undefined], [undefined, undefined]];
  /** The nest parent (context 0), when the backend nests. */
  nestParent: ModelHwpt | undefined;
  /** Nested HWPTs and their guest stage 1s. */
  readonly nested: ({ h: ModelHwpt; s1: GuestStage1 } | undefined)[] = [undefined, undefined];
  /** The guest's RAM as the nesting guest builder sees it. */
  guestMem: GuestMemory | undefined;
  /** GPA of the guest RAM (an IOVA of context 0's first IOAS). */
  guestGpa = 0n;
  /** Frames in use before the contexts opened (after a warm-up). */
  readonly baselineFrames: number;
  private step = 0;
  private currentOp = '';
  /** uAPI operations executed. */
  operations = 0;
  /** fail_nth: the allocation to fail during the next uAPI operation (0: none). */
  private inject = 0;
  /** Allocation failures injected into operations of the sequence (each checked: ENOMEM, nothing changed). */
  failPoints = 0;
  /** DMA probes issued. */
  probes = 0;
  /** Coverage: probes that read data, probes that faulted, and per operation kind how many succeeded / failed (errno). */
  readonly coverage = { dataProbes: 0, faultProbes: 0, ops: new Map<string, number>() };
  private readonly boundary: Probe[];

  /**
   * Builds the system, the processes with their pools, the two contexts with two IOASes each,
   * binds the devices and (where the backend nests) the nest parent and the guest's RAM.
   * @param backend - the backend configuration
   * @param options - probing options
   */
  constructor(readonly backend: BackendUnderTest, private readonly options: HarnessOptions = {}) {
    const system = backend.create(DEVICES);
    this.system = system;
    // processes, their pools (2 MiB-aligned: 64 KiB pages need 64 KiB-aligned frames), CPU tables
    const mprocs: ModelProc[] = [];
    for (let p = 0; p < 2; p++) {
      const proc = system.createProcess();
      const pool = proc.mmap(0x200000n);
      proc.munmap(pool + BigInt(POOL_PAGES) * PAGE, 0x200000n - BigInt(POOL_PAGES) * PAGE); // keep the first 64 pages
      this.procs.push(proc);
      mprocs.push(new ModelProc(p, pool, POOL_PAGES));
      for (let i = 0; i < POOL_PAGES; i++) {
        const key = p * KEYS_PER_PROC + i;
        const data = initialPage(key);
        proc.write(pool + BigInt(i) * PAGE, data);
        this.shadow.set(key, data);
      }
      try {
        if (proc.pageTableRoot === 0n) throw new Divergence('no CPU page table'); // built now (SVA), so it is not counted later
      } catch (e) {
        // no CPU page-table format on this platform: no SVA
        if (!(e instanceof IoasidError)) throw e;
      }
    }
    let ram: bigint | undefined;
    if (backend.guest !== undefined) {
      ram = this.procs[0]!.mmap(BigInt(GUEST_PAGES) * PAGE);
      for (let j = 0; j < GUEST_DATA_PAGES; j++) {
        const data = initialPage(GUEST_KEY_BASE + j);
        this.procs[0]!.write(ram + BigInt(j) * PAGE, data);
        this.shadow.set(GUEST_KEY_BASE + j, data);
      }
    }
    // warm-up: what a driver keeps per device for good (context tables, PASID tables) is allocated now
    {
      const w = system.open(this.procs[0]!);
      const io = w.allocIoas();
      for (const name of [DEVICE_NAMES[0], DEVICE_NAMES[1], DEVICE_NAMES[4]]) {
        const id = w.bindDevice(name);
        w.attach(id, io);
        if (w.getInfo(id).pasidBits > 0) w.attach(id, io, { pasid: 1 });
      }
      w.close();
    }
    // the apertures of a paging and of a nest-parent domain, as the IOVA ranges of an IOAS whose only domain is one
    const apertures: { paging?: IovaRange[]; nestParent?: IovaRange[] } = {};
    {
      const w = system.open(this.procs[0]!);
      const id = w.bindDevice(DEVICE_NAMES[0]);
      const a = w.allocIoas();
      w.allocHwpt(id, { parent: a });
      apertures.paging = [...w.iovaRanges(a).ranges];
      if (w.getInfo(id).nestingFormats.length > 0) {
        const b = w.allocIoas();
        w.allocHwpt(id, { parent: b, flags: { nestParent: true } });
        apertures.nestParent = [...w.iovaRanges(b).ranges];
      }
      w.close();
    }
    this.baselineFrames = system.memory.framesInUse;

    for (let c = 0; c < 2; c++) {
      const ctx = system.open(this.procs[c]!);
      this.ctxs.push(ctx);
      const m = new ModelCtx(c, mprocs[c]!);
      this.mctxs.push(m);
      const ids = [ctx.allocIoas(), ctx.allocIoas()];
      this.ioasIds.push(ids);
      for (const id of ids) m.ioas.push(new ModelIoas(id));
      m.nextId = 3;
    }
    // devices: hw_info of each RID (an mdev's is its parent's)
    const probeCtx = this.ctxs[0]!;
    const infos = new Map<string, HwInfo>();
    for (const name of [DEVICE_NAMES[0], DEVICE_NAMES[1], DEVICE_NAMES[4]]) {
      const id = probeCtx.bindDevice(name);
      infos.set(name, probeCtx.getInfo(id));
      probeCtx.unbindDevice(id);
    }
    this.mctxs[0]!.nextId += 3; // the three ids just used
    this.info = infos.get(DEVICE_NAMES[0])!;
    DEVICE_NAMES.forEach((name, idx) => {
      const kind = idx === 1 ? 'vf' : idx === 2 || idx === 3 ? 'mdev' : 'pf';
      const ridName = kind === 'mdev' ? DEVICE_NAMES[0] : name;
      this.devs.push({
        idx, name, kind, parent: kind === 'mdev' ? 0 : undefined, info: infos.get(ridName)!, ridName,
        owner: undefined, id: undefined, lastIds: new Map(), attached: new Map(), mdevPasid: undefined, vpasids: new Map(),
      });
    });
    for (const d of this.devs) {
      if (JSON.stringify(d.info.iovaRanges, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) !==
        JSON.stringify(this.info.iovaRanges, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) {
        throw new Divergence(`${d.name} has other IOVA ranges than ${DEVICE_NAMES[0]}: the model assumes one aperture per system`);
      }
    }
    const rules: ModelRules = {
      apertures: apertures.paging,
      ...(apertures.nestParent === undefined ? {} : { nestParentApertures: apertures.nestParent }),
      attachConflict: (dev, allocDev) =>
        // PAPR: a domain is made of one PE's TCE tables; another PE cannot use it
        this.info.dmaFaultFreezes === true && dev.ridName !== allocDev.ridName ? 'EINVAL' : undefined,
      ...(backend.id.startsWith('arm-smmuv3') ? { attachRules: (dev, target, wire) => this.smmuRules(dev, target, wire) } : {}),
    };
    this.model = new Model(this.mctxs, this.devs, rules);
    this.arenas = arenasOf(this.info, (r) => backend.unitFor(r));
    this.boundary = this.boundaryProbes();
    // initial binding (through the model: mdevs on a backend without PASIDs must be EOPNOTSUPP)
    this.currentOp = 'set-up';
    for (const d of this.devs) this.doBind(HOME_CTX[d.idx]!, d.idx);
    if (backend.guest !== undefined && ram !== undefined && this.info.nestingFormats.includes(backend.guest.format)) this.setUpNesting(ram);
    this.checkPins();
  }

  /**
   * SMMUv3 (IHI0070 §3.3.2, Linux arm-smmu-v3): a SubstreamID selects a CD of the stream's CD
   * table, so a PASID takes only stage-1 domains (a stage-2 nest parent or a nested domain —
   * which owns the whole CD table — is EINVAL), a PASID cannot be added while the RID uses a
   * stage-2 or nested STE, and the RID cannot move to one while PASIDs use the CD table (EBUSY).
   */
  private smmuRules(dev: ModelDev, target: ModelHwpt | undefined, wire: number | undefined): { errno: ErrnoName; when: 'conflict' | 'driver' } | undefined {
    const s2OrNested = (h: ModelHwpt | undefined) => h !== undefined && (h.kind === 'nested' || (h.kind === 'paging' && h.nestParent));
    if (wire !== undefined && s2OrNested(target)) return { errno: 'EINVAL', when: 'conflict' };
    const rid = this.devs.find((d) => d.name === dev.ridName)!;
    const ridNow = rid.owner === undefined ? undefined : rid.attached.get(RID);
    if (wire !== undefined && s2OrNested(ridNow)) return { errno: 'EBUSY', when: 'driver' };
    if (wire === undefined && dev.kind !== 'mdev' && s2OrNested(target)) {
      const pasids = [...rid.attached.keys()].some((k) => k >= 0) ||
        this.devs.some((m) => m.parent === rid.idx && m.owner !== undefined && m.attached.size > 0);
      if (pasids) return { errno: 'EBUSY', when: 'driver' };
    }
    return undefined;
  }

  // ------------------------------------------------------------------ set-up helpers

  private setUpNesting(ram: bigint): void {
    const ctx = this.ctxs[0]!;
    const m = this.mctxs[0]!;
    const io = m.ioas[0]!;
    const pf = this.devs[0]!;
    const pred = this.model.allocPaging(m, pf, io, { nestParent: true, pasid: false });
    const id = this.expectOk(pred, () => ctx.allocHwpt(pf.id!, { parent: io.id, flags: { nestParent: true } }));
    this.nestParent = m.hwpts.get(id);
    // guest RAM at a GPA in the first range, away from the arenas
    const gpa = 0x40000000n;
    const len = BigInt(GUEST_PAGES) * PAGE;
    this.guestGpa = gpa;
    ctx.mapDma(io.id, { iova: gpa, vaddr: ram, length: len });
    io.areas.push({ start: gpa, last: gpa + len - 1n, keys: Array.from({ length: GUEST_PAGES }, (_, j) => GUEST_KEY_BASE + j), write: true });
    this.model.guestRam = { ioas: io, gpa, pages: GUEST_PAGES, dataPages: GUEST_DATA_PAGES };
    const proc = this.procs[0]!;
    let next = gpa + BigInt(GUEST_DATA_PAGES) * PAGE;
    this.guestMem = {
      read64(g: bigint): bigint {
        const b = proc.read(ram + (g - gpa), 8);
        let v = 0n;
        for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        return v;
      },
      write64(g: bigint, value: bigint): void {
        const b = new Uint8Array(8);
        for (let i = 0; i < 8; i++) b[i] = Number((value >> BigInt(8 * i)) & 0xffn);
        proc.write(ram + (g - gpa), b);
      },
      alloc(bytes = 4096): bigint {
        const size = BigInt(Math.max(4096, bytes));
        const at = (next + size - 1n) & ~(size - 1n);
        if (at + size > gpa + len) throw new RangeError('guest RAM exhausted');
        next = at + size;
        proc.write(ram + (at - gpa), new Uint8Array(Number(size)));
        return at;
      },
    };
  }

  private boundaryProbes(): Probe[] {
    const out: Probe[] = [];
    const add = (iova: bigint, size = 8) => {
      if (iova >= 0n && iova + BigInt(size) - 1n <= U64_MAX && !out.some((p) => p.iova === iova)) out.push({ iova, size });
    };
    for (const r of this.info.iovaRanges) {
      add(r.start);
      if (r.start >= 4n) add(r.start - 4n); // straddles the start of the range
      add(r.last - 7n);
      if (r.last < U64_MAX - 8n) {
        add(r.last - 3n); // straddles the end
        add(r.last + 1n);
      }
    }
    for (const rr of this.info.reservedRegions) {
      add(rr.start);
      add(rr.start - 4n);
      add(rr.last + 1n);
    }
    add(0n);
    return out;
  }

  // ------------------------------------------------------------------ checking

  private fail(msg: string): never {
    throw new Divergence(`[${this.backend.id}] step ${this.step} (${this.currentOp}): ${msg}`);
  }

  /** Runs `f` and checks its outcome against the prediction; returns the result on success. */
  private expect<R>(pred: Prediction<R>, f: () => R): R | undefined {
    this.operations++;
    const inj = this.system.failNth;
    if (this.inject > 0) inj.arm(this.inject);
    let r: ReturnType<typeof errnoOf>;
    let fired = false;
    try {
      r = errnoOf(f);
    } finally {
      if (this.inject > 0) {
        fired = inj.hasFired;
        inj.disarm();
        this.inject = 0; // one operation per injection
      }
    }
    if (r.error !== undefined && r.errno === undefined) this.fail(`threw a non-IoasidError: ${(r.error as Error).message}`);
    const op = this.currentOp.startsWith('{') ? this.currentOp.slice(6, this.currentOp.indexOf('"', 6)) : this.currentOp;
    const tag = `${op === 'inject' ? (/"op":\{"t":"(\w+)"/.exec(this.currentOp)?.[1] ?? op) : op} ${pred.errno ?? 'ok'}`;
    this.coverage.ops.set(tag, (this.coverage.ops.get(tag) ?? 0) + 1);
    if (fired && r.errno === 'ENOMEM') {
      // an injected allocation failure: ENOMEM, and (the next probes and pin checks see to it) nothing changed
      this.failPoints++;
      return undefined;
    }
    if (fired && r.errno !== undefined && r.errno !== pred.errno) this.fail(`the injected allocation failure surfaced as ${(r.error as Error).message}, not ENOMEM`);
    if (pred.errno !== undefined) {
      if (r.errno !== pred.errno) {
        this.fail(`expected ${pred.errno} (${pred.why}), got ${r.errno === undefined ? 'success' : (r.error as Error).message}`);
      }
      return undefined;
    }
    if (r.errno !== undefined) this.fail(`expected success (${pred.why}), got ${(r.error as Error).message}`);
    const mismatch = pred.commit(r.value as R);
    if (mismatch !== undefined) this.fail(mismatch);
    return r.value as R;
  }

  private expectOk<R>(pred: Prediction<R>, f: () => R): R {
    if (pred.errno !== undefined) this.fail(`set-up step refused by the model: ${pred.errno} (${pred.why})`);
    return this.expect(pred, f)!;
  }

  /** Pins: each process has exactly the pool/guest pages some IOAS of its context maps pinned. */
  checkPins(): void {
    for (let p = 0; p < 2; p++) {
      const keys = new Set<PageKey>();
      for (const io of this.mctxs[p]!.ioas) for (const a of io.areas) for (const k of a.keys) keys.add(k);
      const got = this.procs[p]!.pinCount();
      if (got !== keys.size) this.fail(`process ${p} has ${got} pages pinned, the model says ${keys.size}`);
    }
  }

  // ------------------------------------------------------------------ probing

  /** PASIDs to probe a device with: none, each attached one, its mediated devices' wire PASIDs, and a stray one. */
  private probePasids(d: ModelDev): (number | undefined)[] {
    const out: (number | undefined)[] = [undefined];
    if (d.info.pasidBits === 0) return out;
    for (const k of d.attached.keys()) if (k >= 0) out.push(k);
    if (d.kind !== 'mdev') {
      for (const m of this.devs) if (m.parent === d.idx && m.mdevPasid !== undefined) out.push(m.mdevPasid);
      for (const p of FIXED_PASIDS) if (!out.includes(p)) out.push(p);
      out.push(STRAY_PASID);
    } else out.push(7);
    return [...new Set(out)];
  }

  private probesFor(d: ModelDev, pasid: number | undefined): Probe[] {
    const h = this.model.attachmentFor(d, pasid);
    const out: Probe[] = [];
    const add = (iova: bigint, size = 8) => {
      if (iova >= 0n && iova + BigInt(size) - 1n <= U64_MAX && !out.some((p) => p.iova === iova && p.size === size)) out.push({ iova, size });
    };
    const areaProbes = (io: ModelIoas, cap: number) => {
      const areas = [...io.areas].sort((x, y) => (x.start < y.start ? -1 : 1)).slice(0, cap);
      for (const a of areas) {
        add(a.start);
        if (a.last - a.start >= PAGE) add(a.start + 0xffcn);
        add(a.last - 7n);
        if (a.last < U64_MAX - 8n) add(a.last + 1n);
      }
    };
    if (h === undefined) {
      for (const p of this.boundary.slice(0, 6)) add(p.iova, p.size);
      const c = d.owner ?? this.mctxs[HOME_CTX[d.idx]!]!;
      for (const io of c.ioas) areaProbes(io, 2);
    } else if (h.kind === 'auto' || h.kind === 'paging') {
      areaProbes(h.ioas!, 8);
      for (const p of this.boundary) add(p.iova, p.size);
    } else if (h.kind === 'nested') {
      let n = 0;
      for (const g of [...h.s1.keys()].sort((x, y) => (x < y ? -1 : 1))) {
        if (n++ === 8) break;
        add(g);
        add(g + 0xffcn);
      }
      add(GIOVA_BASE + 16n * PAGE);
      add(GIOVA_BASE - 8n);
      for (const p of this.boundary.slice(0, 4)) add(p.iova, p.size);
    } else {
      const p = h.proc!;
      add(p.poolBase);
      add(p.poolBase + 0xffcn);
      add(p.poolBase + BigInt(POOL_PAGES - 1) * PAGE + 0xff8n);
      add(p.poolBase + BigInt(POOL_PAGES) * PAGE); // past the pool
      let n = 0;
      for (let i = 0; i < POOL_PAGES && n < 4; i++) {
        if (!p.mapped[i]) {
          add(p.poolBase + BigInt(i) * PAGE);
          n++;
        }
      }
    }
    return out;
  }

  /** The expected outcome of a DMA of `size` bytes at `iova`: the pages' keys, or the fault reasons. */
  /**
   * The expected outcome of a DMA of `size` bytes at `iova`: data from the pages' keys, or a
   * fault. A page inside an MSI doorbell region is not memory: the IOMMU may fault, or take a
   * write as an interrupt message and answer a read with zeros — never with memory.
   */
  private expected(d: ModelDev, pasid: number | undefined, iova: bigint, size: number, write: boolean): Expected {
    const spans: Span[] = [];
    const classes = new Set<FaultClass>();
    const whys: string[] = [];
    let onlyMsi = true;
    let done = 0;
    while (done < size) {
      const a = iova + BigInt(done);
      const page = a & ~0xfffn;
      const off = Number(a - page);
      const n = Math.min(PAGE_N - off, size - done);
      const r = this.model.reach(d, pasid, page);
      if (!r.ok) {
        for (const c of CLASSES[r.why]) classes.add(c);
        if (write && r.s1ReadOnly === true) classes.add('permission'); // stage 1 refuses the write before stage 2 is walked
        whys.push(`${hex(page)} ${r.why}`);
        const msi = d.info.reservedRegions.some((rr) => rr.kind === 'msi' && rr.start <= page && page <= rr.last);
        onlyMsi &&= msi;
        spans.push({ key: undefined, offset: off, length: n });
      } else if (write && !r.write) {
        for (const c of CLASSES.readonly) classes.add(c);
        whys.push(`${hex(page)} read-only`);
        onlyMsi = false;
        spans.push({ key: r.key, offset: off, length: n });
      } else spans.push({ key: r.key, offset: off, length: n });
      done += n;
    }
    return { mustFault: whys.length > 0 && !onlyMsi, mayFault: whys.length > 0, spans, classes, why: whys.join(', ') };
  }

  private tracked(key: PageKey): boolean {
    return this.shadow.has(key);
  }

  private dma(d: ModelDev, pasid: number | undefined, iova: bigint, size: number, data?: Uint8Array): DmaResult {
    const ep = this.system.device(d.name);
    const req = data === undefined
      ? { iova, size, write: false, ...(pasid === undefined ? {} : { pasid }) }
      : { iova, size: data.length, write: true, data, ...(pasid === undefined ? {} : { pasid }) };
    let r: DmaResult;
    try {
      r = ep.dma(req);
    } catch (e) {
      this.fail(`DMA from ${d.name} pasid ${pasid ?? '-'} at ${hex(iova)} threw: ${String(e)}`);
    }
    this.probes++;
    if (r.ok) this.coverage.dataProbes++;
    else this.coverage.faultProbes++;
    if (!r.ok && this.backend.recover !== undefined) {
      if (r.fault.class === 'frozen') this.fail(`DMA from ${d.name} at ${hex(iova)} found the PE frozen although it was recovered`);
      if (!this.backend.recover(this.system, d.name)) this.fail(`EEH recovery of ${d.name} failed`);
    }
    return r;
  }

  private describe(d: ModelDev, pasid: number | undefined, iova: bigint, size: number, write: boolean): string {
    return `${write ? 'write' : 'read'} of ${size} bytes at ${hex(iova)} from ${d.name}${pasid === undefined ? '' : ` PASID ${pasid}`}`;
  }

  /** One read probe against the model. */
  private readProbe(d: ModelDev, pasid: number | undefined, p: Probe): void {
    const exp = this.expected(d, pasid, p.iova, p.size, false);
    const r = this.dma(d, pasid, p.iova, p.size);
    const what = this.describe(d, pasid, p.iova, p.size, false);
    if (!r.ok) {
      if (!exp.mayFault) this.fail(`${what}: expected data, got fault ${r.fault.class} ${r.fault.name}`);
      if (!exp.classes.has(r.fault.class)) this.fail(`${what}: fault class ${r.fault.class} (${r.fault.name}), expected one of ${[...exp.classes].join('/')} (${exp.why})`);
      return;
    }
    if (exp.mustFault) this.fail(`${what}: expected a fault (${exp.why}), got data [${[...r.data.subarray(0, 8)].map((b) => b.toString(16)).join(' ')}]`);
    if (r.data.length !== p.size) this.fail(`${what}: returned ${r.data.length} bytes`);
    let at = 0;
    for (const s of exp.spans) {
      const want = s.key === undefined ? new Uint8Array(s.length) : this.tracked(s.key) ? this.shadow.get(s.key)!.subarray(s.offset, s.offset + s.length) : undefined;
      if (want !== undefined) {
        for (let i = 0; i < s.length; i++) {
          if (r.data[at + i] !== want[i]) {
            this.fail(`${what}: byte ${at + i} is ${hex(r.data[at + i]!)}, ${s.key === undefined ? 'an MSI doorbell reads as 0' : `page ${s.key} holds ${hex(want[i]!)} (wrong memory reached)`}`);
          }
        }
      }
      at += s.length;
    }
  }

  /** Probes every device with every PASID at its probe addresses. */
  probeAll(): void {
    for (const d of this.devs) {
      for (const pasid of this.probePasids(d)) {
        for (const p of this.probesFor(d, pasid)) this.readProbe(d, pasid, p);
      }
    }
  }

  /** Every pool page still mapped in its process holds what the model says. */
  checkMemory(): void {
    for (let p = 0; p < 2; p++) {
      const mp = this.mctxs[p]!.proc;
      for (let i = 0; i < POOL_PAGES; i++) {
        if (!mp.mapped[i]) continue;
        const got = this.procs[p]!.read(mp.poolBase + BigInt(i) * PAGE, PAGE_N);
        const want = this.shadow.get(mp.key(i))!;
        for (let k = 0; k < PAGE_N; k++) {
          if (got[k] !== want[k]) this.fail(`process ${p} page ${i} byte ${k} is ${hex(got[k]!)}, expected ${hex(want[k]!)} (a stray write)`);
        }
      }
    }
  }

  // ------------------------------------------------------------------ operations

  private ctxOf(d: ModelDev): number {
    return d.owner?.index ?? HOME_CTX[d.idx]!;
  }

  private devId(c: number, d: ModelDev): number {
    return d.owner === this.mctxs[c] ? d.id! : (d.lastIds.get(c) ?? 0x7ff0);
  }

  private doBind(c: number, idx: number): void {
    const d = this.devs[idx]!;
    this.expect(this.model.bind(this.mctxs[c]!, d), () => this.ctxs[c]!.bindDevice(d.name));
  }

  /** The mappings of an IOAS the fuzz made (not the guest RAM), by IOVA. */
  private fuzzAreas(io: ModelIoas): ModelArea[] {
    return io.areas.filter((a) => a.keys[0]! < GUEST_KEY_BASE).sort((x, y) => (x.start < y.start ? -1 : 1));
  }

  private arena(a: number): Arena {
    return this.arenas[a % this.arenas.length]!;
  }

  /** Runs one operation, then checks pins and (unless disabled) probes. */
  run(op: Op): void {
    this.step++;
    this.currentOp = JSON.stringify(op);
    this.apply(op);
    this.checkPins();
    if (this.options.probeEveryStep !== false) this.probeAll();
  }

  private apply(op: Op): void {
    const model = this.model;
    switch (op.t) {
      case 'inject':
        // fail_nth inside a sequence: the n-th allocation of the operation fails
        this.inject = Math.max(1, op.n);
        try {
          this.apply(op.op);
        } finally {
          this.inject = 0;
        }
        return;
      case 'map': {
        const c = op.c & 1;
        const m = this.mctxs[c]!;
        const io = m.ioas[op.io & 1]!;
        const ar = this.arena(op.a);
        const unitPages = Number(ar.unit / PAGE);
        const units = Math.max(1, Math.min(op.n, Math.floor(POOL_PAGES / unitPages)));
        const s = op.s % ar.slots;
        const iova = ar.base + BigInt(s) * ar.unit;
        const npages = units * unitPages;
        const vunits = Math.floor(POOL_PAGES / unitPages) - units + 1;
        const vpage = (op.v % vunits) * unitPages;
        const length = BigInt(npages) * PAGE;
        this.expect(model.map(m, io, iova, vpage, npages, op.w), () => this.ctxs[c]!.mapDma(io.id, { iova, vaddr: m.proc.poolBase + BigInt(vpage) * PAGE, length, read: true, write: op.w }));
        return;
      }
      case 'mapAuto': {
        const c = op.c & 1;
        const m = this.mctxs[c]!;
        const io = m.ioas[op.io & 1]!;
        const n = Math.max(1, Math.min(op.n, 8));
        const vpage = op.v % (POOL_PAGES - n + 1);
        this.expect(model.mapAuto(m, io, vpage, n, op.w), () =>
          this.ctxs[c]!.mapDma(io.id, { vaddr: m.proc.poolBase + BigInt(vpage) * PAGE, length: BigInt(n) * PAGE, read: true, write: op.w }),
        );
        return;
      }
      case 'unmap': {
        const c = op.c & 1;
        const m = this.mctxs[c]!;
        const io = m.ioas[op.io & 1]!;
        const ar = this.arena(op.a);
        const iova = ar.base + BigInt(op.s % ar.slots) * ar.unit;
        const length = BigInt(Math.max(1, op.n)) * ar.unit;
        this.expect(model.unmap(m, io, iova, length, false), () => this.ctxs[c]!.unmapDma(io.id, { iova, length }));
        return;
      }
      case 'unmapArea': {
        // unmap exactly the i-th mapping (by IOVA) of the IOAS, if it has one
        const c = op.c & 1;
        const m = this.mctxs[c]!;
        const io = m.ioas[op.io & 1]!;
        const areas = this.fuzzAreas(io);
        const a = areas[op.i % Math.max(1, areas.length)];
        if (a === undefined) return;
        this.expect(model.unmap(m, io, a.start, a.last - a.start + 1n, false), () => this.ctxs[c]!.unmapDma(io.id, { iova: a.start, length: a.last - a.start + 1n }));
        return;
      }
      case 'copyArea': {
        // copy the i-th mapping of `src` to a slot of an arena
        const c = op.c & 1;
        const m = this.mctxs[c]!;
        const src = m.ioas[op.src & 1]!;
        const dst = m.ioas[op.dst & 1]!;
        const areas = this.fuzzAreas(src);
        const a = areas[op.i % Math.max(1, areas.length)];
        if (a === undefined) return;
        const length = a.last - a.start + 1n;
        let ar2 = this.arena(op.a2);
        if (length % ar2.unit !== 0n || (a.start & (ar2.unit - 1n)) !== 0n) ar2 = this.arenas.find((x) => x.unit === PAGE) ?? ar2;
        const dstIova = ar2.base + BigInt(op.s2 % ar2.slots) * ar2.unit;
        this.expect(model.copy(m, dst, src, a.start, Number(length / PAGE), dstIova, op.w), () =>
          this.ctxs[c]!.copyDma(dst.id, src.id, { srcIova: a.start, dstIova, length, read: true, write: op.w }),
        );
        return;
      }
      case 'unmapAll': {
        const c = op.c & 1;
        const m = this.mctxs[c]!;
        const io = m.ioas[op.io & 1]!;
        this.expect(model.unmap(m, io, 0n, U64_MAX, true), () => this.ctxs[c]!.unmapDma(io.id, { iova: 0n, length: U64_MAX }));
        return;
      }
      case 'copy': {
        const c = op.c & 1;
        const m = this.mctxs[c]!;
        const src = m.ioas[op.src & 1]!;
        const dst = m.ioas[op.dst & 1]!;
        const ar = this.arena(op.a);
        let ar2 = this.arena(op.a2);
        if (ar2.unit !== ar.unit) ar2 = ar;
        const srcIova = ar.base + BigInt(op.s % ar.slots) * ar.unit;
        const dstIova = ar2.base + BigInt(op.s2 % ar2.slots) * ar2.unit;
        const length = BigInt(Math.max(1, op.n)) * ar.unit;
        const npages = Number(length / PAGE);
        this.expect(model.copy(m, dst, src, srcIova, npages, dstIova, op.w), () => this.ctxs[c]!.copyDma(dst.id, src.id, { srcIova, dstIova, length, read: true, write: op.w }));
        return;
      }
      case 'attach': {
        const d = this.devs[op.d % this.devs.length]!;
        const c = this.ctxOf(d);
        const m = this.mctxs[c]!;
        const tgt = op.tgt % 7;
        let target: ModelIoas | ModelHwpt | undefined;
        let id: number;
        if (tgt < 2) {
          target = m.ioas[tgt]!;
          id = target.id;
        } else if (tgt < 4) {
          const h = this.slots[c]![tgt - 2];
          target = h?.dead === false ? h : undefined;
          id = h?.id ?? 0x7ff1;
        } else if (tgt < 6) {
          const n = c === 0 ? this.nested[tgt - 4] : undefined;
          target = n?.h.dead === false ? n.h : undefined;
          id = n?.h.id ?? 0x7ff2;
        } else {
          const h = c === 0 ? this.nestParent : undefined;
          target = h?.dead === false ? h : undefined;
          id = h?.id ?? 0x7ff3;
        }
        const p = op.p % 5;
        const pasid = p === 0 ? undefined : p === 4 ? ('auto' as const) : FIXED_PASIDS[p - 1]!;
        const devId = this.devId(c, d);
        this.expect(model.attach(m, d, target, pasid), () => this.ctxs[c]!.attach(devId, id, pasid === undefined ? {} : { pasid }));
        return;
      }
      case 'detach': {
        const d = this.devs[op.d % this.devs.length]!;
        const c = this.ctxOf(d);
        const p = op.p % 4;
        const pasid = p === 0 ? undefined : FIXED_PASIDS[p - 1]!;
        const devId = this.devId(c, d);
        this.expect(model.detach(this.mctxs[c]!, d, pasid), () => {
          this.ctxs[c]!.detach(devId, pasid === undefined ? {} : { pasid });
        });
        return;
      }
      case 'bind':
        this.doBind(op.c & 1, op.d % this.devs.length);
        return;
      case 'unbind': {
        const d = this.devs[op.d % this.devs.length]!;
        const c = this.ctxOf(d);
        const devId = this.devId(c, d);
        this.expect(model.unbind(this.mctxs[c]!, d), () => {
          this.ctxs[c]!.unbindDevice(devId);
        });
        return;
      }
      case 'allocHwpt': {
        const d = this.devs[op.d % this.devs.length]!;
        const c = this.ctxOf(d);
        const m = this.mctxs[c]!;
        const slot = op.slot & 1;
        if (this.slots[c]![slot]?.dead === false) return; // occupied
        const io = m.ioas[op.io & 1]!;
        const kind = op.kind % 3;
        const flags = { nestParent: kind === 2, pasid: kind === 1 };
        const devId = this.devId(c, d);
        const got = this.expect(model.allocPaging(m, d, io, flags), () => this.ctxs[c]!.allocHwpt(devId, { parent: io.id, flags }));
        if (got !== undefined) this.slots[c]![slot] = m.hwpts.get(got);
        return;
      }
      case 'destroyHwpt': {
        const c = op.c & 1;
        const h = this.slots[c]![op.slot & 1];
        if (h === undefined) return;
        this.expect(model.destroyHwpt(this.mctxs[c]!, h), () => {
          this.ctxs[c]!.destroy(h.id);
        });
        return;
      }
      case 'nestAlloc': {
        const parent = this.nestParent;
        const k = op.k & 1;
        if (parent === undefined || this.nested[k]?.h.dead === false) return;
        const pf = this.devs[0]!;
        const m = this.mctxs[0]!;
        let s1: GuestStage1;
        try {
          s1 = this.backend.guest!.create(this.guestMem!);
        } catch {
          return; // guest RAM exhausted: a long sequence
        }
        const devId = this.devId(0, pf);
        const got = this.expect(model.allocNested(m, pf, parent), () => this.ctxs[0]!.allocHwpt(devId, { parent: parent.id, data: s1.data }));
        if (got !== undefined) this.nested[k] = { h: m.hwpts.get(got)!, s1 };
        return;
      }
      case 'nestFree': {
        const n = this.nested[op.k & 1];
        if (n === undefined) return;
        this.expect(model.destroyHwpt(this.mctxs[0]!, n.h), () => {
          this.ctxs[0]!.destroy(n.h.id);
        });
        return;
      }
      case 's1map':
      case 's1unmap': {
        const n = this.nested[op.k & 1];
        if (n === undefined || n.h.dead) return;
        const giova = GIOVA_BASE + BigInt(op.g % 16) * PAGE;
        let entry: { gpa: bigint; write: boolean } | undefined;
        if (op.t === 's1map') {
          // a guest data page, or a page some mapping of the parent IOAS holds (or a hole)
          const t = op.tgt % 32;
          const pages: bigint[] = [];
          // a stage-1 table outputs at most 48-bit addresses (x86-64 / AArch64 formats): a guest
          // cannot point an entry above that, so such mappings are left out
          for (const a of this.fuzzAreas(this.mctxs[0]!.ioas[0]!)) for (let x = a.start; x < a.last && x < 1n << 48n; x += PAGE) pages.push(x);
          const low = this.arenas[0]!;
          const gpa = t < GUEST_DATA_PAGES ? this.guestGpa + BigInt(t) * PAGE
            : pages.length > 0 && t < 28 ? pages[(t - GUEST_DATA_PAGES) % pages.length]!
            : low.base + BigInt(t) * PAGE;
          entry = { gpa, write: op.w };
          try {
            n.s1.map(giova, gpa, op.w);
          } catch {
            return; // guest RAM exhausted
          }
        } else n.s1.unmap(giova);
        const m = this.mctxs[0]!;
        const entries = n.s1.invalidateRange(giova, PAGE);
        const pred: Prediction<number> = m.closed
          ? { errno: 'EBADF', why: 'the context is closed', commit: () => undefined }
          : { errno: undefined, why: 'user invalidation', commit: (r) => (r === entries.length ? undefined : `invalidate handled ${r} of ${entries.length} entries`) };
        model.setS1(n.h, giova, entry);
        this.expect(pred, () => this.ctxs[0]!.invalidateHwpt(n.h.id, entries));
        return;
      }
      case 'bindSva': {
        const d = this.devs[op.d % this.devs.length]!;
        const c = this.ctxOf(d);
        const devId = this.devId(c, d);
        this.expect(model.bindSva(this.mctxs[c]!, d), () => this.ctxs[c]!.bindSva(devId, this.procs[c]!));
        return;
      }
      case 'unbindSva': {
        const d = this.devs[op.d % this.devs.length]!;
        const c = this.ctxOf(d);
        const pasid = this.mctxs[c]!.proc.svaPasid ?? 1;
        const devId = this.devId(c, d);
        this.expect(model.unbindSva(this.mctxs[c]!, d, pasid), () => {
          this.ctxs[c]!.unbindSva(devId, pasid);
        });
        return;
      }
      case 'munmap': {
        const c = op.c & 1;
        const p = this.mctxs[c]!.proc;
        const i = op.v % POOL_PAGES;
        this.operations++;
        this.procs[c]!.munmap(p.poolBase + BigInt(i) * PAGE, PAGE);
        p.mapped[i] = false;
        return;
      }
      case 'procWrite': {
        const c = op.c & 1;
        const p = this.mctxs[c]!.proc;
        const i = op.v % POOL_PAGES;
        const data = bytesFrom(op.seed, 8 + (op.seed & 0x3f));
        const offset = (op.seed >>> 8) % (PAGE_N - data.length);
        const r = errnoOf(() => {
          this.procs[c]!.write(p.poolBase + BigInt(i) * PAGE + BigInt(offset), data);
        });
        if (p.mapped[i]) {
          if (r.error !== undefined) this.fail(`process write to a mapped page failed: ${(r.error as Error).message}`);
          this.shadow.get(p.key(i))!.set(data, offset);
        } else if (r.errno !== 'EFAULT') this.fail(`process write to an unmapped page: expected EFAULT, got ${r.errno ?? 'success'}`);
        return;
      }
      case 'dmaWrite': {
        const d = this.devs[op.d % this.devs.length]!;
        const pasids = this.probePasids(d);
        const pasid = pasids[op.key % pasids.length];
        const probes = this.probesFor(d, pasid);
        const p = probes[op.probe % probes.length];
        if (p === undefined) return;
        const len = Math.max(1, Math.min(op.len, 16));
        if (p.iova + BigInt(len) - 1n > U64_MAX) return;
        const data = bytesFrom(op.seed, len);
        const exp = this.expected(d, pasid, p.iova, len, true);
        if (exp.spans.some((s) => s.key !== undefined && !this.tracked(s.key))) return; // never scribble over the guest's tables
        const what = this.describe(d, pasid, p.iova, len, true);
        const r = this.dma(d, pasid, p.iova, len, data);
        if (r.ok) {
          if (exp.mustFault) this.fail(`${what}: expected a fault (${exp.why}), the write went through`);
          let at = 0;
          for (const s of exp.spans) {
            if (s.key !== undefined) this.shadow.get(s.key)!.set(data.subarray(at, at + s.length), s.offset);
            at += s.length;
          }
        } else {
          if (!exp.mayFault) this.fail(`${what}: expected success, got fault ${r.fault.class} ${r.fault.name}`);
          if (!exp.classes.has(r.fault.class)) this.fail(`${what}: fault class ${r.fault.class} (${r.fault.name}), expected one of ${[...exp.classes].join('/')} (${exp.why})`);
        }
        this.checkMemory();
        return;
      }
      case 'close': {
        const c = op.c & 1;
        this.operations++;
        this.ctxs[c]!.close();
        model.close(this.mctxs[c]!);
        return;
      }
    }
  }

  /** Closes every context and checks that pins and frames are back where they started. */
  finish(): void {
    this.step++;
    this.currentOp = 'close all';
    this.probeAll();
    this.checkMemory();
    for (let c = 0; c < 2; c++) {
      this.ctxs[c]!.close();
      this.model.close(this.mctxs[c]!);
    }
    this.operations += 2;
    this.checkPins();
    this.probeAll(); // nothing a closed context mapped is reachable
    const frames = this.system.memory.framesInUse;
    if (frames !== this.baselineFrames) this.fail(`after close, ${frames} frames are in use; ${this.baselineFrames} were before the contexts opened`);
  }
}

/**
 * The opening every sequence starts with (before its random operations): each device attached
 * (PF1, mdev0 and mdev1 to context 0's first IOAS, VF1 to its second, PF2 to context 1's
 * first), and a mapping in each IOAS — so that random operations start from a live machine.
 */
export const OPENING: readonly Op[] = [
  { t: 'attach', d: 0, tgt: 0, p: 0 },
  { t: 'attach', d: 1, tgt: 1, p: 0 },
  { t: 'attach', d: 2, tgt: 0, p: 0 },
  { t: 'attach', d: 3, tgt: 0, p: 0 },
  { t: 'attach', d: 4, tgt: 0, p: 0 },
  { t: 'map', c: 0, io: 0, a: 0, s: 0, n: 2, v: 0, w: true },
  { t: 'map', c: 0, io: 1, a: 0, s: 2, n: 1, v: 8, w: false },
  { t: 'map', c: 1, io: 0, a: 0, s: 0, n: 2, v: 0, w: true },
  // hardware nesting, where the backend has it: a nested HWPT with a few stage-1 entries
  { t: 'nestAlloc', k: 0 },
  { t: 's1map', k: 0, g: 0, tgt: 0, w: true },
  { t: 's1map', k: 0, g: 1, tgt: 16, w: true },
  { t: 's1map', k: 0, g: 2, tgt: 3, w: false },
];

/** Summed coverage of the sequences run in this worker, per backend (for `IOASID_FUZZ_COVERAGE=1`). */
export const coverage = new Map<string, { dataProbes: number; faultProbes: number; ops: Map<string, number> }>();

/** Runs one sequence on a fresh system of `backend`; throws a {@link Divergence} on the first disagreement. */
export function runSequence(backend: BackendUnderTest, ops: readonly Op[], options: HarnessOptions = {}): SequenceResult {
  const h = new Harness(backend, options);
  try {
    h.probeAll();
    if (options.opening !== false) for (const op of OPENING) h.run(op);
    for (const op of ops) h.run(op);
    h.finish();
  } finally {
    count(backend.id, 'sequences');
    count(backend.id, 'operations', h.operations);
    count(backend.id, 'probes', h.probes);
    count(backend.id, 'failPoints', h.failPoints);
    let c = coverage.get(backend.id);
    if (c === undefined) coverage.set(backend.id, (c = { dataProbes: 0, faultProbes: 0, ops: new Map() }));
    c.dataProbes += h.coverage.dataProbes;
    c.faultProbes += h.coverage.faultProbes;
    for (const [k, v] of h.coverage.ops) c.ops.set(k, (c.ops.get(k) ?? 0) + v);
  }
  return { operations: h.operations, probes: h.probes };
}

/** The model's HWPT record for a test that builds one by hand. */
export { newHwpt };
