/**
 * The reference model: a plain description of what each device × PASID may reach, and of what
 * each uAPI operation should answer, written from the uAPI's documented semantics (iommufd's
 * io_pagetable rules for MAP/UNMAP/COPY, the attach/replace/detach rules, the PASID space) —
 * not from core's code. It knows nothing about page tables: a device × PASID reaches a page of
 * some process (or of the guest's RAM) or it does not.
 *
 * Memory is named by {@link PageKey}s: page `i` of process `p`'s buffer pool is `p·256 + i`,
 * page `j` of a nesting guest's RAM `GUEST_KEY_BASE + j`. A key names the physical page for
 * good — an IOAS that maps it keeps it alive after the process unmaps it, as pinning does.
 */

import type { ErrnoName, HwInfo, IovaRange } from '@ioasid/uapi';

/** A physical page the model tracks. */
export type PageKey = number;
/** Keys of a guest's RAM data pages start here. */
export const GUEST_KEY_BASE = 1000;
/** Page keys per process. */
export const KEYS_PER_PROC = 256;
/** The attachment key of a device's RID (no PASID). */
export const RID = -1;

const PAGE = 0x1000n;
const U64_MAX = (1n << 64n) - 1n;

// ---------------------------------------------------------------------------- interval math

/** Intersection of two sorted, disjoint range lists. */
export function intersectRanges(a: readonly IovaRange[], b: readonly IovaRange[]): IovaRange[] {
  const out: IovaRange[] = [];
  for (const x of a) {
    for (const y of b) {
      const s = x.start > y.start ? x.start : y.start;
      const l = x.last < y.last ? x.last : y.last;
      if (s <= l) out.push({ start: s, last: l });
    }
  }
  return out.sort((p, q) => (p.start < q.start ? -1 : p.start > q.start ? 1 : 0));
}

/** `a` minus every range of `holes`. */
export function subtractRanges(a: readonly IovaRange[], holes: readonly IovaRange[]): IovaRange[] {
  let cur: IovaRange[] = [...a];
  for (const h of holes) {
    const next: IovaRange[] = [];
    for (const r of cur) {
      if (h.last < r.start || h.start > r.last) {
        next.push(r);
        continue;
      }
      if (h.start > r.start) next.push({ start: r.start, last: h.start - 1n });
      if (h.last < r.last) next.push({ start: h.last + 1n, last: r.last });
    }
    cur = next;
  }
  return cur;
}

/** True when `[start, last]` lies inside one range of `ranges` (they are disjoint and not adjacent-merged: check the union). */
export function coversRange(ranges: readonly IovaRange[], start: bigint, last: bigint): boolean {
  let next = start;
  const sorted = [...ranges].sort((p, q) => (p.start < q.start ? -1 : 1));
  for (const r of sorted) {
    if (r.last < next) continue;
    if (r.start > next) return false;
    if (r.last >= last) return true;
    next = r.last + 1n;
  }
  return false;
}

/** True when `[start, last]` meets a range of `ranges`. */
export function overlapsRanges(ranges: readonly IovaRange[], start: bigint, last: bigint): boolean {
  return ranges.some((r) => r.start <= last && start <= r.last);
}

const ALL: readonly IovaRange[] = [{ start: 0n, last: U64_MAX }];

// ---------------------------------------------------------------------------- state

/** One mapping of an IOAS: `keys[i]` is the page at `start + i·4K`. */
export interface ModelArea {
  /** First IOVA. */
  readonly start: bigint;
  /** Last IOVA (inclusive). */
  readonly last: bigint;
  /** The page behind each 4 KiB page. */
  readonly keys: readonly PageKey[];
  /** Devices may write. */
  readonly write: boolean;
}

/** An IOAS. */
export class ModelIoas {
  /** Areas, in no particular order. */
  readonly areas: ModelArea[] = [];
  /** @param id - its object id */
  constructor(readonly id: number) {}

  /** The area holding `iova`. */
  find(iova: bigint): ModelArea | undefined {
    return this.areas.find((a) => a.start <= iova && iova <= a.last);
  }

  /** Areas meeting `[start, last]`. */
  overlapping(start: bigint, last: bigint): ModelArea[] {
    return this.areas.filter((a) => a.start <= last && start <= a.last);
  }
}

/** A stage-1 entry of a guest's table: guest IOVA page → GPA. */
export interface S1Entry {
  /** Guest-physical address of the page. */
  readonly gpa: bigint;
  /** Writable. */
  readonly write: boolean;
}

/** What a HWPT is. */
export type HwptKind = 'auto' | 'paging' | 'nested' | 'sva';

