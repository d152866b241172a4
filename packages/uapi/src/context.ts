/** The uAPI surface: a context (one open of /dev/ioasid) and the system that opens it. */

import type { DmaResult, DmaRequest } from './dma.js';
import type { HwInfo, IovaRange } from './hw-info.js';
import type { Endpoint, PhysicalMemoryLike, Process } from './platform.js';

/** An object id: non-zero, from one space per context (IOAS, HWPT, device, fault queue). */
export type ObjectId = number;

/** MAP_DMA arguments. `read`/`write` default to true when both are omitted. */
export interface MapDmaOptions {
  /** The IOVA (fixed); absent: the kernel picks one. */
  readonly iova?: bigint;
  /** The process virtual address of the memory. */
  readonly vaddr: bigint;
  /** Bytes. */
  readonly length: bigint;
  /** Device may read. */
  readonly read?: boolean;
  /** Device may write. */
  readonly write?: boolean;
}

/** UNMAP_DMA arguments; `{ iova: 0n, length: U64_MAX }` unmaps everything. */
export interface UnmapDmaOptions {
  /** First IOVA. */
  readonly iova: bigint;
  /** Bytes. */
  readonly length: bigint;
}

/** COPY arguments: map into `dst` the pages already mapped in `src`. */
export interface CopyDmaOptions {
  /** Source IOVA. */
  readonly srcIova: bigint;
  /** Destination IOVA (fixed); absent: allocated. */
  readonly dstIova?: bigint;
  /** Bytes. */
  readonly length: bigint;
  /** Device may read. */
  readonly read?: boolean;
  /** Device may write. */
  readonly write?: boolean;
}

/** IOVA_RANGES result. */
export interface IovaRanges {
  /** The usable ranges, ascending. */
  readonly ranges: readonly IovaRange[];
  /** Required alignment of iova and length for MAP/COPY (bytes). */
  readonly alignment: bigint;
}

/** REGISTER_MEMORY / UNREGISTER_MEMORY arguments. */
export interface MemoryRange {
  /** Process virtual address. */
  readonly vaddr: bigint;
  /** Bytes. */
  readonly length: bigint;
}

/** Attach options: the PASID (a number, or `'auto'` to let the kernel choose one for the device). */
export interface AttachOptions {
  /** PASID to attach; absent: the RID's own space. */
  readonly pasid?: number | 'auto';
}

/** Attach result. */
export interface AttachResult {
  /** The HWPT now attached (auto-created for an IOAS). */
  readonly hwpt: ObjectId;
  /** The PASID attached, when one was. */
  readonly pasid?: number;
}

/** Intel VT-d nested stage-1 (`struct iommu_hwpt_vtd_s1`). */
export interface HwptDataVtdS1 {
  /** `IOMMU_HWPT_DATA_VTD_S1`. */
  readonly type: 'vtd_s1';
  /** IOMMU_VTD_S1_SRE | EAFE | WPE. */
  readonly flags: number;
  /** Stage-1 page-table root, in the parent's IOVA (guest-physical) space. */
  readonly pgtblAddr: bigint;
  /** 48 (4-level) or 57 (5-level). */
  readonly addrWidth: number;
}

/** Arm SMMUv3 nested STE (`struct iommu_hwpt_arm_smmuv3`): words 0 and 1 of a guest STE. */
export interface HwptDataArmSmmuv3 {
  /** `IOMMU_HWPT_DATA_ARM_SMMUV3`. */
  readonly type: 'arm_smmuv3';
  /** ste[0], ste[1]. */
  readonly ste: readonly [bigint, bigint];
}

/** virtio-iommu extension: a guest-managed table attached to a domain (ATTACH_TABLE). */
export interface HwptDataVirtioTable {
  /** ioasid's virtio-iommu extension. */
  readonly type: 'virtio_table';
  /** Table format: an Arm LPAE stage-1 page table, or an SMMUv3-style PASID (CD) table. */
  readonly format: 'arm-lpae-s1' | 'smmuv3-cd-table';
  /** Root of the table, in the parent's IOVA space. */
  readonly root: bigint;
  /** PASID the page table serves (for 'arm-lpae-s1'), 0 = NO PASID context. */
  readonly pasid?: number;
  /** log2 of the number of CD entries (for 'smmuv3-cd-table'). */
  readonly cdMaxLog2?: number;
  /** Format-specific words (TCR, MAIR, ASID …). */
  readonly config?: Readonly<Record<string, bigint | number>>;
}

