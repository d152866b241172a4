/**
 * The driver's domains. A domain has an ID in the device's domain_range; the device only
 * holds it while something is attached to it (or, in the extension, while a child domain
 * nests in it), so the driver keeps its own copy of every mapping and replays it when the
 * domain comes back to life — as Linux's `viommu_replay_mappings` does.
 *
 * Kernel-managed paging domains (and the blocking domain) differ from Linux in one respect:
 * each attachment gets a device domain of its own, and MAP/UNMAP go to every one of them. The
 * spec lets a device refuse to take an endpoint out of a domain it shares ("If the device
 * cannot do so, it MUST reject the request and set status to VIRTIO_IOMMU_S_UNSUPP" — ATTACH,
 * and crosvm's DETACH likewise), and crosvm does refuse whenever the domain has another endpoint
 * (`detach_endpoint`: "we only support detaching an endpoint if it is the only endpoint attached
 * to its domain"). A shared device domain would then pin its endpoints there for good, and a
 * detached device would keep DMAing. With one endpoint per device domain every move and every
 * DETACH stays possible; the uAPI still sees one HWPT.
 */

import {
  IOMMU_READ, IOMMU_WRITE, IoasidError, type DomainKind, type DriverDomain, type HwptDataVirtioTable, type InvalidateEntry,
  type IovaRange, type ProcessMm,
} from '@ioasid/uapi';
import { put32, put64HiLo } from '../spec/bytes.js';
import {
  VIRTIO_IOMMU_INVAL_F_CONFIG, VIRTIO_IOMMU_INVAL_F_X_PASID, VIRTIO_IOMMU_INVAL_S_DOMAIN, VIRTIO_IOMMU_INVAL_S_PASID,
  VIRTIO_IOMMU_INVAL_S_VA, encodeInvalidate,
} from '../spec/extension.js';
import {
  MAP_FLAGS, MAP_PHYS_START, MAP_SIZE, REQ_DOMAIN, REQ_VIRT_END, REQ_VIRT_START, TAIL_SIZE, VIRTIO_IOMMU_MAP_F_READ,
  VIRTIO_IOMMU_MAP_F_WRITE, VIRTIO_IOMMU_T_MAP, encodeUnmap,
} from '../spec/requests.js';
import { VIRTIO_IOMMU_S_OK } from '../spec/status.js';
import { AreaIndex, type AreaView } from './area-index.js';
import { failure, type RequestChannel } from './request-channel.js';

const TWO32 = 0x100000000;

/** What domains need from the driver. */
export interface DomainHost {
  /** The request queue. */
  readonly channel: RequestChannel;
  /** Page sizes (from page_size_mask). */
  readonly pageSizes: readonly bigint[];
  /** The input range. */
  readonly apertures: readonly IovaRange[];
  /** Takes a free domain ID (ENOSPC when domain_range is exhausted). */
  allocId(argument: string): number;
  /** Returns a domain ID to the allocator. */
  releaseId(id: number): void;
}

/** Common state of every driver domain. */
export abstract class VirtioDomain implements DriverDomain {
  /** What the domain is. */
  abstract readonly kind: DomainKind;
  /** Attachments in the device: `rid` or `rid:pasid`. */
  readonly attachments = new Set<string>();
  /** Live child domains (extension nesting). */
  liveChildren = 0;
  /** Freed. */
  freed = false;
  /**
   * Device domains of a per-endpoint driver domain by attachment key (`rid` or `rid:pasid`);
   * empty for a shared domain, whose one device domain is {@link VirtioDomain.id}.
   */
  readonly instances = new Map<string, number>();

  /**
   * @param host - the driver
   * @param id - the domain ID in the device (-1: none of its own, IDs come per attachment)
   */
  constructor(
    protected readonly host: DomainHost,
    readonly id: number,
  ) {}

  /** The device holds the domain. */
  get live(): boolean {
    return this.attachments.size > 0 || this.liveChildren > 0;
  }

  /** Each attachment gets a device domain of its own. */
  get perEndpoint(): boolean {
    return false;
  }

  /** The device domain ID attachment `key` is in. */
  idFor(key: string): number {
    return this.instances.get(key) ?? this.id;
  }

  /** A device domain ID for a new attachment of a per-endpoint domain: its own ID when unused. */
  acquireId(argument: string): number {
    if (this.id >= 0 && !this.usesOwnId()) return this.id;
    return this.host.allocId(argument);
  }

  private usesOwnId(): boolean {
    for (const id of this.instances.values()) if (id === this.id) return true;
    return false;
  }