/** A HWPT. */
export interface ModelHwpt {
  /** Object id. */
  readonly id: number;
  /** Kind. */
  readonly kind: HwptKind;
  /** The IOAS a paging (auto or explicit) HWPT mirrors. */
  readonly ioas: ModelIoas | undefined;
  /** The nest parent of a nested HWPT. */
  readonly parent: ModelHwpt | undefined;
  /** Allocated as a nest parent. */
  readonly nestParent: boolean;
  /** Allocated with the PASID flag. */
  readonly pasidFlag: boolean;
  /** The device it was allocated for (explicit HWPTs). */
  readonly allocDev: number | undefined;
  /** The process of an SVA binding. */
  readonly proc: ModelProc | undefined;
  /** Stage-1 entries of a nested HWPT (by guest IOVA page). */
  readonly s1: Map<bigint, S1Entry>;
  /** Live attachments. */
  attachments: number;
  /** Nested children. */
  children: number;
  /** Destroyed. */
  dead: boolean;
}

/** A process: its buffer pool pages (mapped or not). */
export class ModelProc {
  /** Pool page i is still mapped in the process. */
  readonly mapped: boolean[];
  /** SVA PASID references (the process's mm->pasid while > 0). */
  svaRefs = 0;
  /** The process's SVA PASID, while it has one. */
  svaPasid: number | undefined;
  /**
   * @param index - process index (0, 1)
   * @param poolBase - virtual address of pool page 0
   * @param poolPages - pages in the pool
   */
  constructor(
    readonly index: number,
    readonly poolBase: bigint,
    readonly poolPages: number,
  ) {
    this.mapped = new Array<boolean>(poolPages).fill(true);
  }

  /** Key of pool page i. */
  key(i: number): PageKey {
    return this.index * KEYS_PER_PROC + i;
  }

  /** Pool page index of a virtual address, if inside the pool. */
  pageOf(vaddr: bigint): number | undefined {
    if (vaddr < this.poolBase) return undefined;
    const i = Number((vaddr - this.poolBase) / PAGE);
    return i < this.poolPages ? i : undefined;
  }
}

/** A device (endpoint) of the system. */
export interface ModelDev {
  /** Index in the model's device list. */
  readonly idx: number;
  /** Endpoint name. */
  readonly name: string;
  /** PF, VF or mediated device. */
  readonly kind: 'pf' | 'vf' | 'mdev';
  /** The parent PF's index (mdev). */
  readonly parent: number | undefined;
  /** hw_info (of the RID for an mdev). */
  readonly info: HwInfo;
  /** The RID the device's DMA is issued with (its own, or its parent's). */
  readonly ridName: string;
  /** The context it is bound to. */
  owner: ModelCtx | undefined;
  /** Its object id in the owner. */
  id: number | undefined;
  /** The last id it had in each context (to try stale ids). */
  readonly lastIds: Map<number, number>;
  /** Attachments by user PASID (RID = −1). */
  readonly attached: Map<number, ModelHwpt>;
  /** Wire PASID of a bound mdev's RID. */
  mdevPasid: number | undefined;
  /** mdev user PASID → wire PASID. */
  readonly vpasids: Map<number, number>;
}

/** A context (one open of /dev/ioasid). */
export class ModelCtx {
  /** Closed. */
  closed = false;
  /** The next object id. */
  nextId = 1;
  /** Live HWPTs by id. */
  readonly hwpts = new Map<number, ModelHwpt>();
  /** Per-device PASID reservations from allocPasid (unused by the fuzz, kept for detach semantics). */
  readonly reservations = new Map<number, Set<string>>();
  /**
   * @param index - context index
   * @param proc - the process that opened it
   */
  constructor(
    readonly index: number,
    readonly proc: ModelProc,
  ) {}
  /** IOASes. */
  readonly ioas: ModelIoas[] = [];
}

type Owner = object;

/** The PASID space: global PASIDs, per-device claims (what core's allocator must honour). */
export class ModelPasids {
  private readonly global = new Map<number, Owner>();
  private readonly perDevice = new Map<string, Map<number, Owner>>();
  private readonly anyUse = new Map<number, number>();

  /** Owner of `pasid` on device `rid`. */
  ownerOn(rid: string, pasid: number): Owner | undefined {
    return this.global.get(pasid) ?? this.perDevice.get(rid)?.get(pasid);
  }

  /** The lowest PASID free everywhere (a system-wide one). */
  nextGlobal(): number {
    for (let p = 1; ; p++) if (!this.global.has(p) && !this.anyUse.has(p)) return p;
  }

  /** The lowest PASID free on `rid` and not global. */
  nextOn(rid: string): number {
    for (let p = 1; ; p++) if (!this.global.has(p) && this.perDevice.get(rid)?.has(p) !== true) return p;
  }

  /** Takes a system-wide PASID. */
  takeGlobal(pasid: number, owner: Owner): void {
    this.global.set(pasid, owner);
  }

  /** Drops a system-wide PASID. */
  dropGlobal(pasid: number): void {
    this.global.delete(pasid);
  }

  /** True when `pasid` is a global PASID of `owner`. */
  isGlobalOf(owner: Owner, pasid: number): boolean {
    return this.global.get(pasid) === owner;
  }

  /** Claims `pasid` on `rid`. */
  take(rid: string, pasid: number, owner: Owner): void {
    let m = this.perDevice.get(rid);
    if (m === undefined) this.perDevice.set(rid, (m = new Map<number, Owner>()));
    m.set(pasid, owner);
    this.anyUse.set(pasid, (this.anyUse.get(pasid) ?? 0) + 1);
  }