/** Vendor data for a nested HWPT. */
export type HwptData = HwptDataVtdS1 | HwptDataArmSmmuv3 | HwptDataVirtioTable;

/** HWPT allocation flags (iommufd IOMMU_HWPT_ALLOC_*). */
export interface HwptFlags {
  /** May serve as the stage-2 parent of nested HWPTs. */
  readonly nestParent?: boolean;
  /** Dirty tracking. */
  readonly dirtyTracking?: boolean;
  /** May be attached to a PASID. */
  readonly pasid?: boolean;
}

/** HWPT_ALLOC arguments. */
export interface AllocHwptOptions {
  /** An IOAS (→ paging HWPT) or a nest-parent HWPT (→ nested HWPT with `data`). */
  readonly parent: ObjectId;
  /** Allocation flags. */
  readonly flags?: HwptFlags;
  /** Vendor data for a nested HWPT. */
  readonly data?: HwptData;
  /** A fault queue: the HWPT reports recoverable I/O page faults there. */
  readonly faultQueue?: ObjectId;
}

/** VT-d stage-1 invalidation entry (`struct iommu_hwpt_vtd_s1_invalidate`). */
export interface InvalidateVtdS1 {
  /** Discriminant. */
  readonly type: 'vtd_s1';
  /** 4 KiB aligned address. */
  readonly addr: bigint;
  /** Pages; U64_MAX with addr 0 = everything. */
  readonly npages: bigint;
  /** IOMMU_VTD_INV_FLAGS_LEAF. */
  readonly flags: number;
}

/** SMMUv3 raw command (`struct iommu_viommu_arm_smmuv3_invalidate`). */
export interface InvalidateArmSmmuv3 {
  /** Discriminant. */
  readonly type: 'arm_smmuv3';
  /** The two 64-bit words of a command-queue entry. */
  readonly cmd: readonly [bigint, bigint];
}

/** virtio-iommu extension INVALIDATE request. */
export interface InvalidateVirtio {
  /** Discriminant. */
  readonly type: 'virtio';
  /** Scope: the whole domain, one PASID, or a VA range in one PASID. */
  readonly scope: 'domain' | 'pasid' | 'va';
  /** PASID (for 'pasid' and 'va'). */
  readonly pasid?: number;
  /** First address (for 'va'). */
  readonly addr?: bigint;
  /** Bytes (for 'va'). */
  readonly size?: bigint;
}

/** A user invalidation entry, of the HWPT's data type. */
export type InvalidateEntry = InvalidateVtdS1 | InvalidateArmSmmuv3 | InvalidateVirtio;

/** IOMMU_VIOMMU_ALLOC options. */
export interface AllocViommuOptions {
  /** `IOMMU_VIOMMU_TYPE_*`. */
  readonly type: number;
  /** The nest-parent HWPT whose stage 2 the vIOMMU's nested HWPTs use (`hwpt_id`). */
  readonly hwpt: ObjectId;
}

/** IOMMU_VEVENTQ_ALLOC options. */
export interface AllocVeventqOptions {
  /** `IOMMU_VEVENTQ_TYPE_*`. */
  readonly type: number;
  /** The most events the queue holds (`veventq_depth`, ≥ 1); more are lost. */
  readonly depth: number;
}

/** One entry read from a vEVENTQ: `struct iommufd_vevent_header` and the type's data. */
export interface Vevent {
  /** `IOMMU_VEVENTQ_FLAG_LOST_EVENTS` on the header that marks lost events (no data then). */
  readonly flags: number;
  /** 0 … 2^31 − 1, then 0 again; a gap means events were lost. */
  readonly sequence: number;
  /** The event data (empty for a lost-events header). */
  readonly data: Uint8Array;
}

