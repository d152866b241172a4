/**
 * The driver's domains: paging (first- or second-stage I/O page tables), nested (a user
 * first stage over a nest-parent second stage), SVA (a process's CPU page table), identity
 * (pass-through) and blocked. Each knows the PASID-table entry that attaches it and how to
 * flush the caches that may hold its translations (Linux cache.c cache tags).
 */

import {
  IOMMU_READ,
  IOMMU_VTD_INV_FLAGS_LEAF,
  IOMMU_VTD_S1_EAFE,
  IOMMU_VTD_S1_SRE,
  IOMMU_VTD_S1_WPE,
  IOMMU_WRITE,
  IoasidError,
  U64_MAX,
  type DomainKind,
  type DriverDomain,
  type HwptDataVtdS1,
  type InvalidateEntry,
  type IovaRange,
  type PhysicalMemoryLike,
  type ProcessMm,
} from '@ioasid/uapi';
import {
  FLPT_DEFAULT_DID,
  PGTT_FIRST_STAGE,
  PGTT_NESTED,
  PGTT_PASS_THROUGH,
  PGTT_SECOND_STAGE,
  type PasidEntryFields,
} from '../spec/pasid-entry.js';
import * as invalidation from '../spec/invalidation.js';
import type { QiDescriptor } from '../spec/invalidation.js';
import { IoPageTable } from './io-page-table.js';
import type { DeviceState, DriverCaps, IntelIommu } from './intel-iommu.js';

// The spec names the invalidation path uses on every flush, bound once as module-local
// constants (under a module runner that implements import bindings as getters, as vitest's
// does, every read of an imported name would be a call).
const {
  QI_GRAN_DEVICE_OR_PAGE,
  QI_GRAN_DOMAIN,
  QI_GRAN_NONG_PASID,
  QI_GRAN_PSI_PASID,
  iotlbWords,
  piotlbDescriptor,
  piotlbWords,
  psiAlignedAddress,
  psiAlignedMask,
} = invalidation;

/** Where a domain is attached: a unit, a device behind it, and a PASID (0 = RID_PASID). */
export interface Attachment {
  /** The unit. */
  readonly unit: IntelIommu;
  /** The device. */
  readonly state: DeviceState;
  /** The PASID entry. */
  readonly pasid: number;
}

/** An inclusive byte range to flush, or everything. */
type FlushRange = { readonly start: bigint; readonly last: bigint } | undefined;

const KiB4 = 4096n;

function unsupported(what: string): never {
  throw new IoasidError('EOPNOTSUPP', undefined, what);
}

/** `pfn` with its low `bits` bits cleared (the start of an aligned PSI). */
function alignDownPages(pfn: number, bits: number): number {
  const n = 2 ** bits;
  return Math.floor(pfn / n) * n;
}

/** True when `list[i]` is the first entry of its unit. */
function firstOfUnit(list: readonly { readonly unit: IntelIommu }[], i: number): boolean {
  const unit = list[i]!.unit;
  for (let j = 0; j < i; j++) if (list[j]!.unit === unit) return false;
  return true;
}

/** True when `list[i]` is the first entry of its (unit, DID). */
function firstDidOnUnit(list: readonly { readonly unit: IntelIommu; readonly did: number }[], i: number): boolean {
  const { unit, did } = list[i]!;
  for (let j = 0; j < i; j++) if (list[j]!.unit === unit && list[j]!.did === did) return false;
  return true;
}

/** What every VT-d domain shares. */
export abstract class VtdDomain implements DriverDomain {
  /** What the domain is. */
  abstract readonly kind: DomainKind;
  /** Page sizes. */
  pageSizes: readonly bigint[] = [KiB4];
  /** Apertures. */
  apertures: readonly IovaRange[] = [];
  /** Recoverable faults are wanted (the device's PRI is enabled while attached). */
  iopf = false;
  /** Where it is attached. */
  readonly attachments: Attachment[] = [];
  private readonly dids = new Map<IntelIommu, { did: number; refs: number }>();
  /** Set once freed. */
  protected freed = false;