  /** Releases `pasid` on `rid`. */
  release(rid: string, pasid: number): void {
    const m = this.perDevice.get(rid);
    if (m?.delete(pasid) === true) {
      const n = (this.anyUse.get(pasid) ?? 1) - 1;
      if (n === 0) this.anyUse.delete(pasid);
      else this.anyUse.set(pasid, n);
    }
  }

  /** Releases everything `owner` holds. */
  releaseAll(owner: Owner): void {
    for (const [p, o] of [...this.global]) if (o === owner) this.global.delete(p);
    for (const [rid, m] of this.perDevice) for (const [p, o] of [...m]) if (o === owner) this.release(rid, p);
  }
}

// ---------------------------------------------------------------------------- predictions

/** The model's answer to an operation: the errno it must fail with, or what to record when it succeeds. */
export interface Prediction<R> {
  /** The errno (undefined: success). */
  readonly errno: ErrnoName | undefined;
  /** Why (for failure messages). */
  readonly why: string;
  /** Records the success in the model, given the operation's result; returns a mismatch or undefined. */
  readonly commit: (result: R) => string | undefined;
}

const fail = <R>(errno: ErrnoName, why: string): Prediction<R> => ({ errno, why, commit: () => undefined });
const ok = <R>(why: string, commit: (result: R) => string | undefined): Prediction<R> => ({ errno: undefined, why, commit });

/** How a device × PASID reaches a page. */
export type Reach =
  | { readonly ok: true; readonly key: PageKey; readonly write: boolean }
  | {
      readonly ok: false;
      readonly why: 'blocked' | 'unmapped' | 'walk';
      /** A nested translation whose stage-1 entry is read-only: a write may fault on that first (permission). */
      readonly s1ReadOnly?: boolean;
    };

/** Backend-specific rules the model needs (the rest is the uAPI's). */
export interface ModelRules {
  /** The aperture of a paging domain (an automatic or explicit paging HWPT). */
  readonly apertures: readonly IovaRange[];
  /** The aperture of a nest-parent (stage-2) domain, when it differs (VT-d: a second stage is wider than a first stage). */
  readonly nestParentApertures?: readonly IovaRange[];
  /** Why `dev` cannot use an explicit HWPT allocated for `allocDev` (undefined: it can). */
  attachConflict(dev: ModelDev, allocDev: ModelDev, kind: HwptKind, pasid: number | undefined): ErrnoName | undefined;
  /**
   * The architecture's own refusals of an attachment of `dev` (wire PASID `wire`) to `target`
   * (undefined: the IOAS's automatic paging HWPT): EINVAL when the driver's attachConflict
   * says no (checked before the IOVA rules), or the errno its attach throws (after them).
   */
  attachRules?(dev: ModelDev, target: ModelHwpt | undefined, wire: number | undefined): { readonly errno: ErrnoName; readonly when: 'conflict' | 'driver' } | undefined;
}

/** The whole model. */
export class Model {
  /** PASID space. */
  readonly pasids = new ModelPasids();
  /** Guest RAM of the nesting set-up: IOAS, GPA base, page count, and its first `dataPages` pages are data. */
  guestRam: { readonly ioas: ModelIoas; readonly gpa: bigint; readonly pages: number; readonly dataPages: number } | undefined;

  /**
   * @param ctxs - contexts
   * @param devs - devices
   * @param rules - backend rules
   */
  constructor(
    readonly ctxs: readonly ModelCtx[],
    readonly devs: readonly ModelDev[],
    readonly rules: ModelRules,
  ) {}

  // ------------------------------------------------------------------ reach

  /** The HWPT a device's DMA with `pasid` (undefined: none) goes through, if any. */
  attachmentFor(dev: ModelDev, pasid: number | undefined): ModelHwpt | undefined {
    if (dev.kind === 'mdev') {
      if (dev.owner === undefined) return undefined;
      return dev.attached.get(pasid ?? RID);
    }
    const own = dev.owner === undefined ? undefined : dev.attached.get(pasid ?? RID);
    if (own !== undefined || pasid === undefined) return own;
    // the wire PASIDs of the device's mediated devices are attached on its RID
    for (const m of this.devs) {
      if (m.parent !== dev.idx || m.owner === undefined) continue;
      if (m.mdevPasid === pasid) return m.attached.get(RID);
      for (const [u, w] of m.vpasids) if (w === pasid) return m.attached.get(u);
    }
    return undefined;
  }

  /** What the page at `iova` (page aligned) is for `dev` with `pasid`. */
  reach(dev: ModelDev, pasid: number | undefined, iova: bigint): Reach {
    const h = this.attachmentFor(dev, pasid);
    if (h === undefined) return { ok: false, why: 'blocked' };
    return this.reachThrough(h, iova);
  }