/** A recoverable I/O page fault as read from a fault queue (`struct iommu_hwpt_pgfault`). */
export interface PageFault {
  /** IOMMU_PGFAULT_FLAGS_*. */
  readonly flags: number;
  /** The device id (from bindDevice). */
  readonly devId: ObjectId;
  /** PASID, valid when flags has PASID_VALID. */
  readonly pasid: number;
  /** Page request group index. */
  readonly grpid: number;
  /** IOMMU_PGFAULT_PERM_*. */
  readonly perm: number;
  /** Faulting address (page aligned). */
  readonly addr: bigint;
  /** Prefetch hint in bytes. */
  readonly length: number;
  /** Identifies the group for the response. */
  readonly cookie: number;
}

/** A page response (`struct iommu_hwpt_page_response`). */
export interface PageResponse {
  /** The cookie of the fault group. */
  readonly cookie: number;
  /** IOMMUFD_PAGE_RESP_SUCCESS or IOMMUFD_PAGE_RESP_INVALID. */
  readonly code: number;
}

/** Arguments of GET_DIRTY_BITMAP. */
export interface DirtyBitmapOptions {
  /** First IOVA (aligned to pageSize). */
  readonly iova: bigint;
  /** Bytes (a multiple of pageSize). */
  readonly length: bigint;
  /** Bitmap granule (a power of two, at least the IOMMU's smallest page). */
  readonly pageSize: bigint;
  /** Read without clearing. */
  readonly noClear?: boolean;
}

/** PASID allocation request: usable on a set of devices, or system-wide (ENQCMD). */
export type AllocPasidOptions = { readonly devices: readonly ObjectId[] } | { readonly global: true };