  /** The DID every unit uses for this domain, when fixed (FLPT_DEFAULT_DID). */
  protected fixedDid(): number | undefined {
    return undefined;
  }

  /** The domain's DID on a unit (allocating one on first use). */
  acquireDid(unit: IntelIommu): number {
    const fixed = this.fixedDid();
    if (fixed !== undefined) return fixed;
    let e = this.dids.get(unit);
    if (e === undefined) this.dids.set(unit, (e = { did: unit.allocDid(), refs: 0 }));
    e.refs++;
    return e.did;
  }

  /** Drops a reference to the unit's DID. */
  releaseDid(unit: IntelIommu): void {
    if (this.fixedDid() !== undefined) return;
    const e = this.dids.get(unit);
    if (e !== undefined && --e.refs === 0) {
      this.dids.delete(unit);
      unit.freeDid(e.did);
    }
  }

  /** The DID on a unit where the domain is attached. */
  didOn(unit: IntelIommu): number {
    return this.fixedDid() ?? this.dids.get(unit)!.did;
  }

  /** The PASID-table entry that attaches this domain. */
  abstract entry(unit: IntelIommu, did: number): PasidEntryFields;

  /** Records an attachment. */
  addAttachment(a: Attachment): void {
    this.attachments.push(a);
  }

  /** Forgets an attachment. */
  removeAttachment(unit: IntelIommu, state: DeviceState, pasid: number): void {
    const i = this.attachments.findIndex((a) => a.unit === unit && a.state === state && a.pasid === pasid);
    if (i >= 0) this.attachments.splice(i, 1);
  }

  /** Why the domain cannot go on this unit (undefined: it can). */
  abstract conflict(unit: IntelIommu): string | undefined;

  /** Flushes PASID-tagged translations (first-stage, nested, SVA, pass-through): P_IOTLB per attachment. */
  protected flushPasidTagged(range: FlushRange, ih: boolean): void {
    const byUnit = new Map<IntelIommu, QiDescriptor[]>();
    for (const a of this.attachments) {
      const did = this.didOn(a.unit);
      let d: QiDescriptor;
      if (range === undefined) d = piotlbDescriptor({ granularity: QI_GRAN_NONG_PASID, did, pasid: a.pasid });
      else {
        const psi = psiAlignedAddress(range.start, range.last);
        d = piotlbDescriptor({ granularity: QI_GRAN_PSI_PASID, did, pasid: a.pasid, addr: psi.addr, am: psi.mask, ih });
      }
      let list = byUnit.get(a.unit);
      if (list === undefined) byUnit.set(a.unit, (list = []));
      list.push(d);
    }
    for (const [unit, descs] of byUnit) unit.submit(descs);
  }

  /**
   * {@link flushPasidTagged} of the pages `[firstPfn, lastPfn]` given as numbers (below
   * 2^52): the map/unmap path. The PASID-based IOTLB descriptors are encoded as dwords straight
   * into each unit's queue — the same descriptors, in the same order, without BigInts.
   */
  protected flushPasidTaggedPages(firstPfn: number, lastPfn: number, ih: boolean): void {
    const att = this.attachments;
    if (att.length === 0) return;
    const mask = psiAlignedMask(firstPfn, lastPfn);
    const addrPfn = alignDownPages(firstPfn, mask);
    for (let i = 0; i < att.length; i++) {
      const unit = att[i]!.unit;
      if (!firstOfUnit(att, i)) continue; // one submission per unit, in the order units first appear
      const did = this.didOn(unit);
      for (let j = i; j < att.length; j++) {
        const a = att[j]!;
        if (a.unit === unit) piotlbWords(unit.pending, unit.nextDescriptor(), QI_GRAN_PSI_PASID, did, a.pasid, addrPfn, mask, ih);
      }
      unit.submitPending();
    }
  }