  /** What the page at `iova` is through a HWPT. */
  reachThrough(h: ModelHwpt, iova: bigint): Reach {
    switch (h.kind) {
      case 'auto':
      case 'paging':
        return this.reachIoas(h.ioas!, iova);
      case 'nested': {
        const parent = h.parent!.ioas!;
        const g = this.guestRam;
        // the walk reads the stage-1 tables (in the guest RAM) through the stage 2
        if (g?.ioas !== parent || !this.guestRamMapped()) return { ok: false, why: 'walk' };
        const e = h.s1.get(iova);
        if (e === undefined) return { ok: false, why: 'unmapped' };
        const r = this.reachIoas(parent, e.gpa);
        return r.ok ? { ok: true, key: r.key, write: r.write && e.write } : { ...r, s1ReadOnly: !e.write };
      }
      case 'sva': {
        const p = h.proc!;
        const i = p.pageOf(iova);
        if (i === undefined || !p.mapped[i]) return { ok: false, why: 'unmapped' };
        return { ok: true, key: p.key(i), write: true };
      }
    }
  }

  private reachIoas(io: ModelIoas, iova: bigint): Reach {
    const a = io.find(iova);
    if (a === undefined) return { ok: false, why: 'unmapped' };
    return { ok: true, key: a.keys[Number((iova - a.start) / PAGE)]!, write: a.write };
  }

  /** True while the whole guest RAM is still mapped in its IOAS. */
  guestRamMapped(): boolean {
    const g = this.guestRam;
    if (g === undefined) return false;
    const a = g.ioas.find(g.gpa);
    return a !== undefined && a.start === g.gpa && a.last === g.gpa + BigInt(g.pages) * PAGE - 1n;
  }

  // ------------------------------------------------------------------ IOVA rules

  private hwptsOn(ctx: ModelCtx, io: ModelIoas): ModelHwpt[] {
    return [...ctx.hwpts.values()].filter((h) => h.ioas === io);
  }

  private devicesOn(ctx: ModelCtx, io: ModelIoas): ModelDev[] {
    return this.devs.filter((d) => d.owner === ctx && [...d.attached.values()].some((h) => h.ioas === io || h.parent?.ioas === io));
  }

  /** The aperture of a HWPT's domain (undefined: an automatic paging HWPT). */
  apertureOf(h: ModelHwpt | undefined): readonly IovaRange[] {
    return h?.nestParent === true ? (this.rules.nestParentApertures ?? this.rules.apertures) : this.rules.apertures;
  }

  /**
   * The usable IOVA ranges of an IOAS: the apertures of its domains minus the reserved regions
   * of its devices — plus, for an attach being checked, the new device and its domain's aperture.
   */
  usable(ctx: ModelCtx, io: ModelIoas, extra?: { readonly dev: ModelDev; readonly aperture: readonly IovaRange[] }): IovaRange[] {
    let r: IovaRange[] = [...ALL];
    for (const h of this.hwptsOn(ctx, io)) r = intersectRanges(r, this.apertureOf(h));
    if (extra !== undefined) r = intersectRanges(r, extra.aperture);
    const devs = this.devicesOn(ctx, io);
    if (extra !== undefined && !devs.includes(extra.dev)) devs.push(extra.dev);
    for (const d of devs) r = subtractRanges(r, d.info.reservedRegions);
    return r;
  }

  /** Checks that `dev` can join `io` on a domain with `aperture`: every area must lie in its usable ranges. */
  private fits(ctx: ModelCtx, io: ModelIoas, dev: ModelDev, aperture: readonly IovaRange[]): ErrnoName | undefined {
    const usable = this.usable(ctx, io, { dev, aperture });
    for (const a of io.areas) {
      if (!coversRange(usable, a.start, a.last)) return overlapsRanges(dev.info.reservedRegions, a.start, a.last) ? 'EADDRINUSE' : 'EINVAL';
    }
    return undefined;
  }

  // ------------------------------------------------------------------ memory operations