  /** Gives back an ID from {@link VirtioDomain.acquireId} whose attachment did not happen. */
  releaseAcquired(id: number): void {
    if (id !== this.id) this.host.releaseId(id);
  }

  /** Attachment `key` left its device domain, which the device destroyed with its last endpoint. */
  dropInstance(key: string): void {
    const id = this.instances.get(key);
    if (id === undefined) return;
    this.instances.delete(key);
    this.releaseAcquired(id);
  }

  /** Page sizes. */
  get pageSizes(): readonly bigint[] {
    return this.host.pageSizes;
  }

  /** Apertures (input_range). */
  get apertures(): readonly IovaRange[] {
    return this.host.apertures;
  }

  /** Paging domains only. */
  map(_iova: bigint, _pfns: Uint32Array, _count: number, _prot: number): void {
    throw new IoasidError('EOPNOTSUPP', 'domain', `a ${this.kind} domain takes no MAP requests`);
  }

  /** Paging domains only. */
  unmap(_iova: bigint, _length: bigint): void {
    throw new IoasidError('EOPNOTSUPP', 'domain', `a ${this.kind} domain takes no UNMAP requests`);
  }

  /** Nested domains only. */
  invalidateUser(_entries: readonly InvalidateEntry[]): number {
    throw new IoasidError('EOPNOTSUPP', 'domain', `a ${this.kind} domain takes no user invalidation`);
  }

  /** The virtio spec has no dirty tracking. */
  setDirtyTracking(_enable: boolean): void {
    throw new IoasidError('EOPNOTSUPP', 'enable', 'no dirty tracking in the virtio spec');
  }

  /** The virtio spec has no dirty tracking. */
  readDirty(_iova: bigint, _length: bigint, _pageSize: bigint, _bitmap: Uint8Array, _noClear: boolean): void {
    throw new IoasidError('EOPNOTSUPP', 'hwpt', 'no dirty tracking in the virtio spec');
  }

  /** Releases the domain ID (the device dropped the domain when its last endpoint left). */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    for (const key of [...this.instances.keys()]) this.dropInstance(key);
    if (this.id >= 0) this.host.releaseId(this.id);
  }

  /** Sends what the device needs when the domain comes to life (mappings). */
  replay(): void {
    // nothing by default
  }
}

/**
 * A kernel-managed domain: MAP/UNMAP requests on its anonymous context. It has a device domain
 * per attachment (the first one uses the ID allocated with it), except a nest parent, whose one
 * device domain is also what nested children name as their parent (extension only).
 */
export class VirtioPagingDomain extends VirtioDomain {
  /** Paging. */
  readonly kind = 'paging' as const;
  /** The MAP areas (one per core MAP, each made of runs of physically contiguous pages). */
  private readonly areas = new AreaIndex();
  private readonly req = new Uint8Array(MAP_SIZE - TAIL_SIZE);

  /**
   * @param host - the driver
   * @param id - domain ID
   * @param nestParent - may be the parent of nested domains
   * @param iopf - attached with the extension's F_X_IOPF: misses are page requests
   */
  constructor(host: DomainHost, id: number, readonly nestParent: boolean, readonly iopf = false) {
    super(host, id);
    this.req[0] = VIRTIO_IOMMU_T_MAP;
  }

  /** A device domain per attachment, unless a nest parent. */
  override get perEndpoint(): boolean {
    return !this.nestParent;
  }

  /** The device domains holding the mappings (only while the device holds the domain). */
  private deviceIds(): number[] {
    if (!this.live) return [];
    return this.perEndpoint ? [...this.instances.values()] : [this.id];
  }