  /**
   * Flushes DID-tagged translations (second stage, and nested children by their DIDs) of the
   * pages `[firstPfn, lastPfn]`: one IOTLB PSI per (unit, DID), or a DSI where the unit lacks
   * PSI or the mask exceeds its MAMV (encoded like {@link flushPasidTaggedPages}).
   */
  protected flushDidTaggedPages(targets: readonly { unit: IntelIommu; did: number }[], firstPfn: number, lastPfn: number, ih: boolean): void {
    if (targets.length === 0) return;
    const mask = psiAlignedMask(firstPfn, lastPfn);
    const addrPfn = alignDownPages(firstPfn, mask);
    for (let i = 0; i < targets.length; i++) {
      const unit = targets[i]!.unit;
      if (!firstOfUnit(targets, i)) continue;
      const psi = unit.caps.psi && mask <= unit.caps.mamv;
      for (let j = i; j < targets.length; j++) {
        const t = targets[j]!;
        if (t.unit !== unit || !firstDidOnUnit(targets, j)) continue; // one descriptor per (unit, DID)
        if (psi) iotlbWords(unit.pending, unit.nextDescriptor(), QI_GRAN_DEVICE_OR_PAGE, t.did, addrPfn, mask, ih, true, true);
        else iotlbWords(unit.pending, unit.nextDescriptor(), QI_GRAN_DOMAIN, t.did, 0, 0, false, true, true);
      }
      unit.submitPending();
    }
  }

  /** Maps pages (paging domains only). */
  map(_iova: bigint, _pfns: Uint32Array, _count: number, _prot: number): void {
    unsupported(`a ${this.kind} domain takes no map`);
  }

  /** Unmaps pages (paging domains only). */
  unmap(_iova: bigint, _length: bigint): void {
    unsupported(`a ${this.kind} domain takes no unmap`);
  }

  /** User invalidation (nested domains only). */
  invalidateUser(_entries: readonly InvalidateEntry[]): number {
    throw new IoasidError('EINVAL', 'hwpt', `a ${this.kind} domain takes no user invalidation`);
  }

  /** Dirty tracking (second-stage paging domains allocated with it). */
  setDirtyTracking(_enable: boolean): void {
    unsupported(`a ${this.kind} domain has no dirty tracking`);
  }

  /** Dirty bitmap (second-stage paging domains allocated with it). */
  readDirty(_iova: bigint, _length: bigint, _pageSize: bigint, _bitmap: Uint8Array, _noClear: boolean): void {
    unsupported(`a ${this.kind} domain has no dirty tracking`);
  }

  /** Releases the domain. */
  free(): void {
    if (this.attachments.length > 0) throw new IoasidError('EBUSY', 'domain', `the ${this.kind} domain is still attached`);
    this.freed = true;
  }
}

/**
 * A kernel-managed paging domain. Like Linux (intel_iommu_domain_alloc_paging_flags, "prefer
 * first stage if possible by default"), an IOAS-backed domain uses the first stage (x86-64
 * 4-level table, PGTT 001b) when the unit has scalable-mode first-stage translation: it is
 * PASID-tagged in the IOTLB and shares its format with the CPU. A nest parent or a
 * dirty-tracking domain must be second stage (PGTT 010b): only the second stage can sit under
 * a user first stage, and only it has A/D bits the IOMMU sets for dirty tracking (SSADE).
 */
export class PagingDomain extends VtdDomain {
  /** Paging. */
  readonly kind = 'paging';
  /** The page table. */
  readonly table: IoPageTable;
  /** 'first' (PGTT 001b) or 'second' (PGTT 010b). */
  readonly stage: 'first' | 'second';
  /** Second stage: adjusted width (AW); first stage: 0. */
  readonly aw: number;
  /** Nested domains over this parent. */
  readonly children = new Set<NestedDomain>();
  /** SSADE is on in the attached PASID entries. */
  dirtyEnabled = false;
  private readonly lastIova: bigint;

