/**
 * A context: one open of /dev/ioasid. It owns an object table (IOAS, HWPT, device, fault queue
 * ids from one space), the pre-registered memory, and the PASIDs it allocated, and implements
 * every uAPI operation on top of the backend's driver. Every operation checks its arguments in
 * the order iommufd does, then changes state all-or-nothing: a call that throws leaves every
 * object, mapping, pin count and table exactly as before.
 */

import {
  IOMMU_READ,
  IOMMU_WRITE,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  IoasidError,
  U64_MAX,
  VFIO_EEH_PE_DISABLE,
  VFIO_EEH_PE_INJECT_ERR,
  type AllocHwptOptions,
  type AllocPasidOptions,
  type AllocVeventqOptions,
  type AllocViommuOptions,
  type AttachOptions,
  type AttachResult,
  type CopyDmaOptions,
  type DirtyBitmapOptions,
  type DriverDomain,
  type EndpointDescriptor,
  type HwInfo,
  type HwptData,
  type InvalidateEntry,
  type IoasidContext,
  type IommuPageRequest,
  type IovaRange,
  type IovaRanges,
  type MapDmaOptions,
  type MemoryRange,
  type ObjectId,
  type PageFault,
  type PageResponse,
  type Process as ProcessApi,
  type UnmapDmaOptions,
  type Vevent,
} from '@ioasid/uapi';
import type { Process } from '../platform/process.js';
import type { KernelSystem } from './kernel-system.js';
import { FaultQueue } from './fault-queue.js';
import { Ioas, type Area } from './ioas.js';
import { ALL_IOVA, covers, intersect, normalize, overlapsAny, subtract } from './iova-ranges.js';
import type { DeviceObject, FaultObject, HwptObject, IoasObject, KernelObject, VdeviceObject, VeventqObject, ViommuObject } from './objects.js';
import { VeventQueue } from './vevent-queue.js';
import { Pages, type PageSlice } from './pages.js';

const PAGE = 4096n;
/** The last byte an automatically allocated IOVA range may use (io_pagetable.c: ULONG_MAX − PAGE_SIZE). */
const AUTO_IOVA_LAST = U64_MAX - PAGE;
const RID = -1;
/** fd-level extensions (IOASID_CHECK_EXTENSION). */
const EXTENSIONS = new Set(['prereg', 'type1v2', 'copy', 'allow-iovas', 'software-nesting', 'pasid-alloc', 'fault-queue']);

const hex = (v: bigint) => `0x${v.toString(16)}`;

function permissions(read: boolean | undefined, write: boolean | undefined): number {
  if (read === undefined && write === undefined) return IOMMU_READ | IOMMU_WRITE;
  const prot = (read === true ? IOMMU_READ : 0) | (write === true ? IOMMU_WRITE : 0);
  if (prot === 0) throw new IoasidError('EINVAL', 'read/write', 'a mapping must be readable or writable');
  return prot;
}

function checkU64(value: bigint, argument: string): void {
  if (value < 0n) throw new IoasidError('EINVAL', argument, `${argument} must not be negative`);
  if (value >= U64_MAX) throw new IoasidError('EOVERFLOW', argument, `${argument} ${hex(value)} does not fit below 2^64-1`);
}

function isPow2(v: bigint): boolean {
  return v > 0n && (v & (v - 1n)) === 0n;
}

/** One open of /dev/ioasid. */
export class Context implements IoasidContext {
  /** Informational interface version. */
  readonly apiVersion = 1;
  private readonly objects = new Map<ObjectId, KernelObject>();
  private nextId = 1;
  private readonly registrations: { vaddr: bigint; length: bigint; pages: Pages }[] = [];
  private closed = false;

  /**
   * @param system - the system the context was opened on
   * @param process - the process that opened it (whose memory it maps)
   */
  constructor(
    private readonly system: KernelSystem,
    readonly process: Process,
  ) {}

  // ---------------------------------------------------------------- objects

  private live(): void {
    if (this.closed) throw new IoasidError('EBADF', 'context', 'the context is closed');
  }

  private newId(): ObjectId {
    this.system.memory.failNth.check('object id');
    return this.nextId++;
  }

  /** Gives back the id a failed call took last, so that the failure leaves the id space as it was. */
  private releaseId(id: ObjectId): void {
    if (id === this.nextId - 1) this.nextId = id;
  }

  private lookup(id: ObjectId, argument: string): KernelObject {
    const o = this.objects.get(id);
    if (o === undefined) throw new IoasidError('ENOENT', argument, `no object with id ${id}`);
    return o;
  }

  private ioasOf(id: ObjectId, argument: string): Ioas {
    const o = this.objects.get(id);
    if (o?.kind !== 'ioas') throw new IoasidError('ENOENT', argument, `${id} is not an IOAS`);
    return o.ioas;
  }

  private deviceOf(id: ObjectId, argument = 'dev'): DeviceObject {
    const o = this.objects.get(id);
    if (o?.kind !== 'device') throw new IoasidError('ENOENT', argument, `${id} is not a bound device`);
    return o;
  }

  private hwptOf(id: ObjectId, argument = 'hwpt'): HwptObject {
    const o = this.objects.get(id);
    if (o?.kind !== 'hwpt') throw new IoasidError('ENOENT', argument, `${id} is not a HWPT`);
    return o;
  }

  private faultOf(id: ObjectId, argument = 'queue'): FaultQueue {
    const o = this.objects.get(id);
    if (o?.kind !== 'fault') throw new IoasidError('ENOENT', argument, `${id} is not a fault queue`);
    return o.queue;
  }

  /** 1 when an fd-level extension is supported. */
  checkExtension(extension: string): 0 | 1 {
    this.live();
    return EXTENSIONS.has(extension) ? 1 : 0;
  }

  /** Allocates an IOAS. */
  allocIoas(): ObjectId {
    this.live();
    const id = this.newId();
    const o: IoasObject = { kind: 'ioas', id, ioas: new Ioas(id, undefined) };
    this.objects.set(id, o);
    return id;
  }

  /** Software nesting: a child IOAS whose MAP `vaddr` is an IOVA of `parentIoas`. */
  createNesting(parentIoas: ObjectId): ObjectId {
    this.generation++;
    this.live();
    const parent = this.ioasOf(parentIoas, 'parentIoas');
    const id = this.newId();
    parent.children++;
    this.objects.set(id, { kind: 'ioas', id, ioas: new Ioas(id, parent) });
    return id;
  }

  /** Destroys an object; one that is in use is EBUSY. */
  destroy(id: ObjectId): void {
    this.generation++;
    this.live();
    const o = this.lookup(id, 'id');
    switch (o.kind) {
      case 'ioas': {
        const io = o.ioas;
        if (io.domains.size > 0 || this.hwptsOf(io).length > 0) {
          throw new IoasidError('EBUSY', 'id', `IOAS ${id} has HWPTs or devices attached`);
        }
        if (io.children > 0) throw new IoasidError('EBUSY', 'id', `IOAS ${id} has software-nested children`);
        for (const a of io.areas.items()) io.remove(a);
        if (io.parent) io.parent.children--;
        break;
      }
      case 'hwpt':
        if (o.attachments > 0) throw new IoasidError('EBUSY', 'id', `HWPT ${id} is attached to a device`);
        if (o.children > 0) throw new IoasidError('EBUSY', 'id', `HWPT ${id} is the parent of nested HWPTs`);
        if (o.type === 'sva') throw new IoasidError('EINVAL', 'id', `HWPT ${id} is an SVA binding: use unbindSva`);
        this.freeHwpt(o);
        return;
      case 'device':
        throw new IoasidError('EINVAL', 'id', `${id} is a device: use unbindDevice`);
      case 'fault':
        if (o.queue.users > 0) throw new IoasidError('EBUSY', 'id', `fault queue ${id} is used by a HWPT`);
        for (const g of o.queue.pending()) this.system.driver.pageResponse(g.endpoint, g.pasid, g.grpid, IOMMUFD_PAGE_RESP_INVALID);
        break;
      case 'viommu':
        if (o.nested > 0 || o.vdevices.size > 0 || o.veventqs.size > 0) {
          throw new IoasidError('EBUSY', 'id', `vIOMMU ${id} has nested HWPTs, vDEVICEs or vEVENTQs`);
        }
        o.driver.free();
        o.parent.children--;
        break;
      case 'vdevice':
        for (const h of o.device.attached.values()) {
          if (h.viommu === o.viommu) throw new IoasidError('EBUSY', 'id', `${o.device.endpoint.name} is attached to a nested HWPT of vIOMMU ${o.viommu.id}`);
        }
        this.freeVdevice(o);
        return;
      case 'veventq':
        o.viommu.driver.setEventSink(o.type, undefined);
        o.viommu.veventqs.delete(o.type);
        break;
    }
    this.objects.delete(id);
  }