  /** Maps `count` pages, one MAP per physically contiguous run, in every device domain. */
  override map(iova: bigint, pfns: Uint32Array, count: number, prot: number): void {
    const hi = Number(iova >> 32n);
    const lo = Number(iova & 0xffffffffn);
    if (this.areas.find(hi, lo) >= 0) throw new IoasidError('EEXIST', 'iova', `0x${iova.toString(16)} is already mapped`);
    const flags = ((prot & IOMMU_READ) !== 0 ? VIRTIO_IOMMU_MAP_F_READ : 0) | ((prot & IOMMU_WRITE) !== 0 ? VIRTIO_IOMMU_MAP_F_WRITE : 0);
    // Most areas are one physically contiguous run: kept without a list.
    const first = pfns[0]!;
    let n = 1;
    while (n < count && pfns[n] === first + n) n++;
    let runs: number[];
    if (n === count) runs = [0, first, count];
    else {
      runs = [];
      let i = 0;
      while (i < count) {
        const f = pfns[i]!;
        let k = 1;
        while (i + k < count && pfns[i + k] === f + k) k++;
        runs.push(i, f, k);
        i += k;
      }
    }
    const area: AreaView = { slot: -1, hi, lo, count, flags, runs };
    const ids = this.deviceIds();
    for (let j = 0; j < ids.length; j++) {
      const sent = this.sendArea(area, ids[j]!);
      if (sent.status !== VIRTIO_IOMMU_S_OK) {
        // Roll back: the part of this device domain that was mapped, and the whole area in the others.
        if (sent.pages > 0) this.host.channel.status(encodeUnmap(ids[j]!, iova, iova + BigInt(sent.pages) * 4096n - 1n));
        for (let k = 0; k < j; k++) this.host.channel.status(encodeUnmap(ids[k]!, iova, iova + BigInt(count) * 4096n - 1n));
        throw failure(sent.status, 'iova', `MAP at 0x${iova.toString(16)} in domain ${ids[j]!}`);
      }
    }
    if (n === count) this.areas.add(hi, lo, count, flags, first, undefined);
    else this.areas.add(hi, lo, count, flags, -1, runs);
  }

  /** Sends an area's MAP requests to device domain `id`; stops at the first failure. */
  private sendArea(a: AreaView, id: number): { status: number; pages: number } {
    const b = this.req;
    put32(b, REQ_DOMAIN, id);
    put32(b, MAP_FLAGS, a.flags);
    const runs = a.runs;
    for (let k = 0; k < runs.length; k += 3) {
      const at = runs[k]!;
      const pfn = runs[k + 1]!;
      const n = runs[k + 2]!;
      let lo = a.lo + at * 4096;
      let hi = a.hi + Math.floor(lo / TWO32);
      lo %= TWO32;
      put64HiLo(b, REQ_VIRT_START, hi, lo);
      lo += n * 4096 - 1;
      hi += Math.floor(lo / TWO32);
      lo %= TWO32;
      put64HiLo(b, REQ_VIRT_END, hi, lo);
      const pa = pfn * 4096;
      put64HiLo(b, MAP_PHYS_START, Math.floor(pa / TWO32), pa % TWO32);
      const s = this.host.channel.status(b);
      if (s !== VIRTIO_IOMMU_S_OK) return { status: s, pages: at };
    }
    return { status: VIRTIO_IOMMU_S_OK, pages: a.count };
  }

  /** Unmaps exactly an area mapped earlier. */
  override unmap(iova: bigint, length: bigint): void {
    const slot = this.areas.find(Number(iova >> 32n), Number(iova & 0xffffffffn));
    if (slot < 0 || BigInt(this.areas.count(slot)) * 4096n !== length) {
      throw new IoasidError('EINVAL', 'iova', `[0x${iova.toString(16)}, +0x${length.toString(16)}) is not an area of domain ${this.id}`);
    }
    for (const id of this.deviceIds()) this.host.channel.send(encodeUnmap(id, iova, iova + length - 1n), 'iova', `UNMAP in domain ${id}`);
    this.areas.remove(slot);
  }

  /** Replays every area (the device created the domain empty). */
  override replay(): void {
    this.replayInto(this.id);
  }

  /** Replays every area, in mapping order, into device domain `id`, which the device just created empty. */
  replayInto(id: number): void {
    for (const slot of this.areas.slots()) {
      const a = this.areas.view(slot);
      const sent = this.sendArea(a, id);
      if (sent.status !== VIRTIO_IOMMU_S_OK) {
        const iova = (BigInt(a.hi) << 32n) | BigInt(a.lo);
        throw failure(sent.status, 'domain', `replaying MAP at 0x${iova.toString(16)} in domain ${id}`);
      }
    }
  }

  /** Number of areas (for tests). */
  get areaCount(): number {
    return this.areas.size;
  }
}

/** Builds the INVALIDATE requests of user invalidation entries. */
const NONE_HANDLED = { handled: 0 };