  /**
   * @param memory - physical memory
   * @param caps - the first device's unit capabilities
   * @param options - allocation flags
   */
  constructor(
    private readonly memory: PhysicalMemoryLike,
    caps: DriverCaps,
    readonly options: { readonly nestParent: boolean; readonly dirtyTracking: boolean; readonly iopf: boolean },
  ) {
    super();
    this.iopf = options.iopf;
    const second = options.nestParent || options.dirtyTracking || !caps.flts;
    this.stage = second ? 'second' : 'first';
    if (second) {
      this.aw = caps.agaw;
      const width = Math.min(30 + 9 * caps.agaw, caps.mgaw);
      this.table = new IoPageTable(memory, 'second-stage', caps.agaw + 2, caps.sllps & 3);
      this.pageSizes = [KiB4, ...(caps.sllps & 1 ? [2n << 20n] : []), ...(caps.sllps & 2 ? [1n << 30n] : [])];
      this.lastIova = (1n << BigInt(width)) - 1n;
    } else {
      this.aw = 0;
      // 4-level first stage: canonical lower half, 2^47 − 1 (Linux: __DOMAIN_MAX_ADDR(gaw − 1)).
      this.table = new IoPageTable(memory, 'first-stage', 4, 1 | (caps.fl1gp ? 2 : 0));
      this.pageSizes = [KiB4, 2n << 20n, ...(caps.fl1gp ? [1n << 30n] : [])];
      this.lastIova = (1n << 47n) - 1n;
    }
    this.apertures = [{ start: 0n, last: this.lastIova }];
  }

  /** The PASID entry: first-stage-only or second-stage-only (pasid.c pasid_pte_config_*). */
  entry(unit: IntelIommu, did: number): PasidEntryFields {
    if (this.stage === 'first') {
      return { present: true, pgtt: PGTT_FIRST_STAGE, did, aw: unit.caps.agaw, fsptptr: BigInt(this.table.root), fspm: 0, pwsnp: unit.caps.smpwcs };
    }
    return {
      present: true,
      pgtt: PGTT_SECOND_STAGE,
      did,
      aw: this.aw,
      ssptptr: BigInt(this.table.root),
      ssade: this.dirtyEnabled,
      pwsnp: unit.caps.smpwcs,
    };
  }

  /** Why the domain cannot go on a unit. */
  conflict(unit: IntelIommu): string | undefined {
    const c = unit.caps;
    if (this.stage === 'first' && !c.flts) return `VT-d unit ${unit.index} has no first-stage translation (ECAP.FSTS)`;
    if (this.stage === 'first' && this.pageSizes.includes(1n << 30n) && !c.fl1gp) return `VT-d unit ${unit.index} lacks first-stage 1 GiB pages`;
    if (this.stage === 'second' && (!c.slts || this.aw > c.agaw)) return `VT-d unit ${unit.index} cannot walk a ${30 + 9 * this.aw}-bit second stage`;
    if (this.stage === 'second' && (this.table.largePages & ~c.sllps) !== 0) return `VT-d unit ${unit.index} lacks the domain's large pages`;
    if (this.options.nestParent && !c.nested) return `VT-d unit ${unit.index} has no nesting`;
    return undefined;
  }

  /** Maps `count` pages at `iova` (intel_iommu_map_pages; then iotlb_sync_map). */
  override map(iova: bigint, pfns: Uint32Array, count: number, prot: number): void {
    if (this.freed) throw new IoasidError('ENOENT', 'domain', 'the domain was freed');
    if (iova % KiB4 !== 0n) throw new IoasidError('EINVAL', 'iova', 'IOVA must be 4 KiB aligned');
    if (!Number.isInteger(count) || count < 0 || count > pfns.length) throw new IoasidError('EINVAL', 'count', 'bad page count');
    if (count === 0) return;
    const last = iova + BigInt(count) * KiB4 - 1n;
    if (iova < 0n || last > this.lastIova) {
      throw new IoasidError('EINVAL', 'iova', `[0x${iova.toString(16)}, 0x${last.toString(16)}] is outside the aperture (last 0x${this.lastIova.toString(16)})`);
    }
    const read = (prot & IOMMU_READ) !== 0;
    const write = (prot & IOMMU_WRITE) !== 0;
    if (!read && !write) throw new IoasidError('EINVAL', 'prot', 'a mapping needs IOMMU_READ or IOMMU_WRITE');
    if (this.stage === 'first' && !read) {
      throw new IoasidError('EOPNOTSUPP', 'prot', 'first-stage (x86-64) entries cannot express write-only access');
    }
    const firstPfn = Number(iova >> 12n);
    this.table.map(firstPfn, pfns, count, read, write);
    // cache_tag_flush_range_np: caching mode caches not-present entries, else a write-buffer flush.
    let cm = false;
    for (const a of this.attachments) {
      if (a.unit.caps.cm) cm = true;
      else a.unit.flushWriteBuffer();
    }
    if (cm) this.flushRange(firstPfn, firstPfn + count - 1, false, (u) => u.caps.cm && this.attachments.some((a) => a.unit === u));
  }