/** One open of /dev/ioasid: every operation of the uAPI. */
export interface IoasidContext {
  /** Interface version (the RFC's precursor had one; kept informational). */
  readonly apiVersion: number;
  /** 1 when an fd-level extension is supported ('prereg', 'type1v2' …), else 0. */
  checkExtension(extension: string): 0 | 1;
  /** Allocates an IOAS. */
  allocIoas(): ObjectId;
  /** Destroys any object; an object in use is EBUSY. */
  destroy(id: ObjectId): void;
  /** Releases every object and unpins every page. */
  close(): void;
  /** Pre-registers (pins and accounts) process memory. */
  registerMemory(range: MemoryRange): void;
  /** Reverses registerMemory exactly. */
  unregisterMemory(range: MemoryRange): void;
  /** Maps process memory; returns the IOVA. */
  mapDma(ioas: ObjectId, options: MapDmaOptions): bigint;
  /** Unmaps whole areas; returns bytes unmapped. */
  unmapDma(ioas: ObjectId, options: UnmapDmaOptions): bigint;
  /** Maps pages already mapped in `src` into `dst`; returns the destination IOVA. */
  copyDma(dst: ObjectId, src: ObjectId, options: CopyDmaOptions): bigint;
  /** Usable IOVA ranges and the alignment. */
  iovaRanges(ioas: ObjectId): IovaRanges;
  /** Replaces the allowed-IOVA list (empty clears it). */
  allowIovas(ioas: ObjectId, ranges: readonly IovaRange[]): void;
  /** Binds a device by name; returns its device id. */
  bindDevice(name: string): ObjectId;
  /** Unbinds a device (detaching everything it has attached). */
  unbindDevice(dev: ObjectId): void;
  /** The device's hardware information. */
  getInfo(dev: ObjectId): HwInfo;
  /** Attaches (or replaces the attachment of) the device's RID or a PASID. */
  attach(dev: ObjectId, target: ObjectId, options?: AttachOptions): AttachResult;
  /** Detaches the RID or a PASID: it is then blocked. */
  detach(dev: ObjectId, options?: { readonly pasid?: number }): void;
  /** Software nesting: a child IOAS whose mappings' `vaddr` are IOVAs of the parent. */
  createNesting(parentIoas: ObjectId): ObjectId;
  /** Allocates a HWPT: paging over an IOAS or nested over a nest-parent HWPT. */
  allocHwpt(dev: ObjectId, options: AllocHwptOptions): ObjectId;
  /**
   * User invalidation of a nested HWPT, or through a vIOMMU (its id); returns the number of
   * entries handled. On failure the IoasidError's `handled` says how many entries were
   * handled before the failing one (iommufd's `entry_num`).
   */
  invalidateHwpt(hwpt: ObjectId, entries: readonly InvalidateEntry[]): number;
  /** Allocates a PASID with the property asked for. */
  allocPasid(options: AllocPasidOptions): number;
  /** Frees a PASID from allocPasid. */
  freePasid(pasid: number): void;
  /** Binds a process address space to the device on a PASID (SVA). */
  bindSva(dev: ObjectId, process: Process): { readonly pasid: number };
  /** Undoes bindSva. */
  unbindSva(dev: ObjectId, pasid: number): void;
  /** Allocates a fault queue. */
  allocFaultQueue(): ObjectId;
  /** Reads (and removes) the pending page faults of a queue. */
  readFaults(queue: ObjectId): PageFault[];
  /** Answers a page-fault group. */
  respondPageFault(queue: ObjectId, response: PageResponse): void;
  /** Enables or disables dirty tracking on a HWPT allocated with it. */
  setDirtyTracking(hwpt: ObjectId, enable: boolean): void;
  /** Reads (and by default clears) the dirty bitmap of a range. */
  readDirtyBitmap(hwpt: ObjectId, options: DirtyBitmapOptions): Uint8Array;
  /**
   * VFIO_EEH_PE_OP on the partitionable endpoint of a bound device: `op` is one of
   * `VFIO_EEH_PE_*`. Returns the PE state (`VFIO_EEH_PE_STATE_*`) for `VFIO_EEH_PE_GET_STATE`,
   * 0 otherwise. Only where a DMA error freezes the device (hw_info `dmaFaultFreezes`):
   * elsewhere EOPNOTSUPP, with the reason in hw_info `unsupported.eeh`.
   */
  eehPeOp(dev: ObjectId, op: number): number;
  /**
   * IOMMU_VIOMMU_ALLOC: a vIOMMU of `type` for the IOMMU instance of `dev`, over a nest-parent
   * HWPT. Nested HWPTs are then allocated with the vIOMMU as `parent`, devices get their
   * virtual IDs with `allocVdevice`, and `invalidateHwpt(viommu, …)` takes commands with
   * virtual IDs. Destroying it while it has nested HWPTs, vDEVICEs or vEVENTQs is EBUSY.
   */
  allocViommu(dev: ObjectId, options: AllocViommuOptions): ObjectId;
  /** IOMMU_VDEVICE_ALLOC: the device's virtual ID (vSID, vRID) on the vIOMMU; a repeat is EEXIST. */
  allocVdevice(viommu: ObjectId, dev: ObjectId, virtId: bigint): ObjectId;
  /** IOMMU_VEVENTQ_ALLOC: the vIOMMU's queue of events of `type` (one per type: EEXIST). */
  allocVeventq(viommu: ObjectId, options: AllocVeventqOptions): ObjectId;
  /** Reads (and removes) the queued events of a vEVENTQ, oldest first. */
  readVevents(veventq: ObjectId): Vevent[];
}

/** A simulated machine with one backend: memory, processes, endpoints, and the uAPI. */
export interface IoasidSystem {
  /** The backend's package name without scope. */
  readonly backend: string;
  /** Guest-physical memory. */
  readonly memory: PhysicalMemoryLike;
  /** Creates a process. */
  createProcess(options?: { readonly lockedMemoryLimit?: bigint }): Process;
  /** Opens /dev/ioasid on behalf of a process. */
  open(process: Process): IoasidContext;
  /** An endpoint by name. */
  device(name: string): Endpoint;
  /** Every endpoint name (PFs, VFs, mediated sub-devices). */
  deviceNames(): string[];
}

/** A DMA entry point: re-exported for convenience. */
export type DmaFn = (request: DmaRequest) => DmaResult;