  private freeVdevice(v: VdeviceObject): void {
    v.viommu.driver.removeVdevice(v.device.rid);
    v.viommu.vdevices.delete(v.device);
    v.viommu.virtIds.delete(v.virtId);
    this.objects.delete(v.id);
  }

  /** Releases every object and unpins every page. Idempotent. */
  close(): void {
    if (this.closed) return;
    for (const o of [...this.objects.values()]) if (o.kind === 'device') this.unbindDevice(o.id);
    const hwpts = [...this.objects.values()].filter((o): o is HwptObject => o.kind === 'hwpt');
    for (const h of hwpts) if (h.type === 'nested') this.freeHwpt(h);
    // vEVENTQs, then vIOMMUs (their vDEVICEs went with the devices), before their nest parents
    for (const o of [...this.objects.values()]) if (o.kind === 'veventq') this.destroy(o.id);
    for (const o of [...this.objects.values()]) if (o.kind === 'viommu') this.destroy(o.id);
    for (const h of hwpts) if (h.type !== 'nested' && this.objects.has(h.id)) this.freeHwpt(h);
    const ioases = [...this.objects.values()].filter((o): o is IoasObject => o.kind === 'ioas');
    // children first, so that their areas release their parents' areas
    ioases.sort((a, b) => (a.ioas.parent === undefined ? 1 : 0) - (b.ioas.parent === undefined ? 1 : 0));
    for (const o of ioases) {
      for (const a of o.ioas.areas.items()) o.ioas.remove(a);
      this.objects.delete(o.id);
    }
    for (const o of [...this.objects.values()]) if (o.kind === 'fault') this.destroy(o.id);
    for (const r of this.registrations.splice(0)) r.pages.put(0, r.pages.count);
    this.system.pasids.releaseAll(this);
    this.system.contexts.delete(this);
    this.closed = true;
  }

  // ---------------------------------------------------------------- memory

  /** Pre-registers (pins once, accounts once) process memory. */
  registerMemory(range: MemoryRange): void {
    this.live();
    checkU64(range.vaddr, 'vaddr');
    checkU64(range.length, 'length');
    if (range.length === 0n || range.length % PAGE !== 0n) throw new IoasidError('EINVAL', 'length', 'length must be a non-zero multiple of 4 KiB');
    if (range.vaddr % PAGE !== 0n) throw new IoasidError('EINVAL', 'vaddr', 'vaddr must be page aligned');
    const last = range.vaddr + range.length - 1n;
    for (const r of this.registrations) {
      if (r.vaddr <= last && range.vaddr <= r.vaddr + r.length - 1n) {
        throw new IoasidError('EBUSY', 'vaddr', `[${hex(range.vaddr)}, ${hex(last)}] overlaps registered memory`);
      }
    }
    const pages = new Pages(this.process, range.vaddr, Number(range.length / PAGE), true);
    this.registrations.push({ vaddr: range.vaddr, length: range.length, pages });
  }

  /** Unregisters exactly a registration; one still used by mappings is EBUSY. */
  unregisterMemory(range: MemoryRange): void {
    this.live();
    const i = this.registrations.findIndex((r) => r.vaddr === range.vaddr && r.length === range.length);
    if (i < 0) throw new IoasidError('ENOENT', 'vaddr', 'no registration matches this range exactly');
    const r = this.registrations[i]!;
    if (this.registrationInUse(r.pages)) throw new IoasidError('EBUSY', 'vaddr', 'the registered memory is still mapped');
    this.registrations.splice(i, 1);
    r.pages.put(0, r.pages.count);
  }

  /**
   * True while some area of some IOAS maps pages of the registration (a MAP from it, a COPY of
   * such a MAP, a software-nested child of one). Derived from the areas themselves, so that no
   * path that adds or removes areas (unmap, destroy, close) can leave a stale count behind.
   */
  private registrationInUse(pages: Pages): boolean {
    for (const o of this.objects.values()) {
      if (o.kind !== 'ioas') continue;
      for (const a of o.ioas.areas.items()) if (a.slices.some((s) => s.pages === pages)) return true;
    }
    return false;
  }

  /** The usable IOVA ranges of an IOAS: the domains' apertures minus every reserved region. */
  private usable(io: Ioas, extra?: { apertures: readonly IovaRange[]; reserved: readonly IovaRange[] }): IovaRange[] {
    if (extra === undefined) {
      const hit = this.usableCache.get(io);
      if (hit?.generation === this.generation) return hit.ranges;
      const ranges = this.computeUsable(io, undefined);
      this.usableCache.set(io, { generation: this.generation, ranges });
      return ranges;
    }
    return this.computeUsable(io, extra);
  }

  /**
   * Bumped by every operation that can change which domains mirror an IOAS or which devices
   * are attached to them (and so an IOAS's usable ranges); MAP/UNMAP/COPY do not bump it.
   */
  private generation = 0;
  private readonly usableCache = new WeakMap<Ioas, { generation: number; ranges: IovaRange[] }>();

  private computeUsable(io: Ioas, extra: { apertures: readonly IovaRange[]; reserved: readonly IovaRange[] } | undefined): IovaRange[] {
    let ranges: IovaRange[] = [...ALL_IOVA];
    for (const d of io.domains) ranges = intersect(ranges, d.apertures);
    const reserved: IovaRange[] = [];
    for (const dev of this.devicesOn(io)) reserved.push(...dev.info.reservedRegions);
    if (extra) {
      ranges = intersect(ranges, extra.apertures);
      reserved.push(...extra.reserved);
    }
    return subtract(ranges, reserved);
  }

  private alignment(io: Ioas): bigint {
    let a = PAGE;
    for (const d of io.domains) {
      const min = d.pageSizes[0];
      if (min !== undefined && min > a) a = min;
    }
    return a;
  }

  /** IOVA_RANGES. */
  iovaRanges(ioas: ObjectId): IovaRanges {
    this.live();
    const io = this.ioasOf(ioas, 'ioas');
    return { ranges: this.usable(io), alignment: this.alignment(io) };
  }