  /** Unmaps a range earlier mapped; flushes (IH only when no table was freed), then frees the tables. */
  override unmap(iova: bigint, length: bigint): void {
    if (length <= 0n) return;
    if (iova % KiB4 !== 0n || length % KiB4 !== 0n) throw new IoasidError('EINVAL', 'iova', 'unmap must be 4 KiB aligned');
    const freed: number[] = [];
    const firstPfn = Number(iova >> 12n);
    const pages = Number(length >> 12n);
    this.table.unmap(firstPfn, pages, freed);
    this.flushRange(firstPfn, firstPfn + pages - 1, freed.length === 0);
    for (const pfn of freed) this.memory.freeFrames(pfn);
  }

  /**
   * Flushes translations of the pages `[firstPfn, lastPfn]` from every unit where the domain
   * or a nested child is attached (`only`: units to flush, for the DID-tagged flush).
   */
  flushRange(firstPfn: number, lastPfn: number, ih: boolean, only?: (unit: IntelIommu) => boolean): void {
    if (this.stage === 'first') {
      this.flushPasidTaggedPages(firstPfn, lastPfn, ih);
      return;
    }
    const targets: { unit: IntelIommu; did: number }[] = [];
    for (const a of this.attachments) if (only === undefined || only(a.unit)) targets.push({ unit: a.unit, did: this.didOn(a.unit) });
    // CACHE_TAG_NESTING_IOTLB: nested children cache combined translations under their own DIDs.
    for (const child of this.children) {
      for (const a of child.attachments) if (only === undefined || only(a.unit)) targets.push({ unit: a.unit, did: child.didOn(a.unit) });
    }
    this.flushDidTaggedPages(targets, firstPfn, lastPfn, ih);
  }

  /** intel_iommu_set_dirty_tracking: toggles SSADE in every PASID entry using this second stage. */
  override setDirtyTracking(enable: boolean): void {
    if (!this.options.dirtyTracking) unsupported('the domain was not allocated with dirty tracking');
    if (this.dirtyEnabled === enable) return;
    this.dirtyEnabled = enable;
    for (const a of this.attachments) a.unit.modifyPasidEntry(a.state, a.pasid, this.entry(a.unit, this.didOn(a.unit)));
    for (const child of this.children) {
      for (const a of child.attachments) a.unit.modifyPasidEntry(a.state, a.pasid, child.entry(a.unit, child.didOn(a.unit)));
    }
  }

  /** Harvests SS D bits (intel_iommu_read_and_clear_dirty), then flushes the IOTLB for the range. */
  override readDirty(iova: bigint, length: bigint, pageSize: bigint, bitmap: Uint8Array, noClear: boolean): void {
    if (!this.options.dirtyTracking) unsupported('the domain was not allocated with dirty tracking');
    if (length <= 0n) return;
    const granule = Number(pageSize / KiB4);
    if (granule < 1) throw new IoasidError('EINVAL', 'pageSize', 'the bitmap granule must be at least 4 KiB');
    const cleared = this.table.readDirty(Number(iova / KiB4), Number(length / KiB4), granule, bitmap, noClear);
    if (cleared) this.flushRange(Number(iova >> 12n), Number((iova + length - 1n) >> 12n), true);
  }

  /** Frees the tables. */
  override free(): void {
    if (this.children.size > 0) throw new IoasidError('EBUSY', 'domain', 'the nest parent still has nested domains');
    super.free();
    this.table.destroy();
  }
}