function invalidations(id: number, entries: readonly InvalidateEntry[]): Uint8Array[] {
  return entries.map((e, i) => {
    // every entry is encoded before any request goes out: a bad one means none was handled
    if (e.type !== 'virtio') throw new IoasidError('EINVAL', `entries[${i}]`, `entry type '${e.type}' is not 'virtio'`, NONE_HANDLED);
    const pasid = e.pasid ?? 0;
    const flags = pasid !== 0 ? VIRTIO_IOMMU_INVAL_F_X_PASID : 0;
    if (e.scope === 'domain') return encodeInvalidate({ scope: VIRTIO_IOMMU_INVAL_S_DOMAIN, flags: VIRTIO_IOMMU_INVAL_F_CONFIG, domain: id });
    if (e.scope === 'pasid') {
      if (pasid === 0) throw new IoasidError('EINVAL', `entries[${i}].pasid`, "scope 'pasid' needs a non-zero PASID", NONE_HANDLED);
      return encodeInvalidate({ scope: VIRTIO_IOMMU_INVAL_S_PASID, flags: flags | VIRTIO_IOMMU_INVAL_F_CONFIG, domain: id, pasid });
    }
    const addr = e.addr;
    const size = e.size;
    if (addr === undefined || size === undefined || size <= 0n) throw new IoasidError('EINVAL', `entries[${i}]`, "scope 'va' needs addr and size", NONE_HANDLED);
    const start = addr & ~0xfffn;
    const pages = (addr + size - start + 0xfffn) >> 12n;
    return encodeInvalidate({ scope: VIRTIO_IOMMU_INVAL_S_VA, flags, domain: id, pasid, virtStart: start, nrPages: pages, granule: 12 });
  });
}

/** A nested domain (extension): a guest-managed table over a nest-parent paging domain. */
export class VirtioNestedDomain extends VirtioDomain {
  /** Nested. */
  readonly kind = 'nested' as const;

  /**
   * @param host - the driver
   * @param id - domain ID
   * @param parent - the nest parent
   * @param data - the table
   * @param iopf - translation faults become page requests
   */
  constructor(host: DomainHost, id: number, readonly parent: VirtioPagingDomain, readonly data: HwptDataVirtioTable, readonly iopf: boolean) {
    super(host, id);
  }

  /** Sends INVALIDATE requests; returns the number handled. */
  override invalidateUser(entries: readonly InvalidateEntry[]): number {
    const reqs = invalidations(this.id, entries);
    if (!this.live) return reqs.length; // the device holds nothing of the domain: nothing is cached
    let done = 0;
    for (const r of reqs) {
      try {
        this.host.channel.send(r, `entries[${done}]`, `INVALIDATE in domain ${this.id}`);
      } catch (e) {
        // the device refused this one: the ones before it were handled (iommufd's entry_num)
        if (e instanceof IoasidError) throw new IoasidError(e.errno, e.argument, e.message.replace(/^[A-Z0-9]+ \(\d+\)( \[[^\]]*\])?: /, ''), { handled: done });
        throw e;
      }
      done++;
    }
    return done;
  }
}

/** An SVA domain (extension): the process's AArch64 page table as an LPAE stage-1 table. */
export class VirtioSvaDomain extends VirtioDomain {
  /** SVA. */
  readonly kind = 'sva' as const;
  private readonly remove: () => void;

  /**
   * @param host - the driver
   * @param id - domain ID
   * @param mm - the process address space
   * @param iopf - faults become page requests (the endpoint has PRI)
   */
  constructor(host: DomainHost, id: number, readonly mm: ProcessMm, readonly iopf: boolean) {
    super(host, id);
    // The mmu notifier: CPU page-table changes are pushed to the device's TLB as INVALIDATE VA.
    this.remove = mm.onInvalidate((vaddr, length) => {
      if (!this.live || this.freed) return;
      const start = vaddr & ~0xfffn;
      const pages = (vaddr + length - start + 0xfffn) >> 12n;
      this.host.channel.status(encodeInvalidate({ scope: VIRTIO_IOMMU_INVAL_S_VA, flags: 0, domain: this.id, virtStart: start, nrPages: pages, granule: 12 }));
    });
  }

  /** Unregisters the notifier and releases the ID. */
  override free(): void {
    if (this.freed) return;
    this.remove();
    super.free();
  }
}

/** The identity domain: ATTACH with VIRTIO_IOMMU_ATTACH_F_BYPASS. */
export class VirtioIdentityDomain extends VirtioDomain {
  /** Identity. */
  readonly kind = 'identity' as const;
  /** Shared and static: never freed. */
  override free(): void {
    // static
  }
}

/**
 * The blocking domain: DETACH, or — when the device answers DETACH with UNSUPP — an empty
 * device domain of the endpoint's own (see the driver's `block`). Its instances are those
 * empty domains. Static: never freed.
 */
export class VirtioBlockedDomain extends VirtioDomain {
  /** Blocked. */
  readonly kind = 'blocked' as const;

  /** Every attachment parked in an empty domain has its own. */
  override get perEndpoint(): boolean {
    return true;
  }

  /** Shared and static: never freed. */
  override free(): void {
    // static
  }
}