  /** ALLOW_IOVAS: replaces the allowed list; an empty list clears it. */
  allowIovas(ioas: ObjectId, ranges: readonly IovaRange[]): void {
    this.live();
    const io = this.ioasOf(ioas, 'ioas');
    for (const [i, r] of ranges.entries()) {
      if (!(r.start < r.last)) throw new IoasidError('EINVAL', `ranges[${i}]`, 'each range needs start < last');
      if (r.last > U64_MAX) throw new IoasidError('EOVERFLOW', `ranges[${i}]`, 'last is beyond 2^64-1');
    }
    const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : 1));
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.start <= sorted[i - 1]!.last) throw new IoasidError('EINVAL', 'ranges', 'ranges overlap');
    }
    const usable = this.usable(io);
    for (const r of sorted) {
      if (!covers(usable, r.start, r.last)) {
        throw new IoasidError('EADDRINUSE', 'ranges', `[${hex(r.start)}, ${hex(r.last)}] intersects a reserved region`);
      }
    }
    io.allowed = sorted.length === 0 ? undefined : sorted;
  }

  private placeArea(io: Ioas, iova: bigint | undefined, length: bigint, hint: bigint, argument: string): bigint {
    const align = this.alignment(io);
    if (length === 0n || length % align !== 0n) {
      throw new IoasidError('EINVAL', 'length', `length must be a non-zero multiple of the IOAS alignment ${hex(align)}`);
    }
    const usable = this.usable(io);
    if (iova !== undefined) {
      if (iova % align !== 0n) throw new IoasidError('EINVAL', argument, `${hex(iova)} is not aligned to ${hex(align)}`);
      const last = iova + length - 1n;
      if (last > U64_MAX) throw new IoasidError('EOVERFLOW', argument, 'iova + length wraps past 2^64');
      if (!covers(usable, iova, last)) {
        throw new IoasidError('EINVAL', argument, `[${hex(iova)}, ${hex(last)}] is outside the usable IOVA ranges`);
      }
      if (io.areas.intersects(iova, last)) {
        throw new IoasidError('EEXIST', argument, `[${hex(iova)}, ${hex(last)}] overlaps an existing mapping`);
      }
      return iova;
    }
    // Auto IOVA (io_pagetable.c): alignment = min(next power of two ≥ length, lowest set bit
    // of the source address), at least the IOAS alignment; the search runs over
    // [PAGE_SIZE, ULONG_MAX − PAGE_SIZE], so IOVA 0 and the last page are never returned.
    let want = 1n;
    while (want < length && want < 1n << 30n) want <<= 1n;
    const low = hint === 0n ? want : hint & -hint;
    let al = want < low ? want : low;
    if (al < align) al = align;
    const windows = io.allowed === undefined ? usable : intersect(usable, io.allowed);
    for (const w of windows) {
      const lo = w.start < PAGE ? PAGE : w.start;
      const hi = w.last > AUTO_IOVA_LAST ? AUTO_IOVA_LAST : w.last;
      if (lo > hi) continue;
      const got = io.areas.findHole(lo, hi, length, al);
      if (got !== undefined) return got;
    }
    throw new IoasidError('ENOSPC', argument, `no free IOVA range of ${hex(length)} bytes`);
  }

  /** MAP_DMA: maps process memory; returns the IOVA. */
  mapDma(ioas: ObjectId, options: MapDmaOptions): bigint {
    this.live();
    if (options.iova !== undefined) checkU64(options.iova, 'iova');
    checkU64(options.length, 'length');
    checkU64(options.vaddr, 'vaddr');
    const prot = permissions(options.read, options.write);
    const io = this.ioasOf(ioas, 'ioas');
    const length = options.length;
    if (length === 0n) throw new IoasidError('EINVAL', 'length', 'length must not be 0');
    if (options.vaddr % PAGE !== 0n) throw new IoasidError('EINVAL', 'vaddr', 'vaddr must be page aligned');
    const iova = this.placeArea(io, options.iova, length, options.vaddr, 'iova');
    const count = Number(length / PAGE);
    const write = (prot & IOMMU_WRITE) !== 0;
    let slices: PageSlice[];
    let pfns: Uint32Array;
    let dependsOn: Area[] = [];
    let registration: (typeof this.registrations)[number] | undefined;
    if (io.parent !== undefined) {
      // software nesting: vaddr is an IOVA of the parent IOAS
      const src = this.contiguous(io.parent, options.vaddr, length, 'vaddr');
      if (write && src.some((a) => (a.prot & IOMMU_WRITE) === 0)) {
        throw new IoasidError('EPERM', 'write', 'the parent mapping is not writable');
      }
      ({ pfns, slices } = this.gather(src, options.vaddr, count));
      dependsOn = src;
    } else if (this.registrations.length > 0) {
      const last = options.vaddr + length - 1n;
      registration = this.registrations.find((r) => r.vaddr <= options.vaddr && last <= r.vaddr + r.length - 1n);
      if (registration === undefined) {
        throw new IoasidError('EINVAL', 'vaddr', 'memory is registered, and this range is outside every registration');
      }
      const off = Number((options.vaddr - registration.vaddr) / PAGE);
      pfns = registration.pages.pfns.subarray(off, off + count);
      slices = [{ pages: registration.pages.get(off, count), offset: off, count }];
    } else {
      const pages = new Pages(this.process, options.vaddr, count, write);
      pfns = pages.pfns;
      slices = [{ pages, offset: 0, count }];
    }
    const area: Area = { start: iova, last: iova + length - 1n, pfns, slices, prot, source: options.vaddr, users: 0, dependsOn };
    try {
      io.insert(area);
    } catch (e) {
      for (const s of slices) s.pages.put(s.offset, s.count);
      throw e;
    }
    return iova;
  }

  /** The areas covering `[start, start+length)` contiguously; ENOENT otherwise. */
  private contiguous(io: Ioas, start: bigint, length: bigint, argument: string): Area[] {
    const last = start + length - 1n;
    const areas = io.areas.overlaps(start, last);
    let next = start;
    for (const a of areas) {
      if (a.start > next) break;
      next = a.last + 1n;
    }
    if (areas.length === 0 || next <= last) {
      throw new IoasidError('ENOENT', argument, `[${hex(start)}, ${hex(last)}] is not fully mapped`);
    }
    return areas;
  }

  /**
   * The frames of `count` pages from `start` in the given areas, sharing their pins: the new
   * area takes a user of exactly the pages it maps (its slices, in IOVA order).
   */
  private gather(areas: readonly Area[], start: bigint, count: number): { pfns: Uint32Array; slices: PageSlice[] } {
    const pfns = new Uint32Array(count);
    const slices: PageSlice[] = [];
    let done = 0;
    for (const a of areas) {
      if (done === count) break;
      const from = start + BigInt(done) * PAGE;
      const off = Number((from - a.start) / PAGE);
      const n = Math.min(count - done, a.pfns.length - off);
      pfns.set(a.pfns.subarray(off, off + n), done);
      // the parts of the area's slices under its pages [off, off + n)
      let pos = 0;
      for (const sl of a.slices) {
        const lo = Math.max(off, pos);
        const hi = Math.min(off + n, pos + sl.count);
        if (lo < hi) {
          const first = sl.offset + lo - pos;
          slices.push({ pages: sl.pages.get(first, hi - lo), offset: first, count: hi - lo });
        }
        pos += sl.count;
      }
      done += n;
    }
    return { pfns, slices };
  }

  /** UNMAP_DMA with iommufd semantics: whole areas only; returns the bytes unmapped. */
  unmapDma(ioas: ObjectId, options: UnmapDmaOptions): bigint {
    this.live();
    const { iova, length } = options;
    if (iova === 0n && length === U64_MAX) {
      const io = this.ioasOf(ioas, 'ioas');
      const all = io.areas.items();
      const busy = all.find((a) => a.users > 0);
      if (busy) throw new IoasidError('EBUSY', 'iova', `${hex(busy.start)} is used by a nested or copied mapping`);
      let bytes = 0n;
      for (const a of all) {
        io.remove(a);
        bytes += a.last - a.start + 1n;
      }
      return bytes;
    }
    checkU64(iova, 'iova');
    checkU64(length, 'length');
    if (length === 0n) throw new IoasidError('EINVAL', 'length', 'length must not be 0');
    const last = iova + length - 1n;
    if (last > U64_MAX) throw new IoasidError('EOVERFLOW', 'length', 'iova + length wraps past 2^64');
    const io = this.ioasOf(ioas, 'ioas');
    const areas = io.areas.overlaps(iova, last);
    if (areas.length === 0) throw new IoasidError('ENOENT', 'iova', `nothing is mapped in [${hex(iova)}, ${hex(last)}]`);
    for (const a of areas) {
      if (a.start < iova || a.last > last) {
        throw new IoasidError('ENOENT', 'iova', `[${hex(iova)}, ${hex(last)}] would split the mapping [${hex(a.start)}, ${hex(a.last)}]`);
      }
      if (a.users > 0) throw new IoasidError('EBUSY', 'iova', `${hex(a.start)} is used by a software-nested mapping`);
    }
    let bytes = 0n;
    for (const a of areas) {
      io.remove(a);
      bytes += a.last - a.start + 1n;
    }
    return bytes;
  }

  /** COPY: maps into `dst` the pages mapped in `src` (sharing their pins); returns the IOVA. */
  copyDma(dst: ObjectId, src: ObjectId, options: CopyDmaOptions): bigint {
    this.live();
    checkU64(options.srcIova, 'srcIova');
    if (options.dstIova !== undefined) checkU64(options.dstIova, 'dstIova');
    checkU64(options.length, 'length');
    const prot = permissions(options.read, options.write);
    if (options.length === 0n) throw new IoasidError('EINVAL', 'length', 'length must not be 0');
    const dstIo = this.ioasOf(dst, 'dst');
    const srcIo = this.ioasOf(src, 'src');
    if (options.srcIova % PAGE !== 0n || options.length % PAGE !== 0n) {
      throw new IoasidError('EINVAL', 'srcIova', 'source range must be page aligned');
    }
    if (options.srcIova + options.length - 1n > U64_MAX) throw new IoasidError('EOVERFLOW', 'length', 'source range wraps');
    const areas = this.contiguous(srcIo, options.srcIova, options.length, 'srcIova');
    if ((prot & IOMMU_WRITE) !== 0 && areas.some((a) => (a.prot & IOMMU_WRITE) === 0)) {
      throw new IoasidError('EPERM', 'write', 'the source mapping is not writable');
    }
    const iova = this.placeArea(dstIo, options.dstIova, options.length, options.srcIova, 'dstIova');
    const count = Number(options.length / PAGE);
    const { pfns, slices } = this.gather(areas, options.srcIova, count);
    const area: Area = { start: iova, last: iova + options.length - 1n, pfns, slices, prot, source: undefined, users: 0, dependsOn: [] };
    try {
      dstIo.insert(area);
    } catch (e) {
      for (const s of slices) s.pages.put(s.offset, s.count);
      throw e;
    }
    return iova;
  }

  // ---------------------------------------------------------------- devices

  /** Binds a device; returns its id. A device bound anywhere already is EBUSY. */
  bindDevice(name: string): ObjectId {
    this.generation++;
    this.live();
    const ep = this.system.endpoint(name, 'name');
    if (this.system.owners.has(ep.name)) throw new IoasidError('EBUSY', 'name', `${name} is already bound`);
    const rid = ep.kind === 'mdev' ? this.system.endpoint(ep.parent!, 'name') : ep;
    const info = this.system.info(rid);
    if (ep.kind === 'mdev' && info.pasidBits === 0) {
      throw new IoasidError('EOPNOTSUPP', 'name', `${name}: mediated devices need PASIDs, which ${info.backend} lacks here`);
    }
    this.claimDmaOwner(ep, rid, info);
    let mdevPasid: number | undefined;
    if (ep.kind === 'mdev') {
      mdevPasid = this.system.pasids.allocForDevice(ep, rid.name);
    }
    let id: ObjectId;
    try {
      id = this.newId();
    } catch (e) {
      if (mdevPasid !== undefined) this.system.pasids.releaseOn(rid.name, mdevPasid);
      throw e;
    }
    if (ep.kind !== 'mdev') this.system.driver.detach(rid, undefined); // a freshly bound device is blocked
    const dev: DeviceObject = { kind: 'device', id, endpoint: ep, rid, info, attached: new Map(), mdevPasid, vpasids: new Map() };
    this.objects.set(id, dev);
    this.system.owners.set(ep.name, { context: this, device: dev });
    return id;
  }

  /**
   * DMA ownership of a requester ID. A mediated device's DMA is its parent's DMA tagged with a
   * kernel-chosen wire PASID, so whoever drives the parent can issue that PASID and reach the
   * mdev's attachment. Linux's iommufd_device_bind() claims DMA ownership with the iommufd
   * context as the owner cookie (iommu_device_claim_dma_owner(dev, ictx)): one context may
   * claim several devices that share a requester ID, a second context gets EBUSY. Here the
   * parent and its mdevs share the RID: the parent cannot be bound while one of its mdevs is
   * bound by another context, nor an mdev while its parent is bound by another context. Mdevs
   * of one parent in different contexts are fine: only the parent could issue their PASIDs.
   * Functions of one IOMMU group are claimed together the same way.
   */
  private claimDmaOwner(ep: EndpointDescriptor, rid: EndpointDescriptor, info: HwInfo): void {
    if (ep.kind === 'mdev') {
      const parent = this.system.owners.get(rid.name);
      if (parent !== undefined && parent.context !== this) {
        throw new IoasidError('EBUSY', 'name', `${ep.name}: its parent ${rid.name} is bound by another context, which could issue this mediated device's PASID`);
      }
      return;
    }
    for (const o of this.system.owners.values()) {
      if (o.context !== this && o.device.endpoint.kind === 'mdev' && o.device.rid.name === ep.name) {
        throw new IoasidError('EBUSY', 'name', `${ep.name}: its mediated device ${o.device.endpoint.name} is bound by another context, whose PASID this device could issue`);
      }
    }
    // The functions of one IOMMU group (hw_info `group`, e.g. a PAPR PE) share their
    // translation: iommu_device_claim_dma_owner() claims the whole group for one owner.
    for (const name of info.group ?? []) {
      if (name === ep.name) continue;
      const o = this.system.owners.get(name);
      if (o !== undefined && o.context !== this) {
        throw new IoasidError('EBUSY', 'name', `${ep.name}: ${name} shares its IOMMU group and is bound by another context`);
      }
    }
  }

  /** Unbinds a device: detaches everything it has attached. */
  unbindDevice(devId: ObjectId): void {
    this.generation++;
    this.live();
    const dev = this.deviceOf(devId);
    for (const key of [...dev.attached.keys()]) this.detachKey(dev, key);
    // iommufd force-destroys a device's vDEVICEs when the device goes; their ids stay dead
    // (a later destroy is ENOENT)
    for (const o of [...this.objects.values()]) if (o.kind === 'vdevice' && o.device === dev) this.freeVdevice(o);
    if (dev.mdevPasid !== undefined) this.system.pasids.releaseOn(dev.rid.name, dev.mdevPasid);
    this.system.owners.delete(dev.endpoint.name);
    this.objects.delete(devId);
  }

  /** The device's hardware information. */
  getInfo(devId: ObjectId): HwInfo {
    this.live();
    return this.deviceOf(devId).info;
  }

  private devicesOn(io: Ioas): DeviceObject[] {
    const out: DeviceObject[] = [];
    for (const o of this.objects.values()) {
      if (o.kind !== 'device') continue;
      for (const h of o.attached.values()) {
        if (h.ioas === io || h.parent?.ioas === io) {
          out.push(o);
          break;
        }
      }
    }
    return out;
  }

  private hwptsOf(io: Ioas): HwptObject[] {
    return [...this.objects.values()].filter((o): o is HwptObject => o.kind === 'hwpt' && o.ioas === io);
  }

  private checkPasid(dev: DeviceObject, pasid: number): void {
    if (dev.info.pasidBits === 0) {
      throw new IoasidError('EOPNOTSUPP', 'pasid', `${dev.endpoint.name} has no PASID support (${dev.info.unsupported['pasid'] ?? 'pasidBits 0'})`);
    }
    if (!Number.isInteger(pasid) || pasid < 1 || pasid >= 2 ** dev.info.pasidBits) {
      throw new IoasidError('EINVAL', 'pasid', `PASID ${pasid} is outside 1..${2 ** dev.info.pasidBits - 1}`);
    }
  }

  /** Checks that attaching `dev` with `domain` to the IOAS keeps every area and allowed range usable. */
  private checkIovaFit(io: Ioas, dev: DeviceObject, domain: DriverDomain): void {
    const usable = this.usable(io, { apertures: domain.apertures, reserved: dev.info.reservedRegions });
    for (const a of io.areas.items()) {
      if (!covers(usable, a.start, a.last)) {
        const reserved = overlapsAny(dev.info.reservedRegions, a.start, a.last);
        throw new IoasidError(
          reserved ? 'EADDRINUSE' : 'EINVAL',
          'target',
          `mapping [${hex(a.start)}, ${hex(a.last)}] is ${reserved ? 'inside a reserved region' : 'outside the aperture'} of ${dev.endpoint.name}`,
        );
      }
    }
    for (const r of io.allowed ?? []) {
      if (!covers(usable, r.start, r.last)) {
        throw new IoasidError('EADDRINUSE', 'target', `allowed range [${hex(r.start)}, ${hex(r.last)}] is reserved on ${dev.endpoint.name}`);
      }
    }
  }

  /**
   * HWPT_ALLOC over an IOAS: every area and allowed range must lie inside the new domain's
   * aperture, decided here for every backend before the driver maps anything. iommufd's
   * iopt_table_add_domain() reserves what lies outside the aperture and fails when an area is
   * there; the errno is the one attach gives for the same condition (EINVAL, see checkIovaFit).
   */
  private checkAperture(io: Ioas, domain: DriverDomain): void {
    for (const a of io.areas.items()) {
      if (!covers(domain.apertures, a.start, a.last)) {
        throw new IoasidError('EINVAL', 'parent', `mapping [${hex(a.start)}, ${hex(a.last)}] is outside the new domain's aperture`);
      }
    }
    for (const r of io.allowed ?? []) {
      if (!covers(domain.apertures, r.start, r.last)) {
        throw new IoasidError('EADDRINUSE', 'parent', `allowed range [${hex(r.start)}, ${hex(r.last)}] is outside the new domain's aperture`);
      }
    }
  }

  /** Attaches the RID or a PASID to an IOAS (auto HWPT) or a HWPT, replacing what was there. */
  attach(devId: ObjectId, target: ObjectId, options: AttachOptions = {}): AttachResult {
    this.generation++;
    this.live();
    const dev = this.deviceOf(devId);
    const requested = options.pasid;
    if (typeof requested === 'number') this.checkPasid(dev, requested);
    else if (requested === 'auto' && dev.info.pasidBits === 0) {
      throw new IoasidError('EOPNOTSUPP', 'pasid', `${dev.endpoint.name} has no PASID support`);
    }
    const t = this.lookup(target, 'target');
    if (t.kind !== 'ioas' && t.kind !== 'hwpt') throw new IoasidError('EINVAL', 'target', `${target} is neither an IOAS nor a HWPT`);
    if (t.kind === 'hwpt' && t.type === 'sva') throw new IoasidError('EINVAL', 'target', 'an SVA binding is attached by bindSva');

    // Resolve the PASID: the user's (virtual for an mdev) and the one on the wire.
    const sys = this.system;
    let userPasid: number | undefined;
    let wirePasid: number | undefined;
    const claims: (() => void)[] = [];
    if (dev.endpoint.kind === 'mdev') {
      if (requested === undefined) wirePasid = dev.mdevPasid;
      else {
        userPasid = requested === 'auto' ? this.freeVpasid(dev) : requested;
        wirePasid = dev.vpasids.get(userPasid);
        if (wirePasid === undefined) {
          const p = sys.pasids.allocForDevice(dev.endpoint, dev.rid.name);
          wirePasid = p;
          claims.push(() => { sys.pasids.releaseOn(dev.rid.name, p); });
        }
      }
    } else if (requested !== undefined) {
      if (requested === 'auto') {
        const p = sys.pasids.allocForDevice(this, dev.rid.name);
        claims.push(() => { sys.pasids.releaseOn(dev.rid.name, p); });
        userPasid = wirePasid = p;
      } else {
        userPasid = wirePasid = requested;
        if (sys.pasids.isGlobalOf(this, requested) && !dev.info.globalPasid) {
          throw new IoasidError('EOPNOTSUPP', 'pasid', `${dev.endpoint.name} cannot use the system-wide PASID ${requested} (${dev.info.unsupported['globalPasid'] ?? 'no global PASIDs'})`);
        }
        if (!sys.pasids.usableBy(this, dev.rid.name, requested)) {
          throw new IoasidError('EBUSY', 'pasid', `PASID ${requested} is allocated to someone else on ${dev.rid.name}`);
        }
        if (sys.pasids.ownerOn(dev.rid.name, requested) === undefined) {
          sys.pasids.claim(this, dev.rid.name, requested);
          claims.push(() => { sys.pasids.releaseOn(dev.rid.name, requested); });
        }
      }
    }
    const key = userPasid ?? RID;
    const rollbackClaims = () => {
      for (const c of claims) c();
    };

    let hwpt: HwptObject;
    let created = false;
    try {
      if (t.kind === 'hwpt') {
        hwpt = t;
        if (hwpt.type === 'paging' && wirePasid !== undefined && dev.endpoint.kind !== 'mdev' && !hwpt.pasidFlag && !hwpt.auto) {
          throw new IoasidError('EINVAL', 'target', `HWPT ${hwpt.id} was not allocated with the PASID flag`);
        }
        if (hwpt.dirtyTracking && !dev.info.dirtyTracking) {
          // iommufd: a HWPT allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING enforces it on attach
          throw new IoasidError('EINVAL', 'target', `HWPT ${hwpt.id} tracks dirty pages and ${dev.endpoint.name} cannot`);
        }
        const why = sys.driver.attachConflict(dev.rid, hwpt.domain, wirePasid);
        if (why !== undefined) throw new IoasidError('EINVAL', 'target', why);
        if (hwpt.ioas) this.checkIovaFit(hwpt.ioas, dev, hwpt.domain);
        if (hwpt.parent?.ioas) this.checkIovaFit(hwpt.parent.ioas, dev, hwpt.parent.domain);
      } else {
        const io = t.ioas;
        const reuse = this.hwptsOf(io).find(
          (h) => h.auto && sys.driver.attachConflict(dev.rid, h.domain, wirePasid) === undefined,
        );
        if (reuse) {
          this.checkIovaFit(io, dev, reuse.domain);
          hwpt = reuse;
        } else {
          const domain = sys.driver.allocPagingDomain(dev.rid, {
            nestParent: false, dirtyTracking: false, pasid: wirePasid !== undefined, iopf: false,
          });
          try {
            this.checkIovaFit(io, dev, domain);
            io.addDomain(domain);
          } catch (e) {
            domain.free();
            throw e;
          }
          let id: ObjectId;
          try {
            id = this.newId();
          } catch (e) {
            io.removeDomain(domain);
            domain.free();
            throw e;
          }
          hwpt = {
            kind: 'hwpt', id, type: 'paging', domain, ioas: io, parent: undefined, auto: true, nestParent: false,
            dirtyTracking: false, pasidFlag: wirePasid !== undefined, faultQueue: undefined, data: undefined,
            process: undefined, attachments: 0, children: 0,
          };
          this.objects.set(id, hwpt);
          created = true;
        }
      }
      sys.driver.attach(dev.rid, hwpt.domain, wirePasid);
    } catch (e) {
      if (created) {
        this.freeHwpt(hwpt!);
        this.releaseId(hwpt!.id);
      }
      rollbackClaims();
      throw e;
    }
    const previous = dev.attached.get(key);
    hwpt.attachments++;
    dev.attached.set(key, hwpt);
    if (dev.endpoint.kind === 'mdev' && userPasid !== undefined) dev.vpasids.set(userPasid, wirePasid!);
    if (previous !== undefined && previous !== hwpt) this.dropAttachment(previous);
    else if (previous === hwpt) hwpt.attachments--;
    return userPasid === undefined ? { hwpt: hwpt.id } : { hwpt: hwpt.id, pasid: userPasid };
  }

  private freeVpasid(dev: DeviceObject): number {
    let p = 1;
    while (dev.vpasids.has(p)) p++;
    return p;
  }

  private dropAttachment(h: HwptObject): void {
    h.attachments--;
    if (h.attachments === 0 && (h.auto || h.type === 'sva')) this.freeHwpt(h);
  }

  private freeHwpt(h: HwptObject): void {
    if (h.ioas) h.ioas.removeDomain(h.domain);
    h.domain.free();
    if (h.parent) h.parent.children--;
    if (h.viommu) h.viommu.nested--;
    if (h.faultQueue) h.faultQueue.users--;
    if (h.type === 'sva' && h.process) this.system.putSvaPasid(h.process);
    this.objects.delete(h.id);
  }

  /** Detaches the RID or a PASID; a PASID that is not attached is a no-op. */
  detach(devId: ObjectId, options: { readonly pasid?: number } = {}): void {
    this.generation++;
    this.live();
    const dev = this.deviceOf(devId);
    // Contract: detaching a PASID that is not attached succeeds and changes nothing — on a
    // device without PASIDs no PASID can be attached, so that is every PASID.
    if (options.pasid !== undefined && dev.info.pasidBits !== 0) this.checkPasid(dev, options.pasid);
    const key = options.pasid ?? RID;
    if (dev.attached.has(key)) this.detachKey(dev, key);
  }

  private wireOf(dev: DeviceObject, key: number): number | undefined {
    if (dev.endpoint.kind === 'mdev') return key === RID ? dev.mdevPasid : dev.vpasids.get(key);
    return key === RID ? undefined : key;
  }

  private detachKey(dev: DeviceObject, key: number): void {
    const h = dev.attached.get(key)!;
    const wire = this.wireOf(dev, key);
    this.system.driver.detach(dev.rid, wire);
    dev.attached.delete(key);
    if (key !== RID && wire !== undefined) {
      if (dev.endpoint.kind === 'mdev') {
        dev.vpasids.delete(key);
        this.system.pasids.releaseOn(dev.rid.name, wire);
      } else if (h.type !== 'sva' && !this.system.pasids.isGlobalOf(this, wire)) {
        // a per-device claim made at attach (allocPasid({ devices }) reservations are kept)
        if (!this.ownsDeviceReservation(wire, dev)) this.system.pasids.releaseOn(dev.rid.name, wire);
      }
    }
    this.dropAttachment(h);
  }

  private readonly reservations = new Map<number, Set<string>>();

  private ownsDeviceReservation(pasid: number, dev: DeviceObject): boolean {
    return this.reservations.get(pasid)?.has(dev.rid.name) === true;
  }

  // ---------------------------------------------------------------- HWPTs

  /** HWPT_ALLOC: a paging HWPT over an IOAS, or a nested one over a nest-parent HWPT. */
  allocHwpt(devId: ObjectId, options: AllocHwptOptions): ObjectId {
    this.generation++;
    this.live();
    const dev = this.deviceOf(devId);
    const parent = this.lookup(options.parent, 'parent');
    const flags = options.flags ?? {};
    const queue = options.faultQueue === undefined ? undefined : this.faultOf(options.faultQueue, 'faultQueue');
    const info = dev.info;
    if (queue !== undefined && !info.iopf) {
      throw new IoasidError('EOPNOTSUPP', 'faultQueue', `${dev.endpoint.name} cannot report I/O page faults (${info.unsupported['iopf'] ?? 'no PRI/stall'})`);
    }
    let domain: DriverDomain;
    let hw: Omit<HwptObject, 'id' | 'domain'>;
    if (parent.kind === 'ioas') {
      if (options.data !== undefined) throw new IoasidError('EINVAL', 'data', 'a paging HWPT takes no vendor data');
      if (flags.nestParent === true && queue !== undefined) {
        throw new IoasidError('EOPNOTSUPP', 'flags', 'a nest parent cannot take a fault queue');
      }
      if (flags.nestParent === true && info.nestingFormats.length === 0) {
        throw new IoasidError('EOPNOTSUPP', 'flags', `${dev.endpoint.name} has no hardware nesting (${info.unsupported['nesting'] ?? 'no formats'})`);
      }
      if (flags.dirtyTracking === true && !info.dirtyTracking) {
        throw new IoasidError('EOPNOTSUPP', 'flags', `${dev.endpoint.name} cannot track dirty pages (${info.unsupported['dirtyTracking'] ?? 'no dirty tracking'})`);
      }
      if (flags.pasid === true && info.pasidBits === 0) {
        throw new IoasidError('EOPNOTSUPP', 'flags', `${dev.endpoint.name} has no PASID support`);
      }
      domain = this.system.driver.allocPagingDomain(dev.rid, {
        nestParent: flags.nestParent === true, dirtyTracking: flags.dirtyTracking === true,
        pasid: flags.pasid === true, iopf: queue !== undefined,
      });
      try {
        this.checkAperture(parent.ioas, domain);
        parent.ioas.addDomain(domain);
      } catch (e) {
        domain.free();
        throw e;
      }
      hw = {
        kind: 'hwpt', type: 'paging', ioas: parent.ioas, parent: undefined, auto: false,
        nestParent: flags.nestParent === true, dirtyTracking: flags.dirtyTracking === true, pasidFlag: flags.pasid === true,
        faultQueue: queue, data: undefined, process: undefined, attachments: 0, children: 0,
      };
    } else if (parent.kind === 'hwpt') {
      if (parent.type !== 'paging') throw new IoasidError('EINVAL', 'parent', `HWPT ${parent.id} is not a paging HWPT`);
      if (!parent.nestParent) throw new IoasidError('EINVAL', 'parent', `HWPT ${parent.id} was not allocated as a nest parent`);
      const data = this.nestedData(dev, options);
      domain = this.system.driver.allocNestedDomain(dev.rid, parent.domain, data, { iopf: queue !== undefined });
      hw = {
        kind: 'hwpt', type: 'nested', ioas: undefined, parent, auto: false, nestParent: false, dirtyTracking: false,
        pasidFlag: flags.pasid === true, faultQueue: queue, data, process: undefined, attachments: 0, children: 0,
      };
    } else if (parent.kind === 'viommu') {
      const data = this.nestedData(dev, options);
      domain = parent.driver.allocNested(dev.rid, data, { iopf: queue !== undefined });
      hw = {
        kind: 'hwpt', type: 'nested', ioas: undefined, parent: parent.parent, viommu: parent, auto: false, nestParent: false,
        dirtyTracking: false, pasidFlag: flags.pasid === true, faultQueue: queue, data, process: undefined, attachments: 0, children: 0,
      };
    } else {
      throw new IoasidError('EINVAL', 'parent', `${options.parent} is neither an IOAS, a HWPT nor a vIOMMU`);
    }
    let id: ObjectId;
    try {
      id = this.newId();
    } catch (e) {
      hw.ioas?.removeDomain(domain);
      domain.free();
      throw e;
    }
    const obj: HwptObject = { ...hw, id, domain };
    if (obj.parent) obj.parent.children++;
    if (obj.viommu) obj.viommu.nested++;
    if (queue) queue.users++;
    this.objects.set(id, obj);
    return id;
  }

  /** The checks of a nested HWPT's flags and vendor data (over a nest parent or a vIOMMU). */
  private nestedData(dev: DeviceObject, options: AllocHwptOptions): HwptData {
    const flags = options.flags ?? {};
    if (flags.nestParent === true || flags.dirtyTracking === true) {
      throw new IoasidError('EOPNOTSUPP', 'flags', 'a nested HWPT takes neither NEST_PARENT nor DIRTY_TRACKING');
    }
    const data = options.data;
    if (data === undefined) throw new IoasidError('EINVAL', 'data', 'a nested HWPT needs vendor data');
    if (!dev.info.nestingFormats.includes(data.type)) {
      throw new IoasidError('EOPNOTSUPP', 'data', `${dev.endpoint.name} does not accept nested data of type '${data.type}'`);
    }
    return data;
  }

  /** User invalidation of a nested HWPT; returns the entries handled. */
  invalidateHwpt(hwptId: ObjectId, entries: readonly InvalidateEntry[]): number {
    this.live();
    const v = this.objects.get(hwptId);
    // IOMMU_HWPT_INVALIDATE with a vIOMMU id: the vIOMMU's cache_invalidate (virtual IDs)
    if (v?.kind === 'viommu') return v.driver.invalidate(entries);
    const h = this.hwptOf(hwptId);
    if (h.type !== 'nested' || h.data === undefined) {
      throw new IoasidError('EINVAL', 'hwpt', `HWPT ${hwptId} is not a nested (user-managed) HWPT`);
    }
    const want = h.data.type === 'vtd_s1' ? 'vtd_s1' : h.data.type === 'arm_smmuv3' ? 'arm_smmuv3' : 'virtio';
    for (const [i, e] of entries.entries()) {
      // iommufd checks the array's data_type before any entry is handled
      if (e.type !== want) throw new IoasidError('EINVAL', `entries[${i}]`, `entry type '${e.type}' does not match the HWPT's '${want}'`, { handled: 0 });
    }
    return h.domain.invalidateUser(entries);
  }

  // ---------------------------------------------------------------- PASIDs, SVA

  /** Allocates a PASID: usable on a set of devices, or system-wide (ENQCMD). */
  allocPasid(options: AllocPasidOptions): number {
    this.live();
    if ('global' in options) {
      if (!this.system.hasGlobalPasid()) {
        throw new IoasidError('EOPNOTSUPP', 'global', `${this.system.backend} has no system-wide PASIDs`);
      }
      return this.system.pasids.allocGlobal(this);
    }
    if (options.devices.length === 0) throw new IoasidError('EINVAL', 'devices', 'at least one device is needed');
    const devs = options.devices.map((d, i) => this.deviceOf(d, `devices[${i}]`));
    for (const [i, d] of devs.entries()) {
      if (d.info.pasidBits === 0) throw new IoasidError('EOPNOTSUPP', `devices[${i}]`, `${d.endpoint.name} has no PASID support`);
    }
    const keys = [...new Set(devs.map((d) => d.rid.name))];
    const p = this.system.pasids.allocForDevices(this, keys);
    this.reservations.set(p, new Set(keys));
    return p;
  }

  /** Frees a PASID from allocPasid; one still attached is EBUSY. */
  freePasid(pasid: number): void {
    this.live();
    for (const o of this.objects.values()) {
      if (o.kind === 'device' && o.endpoint.kind !== 'mdev' && o.attached.has(pasid)) {
        throw new IoasidError('EBUSY', 'pasid', `PASID ${pasid} is attached on ${o.endpoint.name}`);
      }
    }
    this.system.pasids.free(this, pasid);
    this.reservations.delete(pasid);
  }

  /** Binds a process address space to the device on the process's PASID (SVA). */
  bindSva(devId: ObjectId, process: ProcessApi): { readonly pasid: number } {
    this.generation++;
    this.live();
    const dev = this.deviceOf(devId);
    if (!dev.info.sva) {
      throw new IoasidError('EOPNOTSUPP', 'dev', `${dev.endpoint.name} has no SVA (${dev.info.unsupported['sva'] ?? 'no PASID/PRI'})`);
    }
    if (dev.endpoint.kind === 'mdev') throw new IoasidError('EOPNOTSUPP', 'dev', 'SVA on a mediated device is not modelled');
    const proc = this.system.processOf(process);
    const pasid = this.system.getSvaPasid(proc);
    const existing = dev.attached.get(pasid);
    if (existing !== undefined) {
      this.system.putSvaPasid(proc);
      if (existing.type === 'sva' && existing.process === proc) return { pasid };
      throw new IoasidError('EBUSY', 'dev', `PASID ${pasid} is already attached on ${dev.endpoint.name}`);
    }
    let domain: DriverDomain | undefined;
    let id: ObjectId | undefined;
    try {
      domain = this.system.driver.allocSvaDomain(dev.rid, proc);
      id = this.newId();
      const h: HwptObject = {
        kind: 'hwpt', id, type: 'sva', domain, ioas: undefined, parent: undefined, auto: false, nestParent: false,
        dirtyTracking: false, pasidFlag: true, faultQueue: undefined, data: undefined, process: proc, attachments: 0, children: 0,
      };
      this.system.driver.attach(dev.rid, domain, pasid);
      this.objects.set(id, h);
      h.attachments = 1;
      dev.attached.set(pasid, h);
    } catch (e) {
      domain?.free();
      if (id !== undefined) this.releaseId(id);
      this.system.putSvaPasid(proc);
      throw e;
    }
    return { pasid };
  }

  /** Undoes bindSva. */
  unbindSva(devId: ObjectId, pasid: number): void {
    this.generation++;
    this.live();
    const dev = this.deviceOf(devId);
    const h = dev.attached.get(pasid);
    if (h?.type !== 'sva') throw new IoasidError('ENOENT', 'pasid', `no SVA binding on PASID ${pasid}`);
    this.detachKey(dev, pasid);
  }

  // ---------------------------------------------------------------- faults

  /** Allocates a fault queue. */
  allocFaultQueue(): ObjectId {
    this.live();
    const id = this.newId();
    const o: FaultObject = { kind: 'fault', id, queue: new FaultQueue(id) };
    this.objects.set(id, o);
    return id;
  }

  /** Reads the pending page faults of a queue. */
  readFaults(queue: ObjectId): PageFault[] {
    this.live();
    return this.faultOf(queue).read();
  }

  /** Answers a page-fault group by its cookie. */
  respondPageFault(queue: ObjectId, response: PageResponse): void {
    this.live();
    const q = this.faultOf(queue);
    if (response.code !== IOMMUFD_PAGE_RESP_SUCCESS && response.code !== IOMMUFD_PAGE_RESP_INVALID) {
      throw new IoasidError('EINVAL', 'code', `response code ${response.code} is neither SUCCESS (0) nor INVALID (1)`);
    }
    const g = q.take(response.cookie);
    this.system.driver.pageResponse(g.endpoint, g.pasid, g.grpid, response.code);
  }

  /**
   * Routes a page request from the driver to the HWPT's fault queue; false when this context
   * does not own the requester or nobody listens (the system then answers INVALID).
   */
  routePageRequest(dev: DeviceObject, request: IommuPageRequest): boolean {
    let key = RID;
    if (dev.endpoint.kind === 'mdev') {
      if (request.pasid !== dev.mdevPasid) {
        for (const [v, w] of dev.vpasids) if (w === request.pasid) key = v;
        if (key === RID) return false;
      }
    } else if (request.pasid !== undefined) key = request.pasid;
    const h = dev.attached.get(key) ?? (key !== RID ? undefined : undefined);
    if (h?.faultQueue === undefined) return false;
    h.faultQueue.push(dev.id, request, key === RID ? undefined : key);
    return true;
  }

  // ---------------------------------------------------------------- dirty tracking

  private dirtyHwpt(id: ObjectId): HwptObject {
    const h = this.objects.get(id);
    if (h?.kind !== 'hwpt' || h.type !== 'paging') throw new IoasidError('ENOENT', 'hwpt', `${id} is not a paging HWPT`);
    if (!h.dirtyTracking) throw new IoasidError('EOPNOTSUPP', 'hwpt', `HWPT ${id} was not allocated with dirty tracking`);
    return h;
  }

  /** IOMMU_HWPT_SET_DIRTY_TRACKING. */
  setDirtyTracking(hwpt: ObjectId, enable: boolean): void {
    this.live();
    const h = this.dirtyHwpt(hwpt);
    if (enable) {
      // iommufd's iopt_set_dirty_tracking clears the dirty state of every area before it
      // enables tracking, so the first bitmap read reports only writes made after the enable
      // (with SMMUv3's DBM scheme a fresh writable entry reads as dirty until cleaned).
      for (const a of h.ioas!.areas.items()) {
        const length = a.last - a.start + 1n;
        const bits = Number(length / PAGE);
        h.domain.readDirty(a.start, length, PAGE, new Uint8Array(Math.ceil(bits / 64) * 8), false);
      }
    }
    h.domain.setDirtyTracking(enable);
  }

  /** IOMMU_HWPT_GET_DIRTY_BITMAP: a little-endian u64 bitmap, bit n = page iova + n·pageSize. */
  readDirtyBitmap(hwpt: ObjectId, options: DirtyBitmapOptions): Uint8Array {
    this.live();
    const h = this.dirtyHwpt(hwpt);
    const { iova, length, pageSize } = options;
    checkU64(iova, 'iova');
    checkU64(length, 'length');
    if (!isPow2(pageSize)) throw new IoasidError('EINVAL', 'pageSize', 'pageSize must be a power of two');
    const smallest = h.domain.pageSizes[0] ?? PAGE;
    if (pageSize < smallest) {
      // the driver records dirty state per IOMMU page: a finer bitmap would claim what it cannot know
      throw new IoasidError('EINVAL', 'pageSize', `pageSize ${hex(pageSize)} is below the IOMMU's smallest page ${hex(smallest)}`);
    }
    if (iova % pageSize !== 0n) throw new IoasidError('EINVAL', 'iova', 'iova must be aligned to pageSize');
    if (length === 0n || length % pageSize !== 0n) throw new IoasidError('EINVAL', 'length', 'length must be a non-zero multiple of pageSize');
    if (iova + length - 1n > U64_MAX) throw new IoasidError('EOVERFLOW', 'length', 'iova + length wraps past 2^64');
    const io = h.ioas!;
    try {
      this.contiguous(io, iova, length, 'iova');
    } catch {
      throw new IoasidError('EINVAL', 'iova', 'the range is not fully mapped');
    }
    const pages = length / pageSize;
    const bitmap = new Uint8Array(Number(((pages + 63n) / 64n) * 8n));
    h.domain.readDirty(iova, length, pageSize, bitmap, options.noClear === true);
    return bitmap;
  }

  // ---------------------------------------------------------------- vIOMMU, vDEVICE, vEVENTQ

  private viommuOf(id: ObjectId, argument: string): ViommuObject {
    const o = this.objects.get(id);
    if (o?.kind !== 'viommu') throw new IoasidError('ENOENT', argument, `${id} is not a vIOMMU`);
    return o;
  }

  /**
   * IOMMU_VIOMMU_ALLOC (iommufd_viommu_alloc_ioctl): the HWPT must be a nest parent (EINVAL),
   * the type one the driver supports for the device (EOPNOTSUPP); the vIOMMU holds a
   * reference on its parent.
   */
  allocViommu(devId: ObjectId, options: AllocViommuOptions): ObjectId {
    this.generation++;
    this.live();
    const dev = this.deviceOf(devId);
    const parent = this.hwptOf(options.hwpt);
    if (parent.type !== 'paging' || !parent.nestParent) {
      throw new IoasidError('EINVAL', 'hwpt', `HWPT ${options.hwpt} is not a nest parent`);
    }
    if (dev.endpoint.kind === 'mdev') throw new IoasidError('EINVAL', 'dev', `${dev.endpoint.name} is a mediated device: a vIOMMU is per physical IOMMU instance`);
    const driver = this.system.driver;
    if (driver.allocViommu === undefined || !(dev.info.viommuTypes ?? []).includes(options.type)) {
      throw new IoasidError('EOPNOTSUPP', 'type', `${dev.endpoint.name}: vIOMMU type ${options.type} is not supported (${dev.info.unsupported['viommu'] ?? `${dev.info.backend} has no such vIOMMU`})`);
    }
    const v = driver.allocViommu(dev.rid, parent.domain, options.type);
    let id: ObjectId;
    try {
      id = this.newId();
    } catch (e) {
      v.free();
      throw e;
    }
    const o: ViommuObject = {
      kind: 'viommu', id, type: options.type, parent, driver: v, vdevices: new Map(), virtIds: new Map(), veventqs: new Map(), nested: 0,
    };
    parent.children++;
    this.objects.set(id, o);
    return id;
  }

  /**
   * IOMMU_VDEVICE_ALLOC: a device has one virtual ID per vIOMMU and an ID names one device
   * (EEXIST); the driver refuses a device of another IOMMU instance or an ID the architecture
   * cannot hold (EINVAL).
   */
  allocVdevice(viommuId: ObjectId, devId: ObjectId, virtId: bigint): ObjectId {
    this.generation++;
    this.live();
    const v = this.viommuOf(viommuId, 'viommu');
    const dev = this.deviceOf(devId);
    checkU64(virtId, 'virtId');
    if (dev.endpoint.kind === 'mdev') throw new IoasidError('EINVAL', 'dev', `${dev.endpoint.name} is a mediated device: it has no requester ID of its own`);
    if (v.vdevices.has(dev)) throw new IoasidError('EEXIST', 'dev', `${dev.endpoint.name} already has a vDEVICE on vIOMMU ${viommuId}`);
    if (v.virtIds.has(virtId)) throw new IoasidError('EEXIST', 'virtId', `virtual ID ${hex(virtId)} is taken on vIOMMU ${viommuId}`);
    v.driver.addVdevice(dev.rid, virtId);
    let id: ObjectId;
    try {
      id = this.newId();
    } catch (e) {
      v.driver.removeVdevice(dev.rid);
      throw e;
    }
    const o: VdeviceObject = { kind: 'vdevice', id, viommu: v, device: dev, virtId };
    v.vdevices.set(dev, o);
    v.virtIds.set(virtId, o);
    this.objects.set(id, o);
    return id;
  }

  /** IOMMU_VEVENTQ_ALLOC: one queue per vIOMMU and type (EEXIST); depth ≥ 1 (EINVAL). */
  allocVeventq(viommuId: ObjectId, options: AllocVeventqOptions): ObjectId {
    this.generation++;
    this.live();
    const v = this.viommuOf(viommuId, 'viommu');
    const { type, depth } = options;
    if (!Number.isInteger(depth) || depth < 1 || depth > 0x7fffffff) {
      throw new IoasidError('EINVAL', 'depth', `veventq_depth must be 1 … 2^31 − 1 (got ${depth})`);
    }
    if (!v.driver.eventTypes.includes(type)) throw new IoasidError('EOPNOTSUPP', 'type', `vIOMMU ${viommuId} reports no events of type ${type}`);
    if (v.veventqs.has(type)) throw new IoasidError('EEXIST', 'type', `vIOMMU ${viommuId} already has a vEVENTQ of type ${type}`);
    const id = this.newId();
    const queue = new VeventQueue(depth);
    const o: VeventqObject = { kind: 'veventq', id, viommu: v, type, queue };
    v.driver.setEventSink(type, (data) => {
      queue.push(data);
    });
    v.veventqs.set(type, o);
    this.objects.set(id, o);
    return id;
  }

  /** Reads and removes a vEVENTQ's events. */
  readVevents(veventqId: ObjectId): Vevent[] {
    this.live();
    const o = this.objects.get(veventqId);
    if (o?.kind !== 'veventq') throw new IoasidError('ENOENT', 'veventq', `${veventqId} is not a vEVENTQ`);
    return o.queue.drain();
  }

  /**
   * VFIO_EEH_PE_OP on the PE of a bound device (vfio_spapr_iommu_eeh_ioctl → eeh_pe_*): an op
   * outside `VFIO_EEH_PE_DISABLE … VFIO_EEH_PE_INJECT_ERR` is EINVAL; a platform without EEH
   * is EOPNOTSUPP; a mediated device is no PE of its own (its parent's PE belongs to the parent
   * driver): EINVAL. The driver carries the op to the platform (RTAS on PAPR).
   */
  eehPeOp(devId: ObjectId, op: number): number {
    this.live();
    const dev = this.deviceOf(devId);
    if (!Number.isInteger(op) || op < VFIO_EEH_PE_DISABLE || op > VFIO_EEH_PE_INJECT_ERR) {
      throw new IoasidError('EINVAL', 'op', `${op} is not a VFIO_EEH_PE_* operation (0..${VFIO_EEH_PE_INJECT_ERR})`);
    }
    const driver = this.system.driver;
    if (driver.eehPeOp === undefined) {
      throw new IoasidError('EOPNOTSUPP', 'dev', `${dev.endpoint.name}: ${dev.info.unsupported['eeh'] ?? `${dev.info.backend} has no EEH: a DMA error does not freeze the device`}`);
    }
    if (dev.endpoint.kind === 'mdev') {
      throw new IoasidError('EINVAL', 'dev', `${dev.endpoint.name} is a mediated device: its parent's PE belongs to the parent driver`);
    }
    return driver.eehPeOp(dev.rid, op);
  }

  /** Normalized view of an IOAS's allowed list (for tests and reports). */
  allowedIovas(ioas: ObjectId): IovaRange[] {
    return normalize(this.ioasOf(ioas, 'ioas').allowed ?? []);
  }

  /** The endpoint bound under a device id (for the system's DMA routing). */
  endpointOf(devId: ObjectId): EndpointDescriptor {
    return this.deviceOf(devId).endpoint;
  }
}