/** A nested domain: the user's first stage (iommu_hwpt_vtd_s1) over a nest-parent second stage (PGTT 011b). */
export class NestedDomain extends VtdDomain {
  /** Nested. */
  readonly kind = 'nested';

  /**
   * @param parent - the nest parent
   * @param s1 - the user's stage-1 description
   * @param iopf - recoverable faults wanted
   */
  constructor(
    readonly parent: PagingDomain,
    readonly s1: HwptDataVtdS1,
    iopf: boolean,
  ) {
    super();
    this.iopf = iopf;
    this.pageSizes = [KiB4];
    this.apertures = [{ start: 0n, last: (1n << BigInt(s1.addrWidth - 1)) - 1n }];
    parent.children.add(this);
  }

  /** pasid.c pasid_pte_config_nestd. */
  entry(unit: IntelIommu, did: number): PasidEntryFields {
    const f = this.s1.flags;
    const sre = (f & IOMMU_VTD_S1_SRE) !== 0;
    return {
      present: true,
      pgtt: PGTT_NESTED,
      did,
      aw: this.parent.aw,
      ssptptr: BigInt(this.parent.table.root),
      ssade: this.parent.dirtyEnabled,
      fsptptr: this.s1.pgtblAddr,
      fspm: this.s1.addrWidth === 57 ? 1 : 0,
      sre,
      wpe: sre && (f & IOMMU_VTD_S1_WPE) !== 0,
      eafe: (f & IOMMU_VTD_S1_EAFE) !== 0,
      pwsnp: unit.caps.smpwcs,
    };
  }

  /** intel_pasid_setup_nested's checks. */
  conflict(unit: IntelIommu): string | undefined {
    return nestedConflict(unit.caps, this.s1, this.parent.aw) ?? (unit.caps.agaw < this.parent.aw ? `VT-d unit ${unit.index} AGAW is below the parent's` : undefined);
  }

  /**
   * intel_nested_cache_invalidate_user: each `vtd_s1` entry flushes `[addr, addr + npages·4K)`
   * with PASID-based IOTLB descriptors (IH for LEAF). Stops at the first bad entry.
   */
  override invalidateUser(entries: readonly InvalidateEntry[]): number {
    let done = 0;
    for (const e of entries) {
      const where = `entry ${done} (after ${done} handled)`;
      const handled = { handled: done };
      if (e.type !== 'vtd_s1') throw new IoasidError('EINVAL', 'entries', `${where}: not a vtd_s1 invalidation`, handled);
      if ((e.flags & ~IOMMU_VTD_INV_FLAGS_LEAF) !== 0) throw new IoasidError('EOPNOTSUPP', 'entries', `${where}: unknown flags 0x${e.flags.toString(16)}`, handled);
      if (e.addr % KiB4 !== 0n || (e.npages === U64_MAX && e.addr !== 0n) || e.addr < 0n) {
        throw new IoasidError('EINVAL', 'entries', `${where}: addr must be 4 KiB aligned (and 0 with npages = U64_MAX)`, handled);
      }
      if (e.npages === U64_MAX) this.flushPasidTagged(undefined, false);
      else if (e.npages > 0n) this.flushPasidTagged({ start: e.addr, last: e.addr + e.npages * KiB4 - 1n }, (e.flags & IOMMU_VTD_INV_FLAGS_LEAF) !== 0);
      done++;
    }
    return done;
  }

  /** Unhooks from the parent. */
  override free(): void {
    super.free();
    this.parent.children.delete(this);
  }
}

/** Checks of a vtd_s1 stage-1 against a unit (nested.c / pasid.c intel_pasid_setup_nested). */
export function nestedConflict(caps: DriverCaps, s1: HwptDataVtdS1, parentAw: number): string | undefined {
  if (!caps.nested) return 'the unit has no nested translation (ECAP.NEST)';
  if (s1.addrWidth !== 48 && s1.addrWidth !== 57) return `addr_width ${s1.addrWidth} is neither 48 nor 57`;
  if (s1.addrWidth === 57 && !caps.fl5lp) return 'addr_width 57 needs CAP.FL5LP';
  if ((s1.flags & IOMMU_VTD_S1_SRE) !== 0 && !caps.srs) return 'SRE needs ECAP.SRS';
  if ((s1.flags & IOMMU_VTD_S1_EAFE) !== 0 && !caps.eafs) return 'EAFE needs ECAP.EAFS';
  if (caps.agaw < parentAw) return 'the unit AGAW is below the parent stage-2';
  return undefined;
}