  /** MAP_DMA at a fixed IOVA of pool pages `[vpage, vpage+n)` (4 KiB pages). */
  map(ctx: ModelCtx, io: ModelIoas, iova: bigint, vpage: number, n: number, write: boolean): Prediction<bigint> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    const last = iova + BigInt(n) * PAGE - 1n;
    if (last > U64_MAX) return fail('EOVERFLOW', 'iova + length wraps past 2^64');
    if (!coversRange(this.usable(ctx, io), iova, last)) return fail('EINVAL', 'outside the usable IOVA ranges');
    if (io.overlapping(iova, last).length > 0) return fail('EEXIST', 'overlaps a mapping');
    const p = ctx.proc;
    for (let i = vpage; i < vpage + n; i++) if (i >= p.poolPages || !p.mapped[i]) return fail('EFAULT', `pool page ${i} is not mapped`);
    return ok('map', (got) => {
      if (got !== iova) return `MAP returned 0x${got.toString(16)} for fixed IOVA 0x${iova.toString(16)}`;
      io.areas.push({ start: iova, last, keys: Array.from({ length: n }, (_, k) => p.key(vpage + k)), write });
      return undefined;
    });
  }

  /** MAP_DMA at an IOVA the kernel picks. */
  mapAuto(ctx: ModelCtx, io: ModelIoas, vpage: number, n: number, write: boolean): Prediction<bigint> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    const p = ctx.proc;
    for (let i = vpage; i < vpage + n; i++) if (i >= p.poolPages || !p.mapped[i]) return fail('EFAULT', `pool page ${i} is not mapped`);
    return ok('map (auto IOVA)', (got) => {
      const last = got + BigInt(n) * PAGE - 1n;
      if (got % PAGE !== 0n) return `auto IOVA 0x${got.toString(16)} is not page aligned`;
      if (got === 0n) return 'auto IOVA 0';
      if (!coversRange(this.usable(ctx, io), got, last)) return `auto IOVA 0x${got.toString(16)} is outside the usable ranges`;
      if (io.overlapping(got, last).length > 0) return `auto IOVA 0x${got.toString(16)} overlaps a mapping`;
      io.areas.push({ start: got, last, keys: Array.from({ length: n }, (_, k) => p.key(vpage + k)), write });
      return undefined;
    });
  }

  /** UNMAP_DMA of `[iova, iova+length)`; `all` is the `{0, U64_MAX}` form. */
  unmap(ctx: ModelCtx, io: ModelIoas, iova: bigint, length: bigint, all: boolean): Prediction<bigint> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    if (!all && iova + length - 1n > U64_MAX) return fail('EOVERFLOW', 'iova + length wraps past 2^64');
    const victims = all ? [...io.areas] : io.overlapping(iova, iova + length - 1n);
    if (!all) {
      if (victims.length === 0) return fail('ENOENT', 'nothing mapped there');
      if (victims.some((a) => a.start < iova || a.last > iova + length - 1n)) return fail('ENOENT', 'would split a mapping');
    }
    return ok('unmap', (got) => {
      const bytes = victims.reduce((s, a) => s + (a.last - a.start + 1n), 0n);
      if (got !== bytes) return `UNMAP returned ${got} bytes, the model says ${bytes}`;
      for (const a of victims) io.areas.splice(io.areas.indexOf(a), 1);
      return undefined;
    });
  }

  /** COPY `[srcIova, +n pages)` of `src` to `dstIova` of `dst`. */
  copy(ctx: ModelCtx, dst: ModelIoas, src: ModelIoas, srcIova: bigint, n: number, dstIova: bigint, write: boolean): Prediction<bigint> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    if (srcIova + BigInt(n) * PAGE - 1n > U64_MAX) return fail('EOVERFLOW', 'the source range wraps');
    const keys: PageKey[] = [];
    let srcWritable = true;
    for (let k = 0; k < n; k++) {
      const a = src.find(srcIova + BigInt(k) * PAGE);
      if (a === undefined) return fail('ENOENT', 'the source range is not fully mapped');
      keys.push(a.keys[Number((srcIova + BigInt(k) * PAGE - a.start) / PAGE)]!);
      srcWritable &&= a.write;
    }
    if (write && !srcWritable) return fail('EPERM', 'the source is not writable');
    const last = dstIova + BigInt(n) * PAGE - 1n;
    if (last > U64_MAX) return fail('EOVERFLOW', 'the destination range wraps');
    if (!coversRange(this.usable(ctx, dst), dstIova, last)) return fail('EINVAL', 'destination outside the usable IOVA ranges');
    if (dst.overlapping(dstIova, last).length > 0) return fail('EEXIST', 'destination overlaps a mapping');
    return ok('copy', (got) => {
      if (got !== dstIova) return `COPY returned 0x${got.toString(16)} for fixed IOVA 0x${dstIova.toString(16)}`;
      dst.areas.push({ start: dstIova, last, keys, write });
      return undefined;
    });
  }

  // ------------------------------------------------------------------ devices

  /** bindDevice by `ctx`. */
  bind(ctx: ModelCtx, dev: ModelDev): Prediction<number> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    if (dev.owner !== undefined) return fail('EBUSY', 'bound already');
    if (dev.kind === 'mdev' && dev.info.pasidBits === 0) return fail('EOPNOTSUPP', 'a mediated device needs PASIDs');
    // DMA ownership of a requester ID: a parent and its mdevs are never bound by two contexts
    // (the parent could issue the mdevs' wire PASIDs)
    if (dev.kind === 'mdev') {
      const parent = this.devs[dev.parent!]!;
      if (parent.owner !== undefined && parent.owner !== ctx) return fail('EBUSY', 'the parent is bound by another context');
    } else if (this.devs.some((m) => m.kind === 'mdev' && m.parent === dev.idx && m.owner !== undefined && m.owner !== ctx)) {
      return fail('EBUSY', 'a mediated device of it is bound by another context');
    }
    return ok('bind', (id) => {
      if (id !== ctx.nextId) return `bind returned id ${id}, the model expected ${ctx.nextId}`;
      ctx.nextId++;
      dev.owner = ctx;
      dev.id = id;
      dev.lastIds.set(ctx.index, id);
      if (dev.kind === 'mdev') {
        const w = this.pasids.nextOn(dev.ridName);
        this.pasids.take(dev.ridName, w, dev);
        dev.mdevPasid = w;
      }
      return undefined;
    });
  }

  /** unbindDevice by `ctx` (with the id `ctx` last had for the device). */
  unbind(ctx: ModelCtx, dev: ModelDev): Prediction<void> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    if (dev.owner !== ctx) return fail('ENOENT', 'not bound to this context');
    return ok('unbind', () => {
      this.release(dev);
      return undefined;
    });
  }

  private release(dev: ModelDev): void {
    for (const key of [...dev.attached.keys()]) this.detachKey(dev, key);
    if (dev.mdevPasid !== undefined) this.pasids.release(dev.ridName, dev.mdevPasid);
    dev.mdevPasid = undefined;
    dev.owner = undefined;
    dev.id = undefined;
  }

  private checkPasid(dev: ModelDev, pasid: number): ErrnoName | undefined {
    if (dev.info.pasidBits === 0) return 'EOPNOTSUPP';
    if (pasid < 1 || pasid >= 2 ** dev.info.pasidBits) return 'EINVAL';
    return undefined;
  }

  /**
   * attach(dev, target, { pasid }) by `ctx`. `target` is an IOAS, a HWPT, or undefined for an
   * id that names nothing.
   */
  attach(ctx: ModelCtx, dev: ModelDev, target: ModelIoas | ModelHwpt | undefined, pasid: number | 'auto' | undefined): Prediction<{ hwpt: number; pasid?: number }> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    if (dev.owner !== ctx) return fail('ENOENT', 'the device is not bound to this context');
    if (typeof pasid === 'number') {
      const e = this.checkPasid(dev, pasid);
      if (e !== undefined) return fail(e, 'bad PASID');
    } else if (pasid === 'auto' && dev.info.pasidBits === 0) return fail('EOPNOTSUPP', 'no PASIDs');
    if (target === undefined) return fail('ENOENT', 'no such target');
    if (!(target instanceof ModelIoas) && target.kind === 'sva') return fail('EINVAL', 'an SVA binding');
    // PASIDs: the user's and the wire's
    let user: number | undefined;
    let wire: number | undefined;
    const claims: (() => void)[] = [];
    if (dev.kind === 'mdev') {
      if (pasid === undefined) wire = dev.mdevPasid;
      else {
        if (pasid === 'auto') {
          user = 1;
          while (dev.vpasids.has(user)) user++;
        } else user = pasid;
        wire = dev.vpasids.get(user);
        if (wire === undefined) {
          const w = this.pasids.nextOn(dev.ridName);
          wire = w;
          claims.push(() => { this.pasids.take(dev.ridName, w, dev); });
        }
      }
    } else if (pasid !== undefined) {
      if (pasid === 'auto') {
        const w = this.pasids.nextOn(dev.ridName);
        user = wire = w;
        claims.push(() => { this.pasids.take(dev.ridName, w, ctx); });
      } else {
        user = wire = pasid;
        const o = this.pasids.ownerOn(dev.ridName, pasid);
        if (o !== undefined && o !== ctx) return fail('EBUSY', `PASID ${pasid} is someone else's on ${dev.ridName}`);
        if (o === undefined) claims.push(() => { this.pasids.take(dev.ridName, pasid, ctx); });
      }
    }
    const key = user ?? RID;
    let reuse: ModelHwpt | undefined;
    let newAuto: ModelIoas | undefined;
    const rule = this.rules.attachRules?.(dev, target instanceof ModelIoas ? undefined : target, wire);
    if (target instanceof ModelIoas) {
      const e = this.fits(ctx, target, dev, this.apertureOf(undefined));
      if (e !== undefined) return fail(e, 'a mapping does not fit the device');
      newAuto = target;
    } else {
      const h = target;
      if (h.kind === 'paging' && wire !== undefined && dev.kind !== 'mdev' && !h.pasidFlag) return fail('EINVAL', 'HWPT without the PASID flag');
      const allocDev = h.allocDev === undefined ? undefined : this.devs[h.allocDev];
      const conflict = allocDev === undefined ? undefined : this.rules.attachConflict(dev, allocDev, h.kind, wire);
      if (conflict !== undefined) return fail(conflict, 'the driver refuses this device on that domain');
      if (rule?.when === 'conflict') return fail(rule.errno, 'the architecture refuses this attachment');
      if (h.ioas !== undefined) {
        const e = this.fits(ctx, h.ioas, dev, this.apertureOf(h));
        if (e !== undefined) return fail(e, 'a mapping does not fit the device');
      }
      if (h.parent?.ioas !== undefined) {
        const e = this.fits(ctx, h.parent.ioas, dev, this.apertureOf(h.parent));
        if (e !== undefined) return fail(e, 'a parent mapping does not fit the device');
      }
      reuse = h;
    }
    if (rule?.when === 'driver') return fail(rule.errno, 'the driver refuses this attachment');
    return ok('attach', (res) => {
      let h = reuse;
      if (h === undefined) {
        const io = newAuto!;
        const existing = ctx.hwpts.get(res.hwpt);
        if (existing !== undefined) {
          if (existing.kind !== 'auto' || existing.ioas !== io) return `attach reused HWPT ${res.hwpt}, which is not an automatic HWPT of the IOAS`;
          h = existing;
        } else {
          if (res.hwpt !== ctx.nextId) return `attach created HWPT ${res.hwpt}, the model expected id ${ctx.nextId}`;
          ctx.nextId++;
          h = newHwpt(res.hwpt, 'auto', { ioas: io });
          ctx.hwpts.set(h.id, h);
        }
      } else if (res.hwpt !== h.id) return `attach returned HWPT ${res.hwpt}, not the target ${h.id}`;
      if ((res.pasid ?? RID) !== key) return `attach returned PASID ${res.pasid ?? '-'}, the model expected ${key === RID ? '-' : key}`;
      for (const c of claims) c();
      const previous = dev.attached.get(key);
      h.attachments++;
      dev.attached.set(key, h);
      if (dev.kind === 'mdev' && user !== undefined) dev.vpasids.set(user, wire!);
      if (previous !== undefined) this.drop(ctx, previous);
      return undefined;
    });
  }

  private drop(ctx: ModelCtx, h: ModelHwpt): void {
    h.attachments--;
    if (h.attachments === 0 && (h.kind === 'auto' || h.kind === 'sva')) this.free(ctx, h);
  }

  private free(ctx: ModelCtx, h: ModelHwpt): void {
    h.dead = true;
    ctx.hwpts.delete(h.id);
    if (h.parent !== undefined) h.parent.children--;
    if (h.kind === 'sva') this.putSva(h.proc!);
  }

  private putSva(p: ModelProc): void {
    if (--p.svaRefs === 0) {
      this.pasids.dropGlobal(p.svaPasid!);
      p.svaPasid = undefined;
    }
  }

  private detachKey(dev: ModelDev, key: number): void {
    const h = dev.attached.get(key)!;
    const ctx = dev.owner!;
    const wire = dev.kind === 'mdev' ? (key === RID ? dev.mdevPasid : dev.vpasids.get(key)) : key === RID ? undefined : key;
    dev.attached.delete(key);
    if (key !== RID && wire !== undefined) {
      if (dev.kind === 'mdev') {
        dev.vpasids.delete(key);
        this.pasids.release(dev.ridName, wire);
      } else if (h.kind !== 'sva' && !this.pasids.isGlobalOf(ctx, wire)) {
        if (ctx.reservations.get(wire)?.has(dev.ridName) !== true) this.pasids.release(dev.ridName, wire);
      }
    }
    this.drop(ctx, h);
  }

  /** detach(dev, { pasid }) by `ctx`. */
  detach(ctx: ModelCtx, dev: ModelDev, pasid: number | undefined): Prediction<void> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    if (dev.owner !== ctx) return fail('ENOENT', 'the device is not bound to this context');
    // detaching a PASID that is not attached succeeds and changes nothing — on a device without
    // PASIDs that is every PASID (the uAPI contract), so only a PASID-capable device checks range
    if (pasid !== undefined && dev.info.pasidBits !== 0) {
      const e = this.checkPasid(dev, pasid);
      if (e !== undefined) return fail(e, 'bad PASID');
    }
    return ok('detach', () => {
      if (dev.attached.has(pasid ?? RID)) this.detachKey(dev, pasid ?? RID);
      return undefined;
    });
  }

  // ------------------------------------------------------------------ HWPTs

  /** allocHwpt(dev, { parent: io, flags }) — a paging HWPT. */
  allocPaging(ctx: ModelCtx, dev: ModelDev, io: ModelIoas, flags: { nestParent: boolean; pasid: boolean }): Prediction<number> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    if (dev.owner !== ctx) return fail('ENOENT', 'the device is not bound to this context');
    if (flags.nestParent && dev.info.nestingFormats.length === 0) return fail('EOPNOTSUPP', 'no hardware nesting');
    if (flags.pasid && dev.info.pasidBits === 0) return fail('EOPNOTSUPP', 'no PASIDs');
    // the new domain mirrors every area: one outside its aperture cannot be mapped
    const commit = (id: number) => {
      if (id !== ctx.nextId) return `allocHwpt returned id ${id}, the model expected ${ctx.nextId}`;
      ctx.nextId++;
      ctx.hwpts.set(id, newHwpt(id, 'paging', { ioas: io, nestParent: flags.nestParent, pasidFlag: flags.pasid, allocDev: dev.idx }));
      return undefined;
    };
    const aperture = flags.nestParent ? (this.rules.nestParentApertures ?? this.rules.apertures) : this.rules.apertures;
    for (const a of io.areas) {
      // (the success commit stays attached: a backend known to accept it anyway — FINDINGS.md F4 — is recorded as it behaves)
      if (!coversRange(aperture, a.start, a.last)) return { errno: 'EINVAL', why: 'a mapping lies outside the aperture', commit };
    }
    return ok('allocHwpt', commit);
  }

  /** allocHwpt(dev, { parent: nest-parent HWPT, data }) — a nested HWPT with an empty stage 1. */
  allocNested(ctx: ModelCtx, dev: ModelDev, parent: ModelHwpt): Prediction<number> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    if (dev.owner !== ctx) return fail('ENOENT', 'the device is not bound to this context');
    if (parent.dead) return fail('ENOENT', 'no such parent');
    if (parent.kind !== 'paging' || !parent.nestParent) return fail('EINVAL', 'not a nest parent');
    if (dev.info.nestingFormats.length === 0) return fail('EOPNOTSUPP', 'no hardware nesting');
    return ok('allocHwpt nested', (id) => {
      if (id !== ctx.nextId) return `allocHwpt returned id ${id}, the model expected ${ctx.nextId}`;
      ctx.nextId++;
      parent.children++;
      ctx.hwpts.set(id, newHwpt(id, 'nested', { parent, allocDev: dev.idx }));
      return undefined;
    });
  }

  /** destroy(hwpt). */
  destroyHwpt(ctx: ModelCtx, h: ModelHwpt): Prediction<void> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    if (h.dead) return fail('ENOENT', 'no such object');
    if (h.attachments > 0) return fail('EBUSY', 'attached');
    if (h.children > 0) return fail('EBUSY', 'has nested children');
    return ok('destroy', () => {
      this.free(ctx, h);
      return undefined;
    });
  }

  /** A stage-1 change followed by its invalidation (the only way the fuzz changes a stage 1). */
  setS1(h: ModelHwpt, giova: bigint, entry: S1Entry | undefined): void {
    if (entry === undefined) h.s1.delete(giova);
    else h.s1.set(giova, entry);
  }

  // ------------------------------------------------------------------ SVA

  /** bindSva(dev, the context's own process). */
  bindSva(ctx: ModelCtx, dev: ModelDev): Prediction<{ pasid: number }> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    if (dev.owner !== ctx) return fail('ENOENT', 'the device is not bound to this context');
    if (!dev.info.sva) return fail('EOPNOTSUPP', 'no SVA');
    if (dev.kind === 'mdev') return fail('EOPNOTSUPP', 'no SVA on a mediated device');
    const p = ctx.proc;
    const pasid = p.svaPasid ?? this.pasids.nextGlobal();
    const existing = dev.attached.get(pasid);
    if (existing !== undefined) {
      if (existing.kind === 'sva' && existing.proc === p) return ok('bindSva (again)', (r) => (r.pasid === pasid ? undefined : `bindSva returned PASID ${r.pasid}, not ${pasid}`));
      return fail('EBUSY', `PASID ${pasid} is attached on the device`);
    }
    // the architecture's refusals of a (stage-1, CD-based) PASID attachment
    const rule = this.rules.attachRules?.(dev, undefined, pasid);
    if (rule !== undefined) return fail(rule.errno, 'the driver refuses an SVA attachment here');
    return ok('bindSva', (r) => {
      if (r.pasid !== pasid) return `bindSva returned PASID ${r.pasid}, the model expected ${pasid}`;
      if (p.svaPasid === undefined) {
        p.svaPasid = pasid;
        this.pasids.takeGlobal(pasid, p);
      }
      p.svaRefs++;
      const id = ctx.nextId++;
      const h = newHwpt(id, 'sva', { proc: p });
      h.attachments = 1;
      ctx.hwpts.set(id, h);
      dev.attached.set(pasid, h);
      return undefined;
    });
  }

  /** unbindSva(dev, pasid). */
  unbindSva(ctx: ModelCtx, dev: ModelDev, pasid: number): Prediction<void> {
    if (ctx.closed) return fail('EBADF', 'the context is closed');
    if (dev.owner !== ctx) return fail('ENOENT', 'the device is not bound to this context');
    if (dev.attached.get(pasid)?.kind !== 'sva') return fail('ENOENT', 'no SVA binding on that PASID');
    return ok('unbindSva', () => {
      this.detachKey(dev, pasid);
      return undefined;
    });
  }

  // ------------------------------------------------------------------ context

  /** close(). */
  close(ctx: ModelCtx): void {
    if (ctx.closed) return;
    for (const d of this.devs) if (d.owner === ctx) this.release(d);
    for (const h of [...ctx.hwpts.values()]) this.free(ctx, h);
    for (const io of ctx.ioas) io.areas.length = 0;
    this.pasids.releaseAll(ctx);
    ctx.closed = true;
  }
}

/** A fresh HWPT record. */
export function newHwpt(
  id: number,
  kind: HwptKind,
  o: { ioas?: ModelIoas; parent?: ModelHwpt; nestParent?: boolean; pasidFlag?: boolean; allocDev?: number; proc?: ModelProc },
): ModelHwpt {
  return {
    id, kind, ioas: o.ioas, parent: o.parent, nestParent: o.nestParent ?? false, pasidFlag: o.pasidFlag ?? false,
    allocDev: o.allocDev, proc: o.proc, s1: new Map(), attachments: 0, children: 0, dead: false,
  };
}