/** An SVA domain: the PASID entry points at the process's x86-64 page table (svm.c). */
export class SvaDomain extends VtdDomain {
  /** SVA. */
  readonly kind = 'sva';
  private unlisten: (() => void) | undefined;

  /** @param mm - the process address space */
  constructor(readonly mm: ProcessMm) {
    super();
    this.iopf = true;
    this.apertures = [{ start: 0n, last: (1n << 47n) - 1n }];
  }

  /** SVA uses FLPT_DEFAULT_DID on every unit. */
  protected override fixedDid(): number {
    return FLPT_DEFAULT_DID;
  }

  /** First-stage entry over the CPU page table (FSPTPTR = __pa(mm->pgd), PWSNP). */
  entry(unit: IntelIommu, did: number): PasidEntryFields {
    return { present: true, pgtt: PGTT_FIRST_STAGE, did, aw: unit.caps.agaw, fsptptr: this.mm.pageTableRoot, fspm: this.mm.format.levels === 5 ? 1 : 0, pwsnp: unit.caps.smpwcs };
  }

  /** Needs first stage and PASIDs. */
  conflict(unit: IntelIommu): string | undefined {
    if (!unit.caps.flts || !unit.caps.pasid) return `VT-d unit ${unit.index} has no first-stage PASID translation for SVA`;
    if (this.mm.format.name !== 'x86-64') return `the process page table is ${this.mm.format.name}, not x86-64`;
    return undefined;
  }

  /** The first attachment registers the mmu notifier. */
  override addAttachment(a: Attachment): void {
    super.addAttachment(a);
    this.unlisten ??= this.mm.onInvalidate((vaddr, length) => {
      // intel_arch_invalidate_secondary_tlbs → cache_tag_flush_range: P_IOTLB for (DID 1, PASID).
      this.flushPasidTagged({ start: vaddr, last: vaddr + length - 1n }, false);
    });
  }

  /** The last detachment removes the notifier. */
  override removeAttachment(unit: IntelIommu, state: DeviceState, pasid: number): void {
    super.removeAttachment(unit, state, pasid);
    if (this.attachments.length === 0 && this.unlisten !== undefined) {
      this.unlisten();
      this.unlisten = undefined;
    }
  }
}

/** The identity domain: pass-through PASID entries (PGTT 100b, DID FLPT_DEFAULT_DID). */
export class IdentityDomain extends VtdDomain {
  /** Identity. */
  readonly kind = 'identity';

  /** @param lastAddress - the host address width's last byte */
  constructor(lastAddress: bigint) {
    super();
    this.apertures = [{ start: 0n, last: lastAddress }];
  }

  protected override fixedDid(): number {
    return FLPT_DEFAULT_DID;
  }

  /** pasid_pte_config_pass_through. */
  entry(unit: IntelIommu, did: number): PasidEntryFields {
    return { present: true, pgtt: PGTT_PASS_THROUGH, did, aw: unit.caps.agaw, pwsnp: unit.caps.smpwcs };
  }

  /** Needs ECAP.PT. */
  conflict(unit: IntelIommu): string | undefined {
    return unit.caps.pt ? undefined : `VT-d unit ${unit.index} has no pass-through (ECAP.PT)`;
  }

  /** The singleton is never released. */
  override free(): void {
    /* static domain */
  }
}

/** The blocking domain: attaching it tears the PASID entry down. */
export class BlockedDomain extends VtdDomain {
  /** Blocked. */
  readonly kind = 'blocked';

  /** Never installed as an entry. */
  entry(): PasidEntryFields {
    return { present: false, pgtt: 0, did: 0 };
  }

  /** Always possible. */
  conflict(): string | undefined {
    return undefined;
  }

  /** The singleton is never released. */
  override free(): void {
    /* static domain */
  }
}
