/**
 * The backend driver interface: what core ("the kernel side") calls, and every backend
 * implements. A driver programs its hardware model only through memory, registers, command
 * queues, hypercalls or request bytes; core never sees the model.
 */

import type { DmaFault, DmaRequest } from './dma.js';
import type { HwptData, InvalidateEntry } from './context.js';
import type { HwInfo, IovaRange } from './hw-info.js';
import type { CpuPageTableFormat, EndpointDescriptor, PhysicalMemoryLike, ProcessMm } from './platform.js';

/** Mapping permission bits for {@link DriverDomain.map}. */
export const IOMMU_READ = 1;
/** Device may write. */
export const IOMMU_WRITE = 2;

/** What a domain is. */
export type DomainKind = 'paging' | 'nested' | 'sva' | 'identity' | 'blocked';

/** Options of a kernel-managed paging domain. */
export interface PagingDomainOptions {
  /** The domain will be the stage-2 parent of nested domains. */
  readonly nestParent: boolean;
  /** Dirty tracking enforced. */
  readonly dirtyTracking: boolean;
  /** The domain will be attached to PASIDs. */
  readonly pasid: boolean;
  /** Recoverable faults are reported (a fault queue is attached). */
  readonly iopf: boolean;
}

/**
 * A domain (an I/O page table and what the IOMMU needs to use it). Paging domains take
 * map/unmap; nested domains take user invalidations; every domain can be freed once nothing
 * is attached to it. Every method that fails throws an IoasidError and leaves the domain as it
 * was (a map that runs out of table frames frees what it allocated).
 */
export interface DriverDomain {
  /** What the domain is. */
  readonly kind: DomainKind;
  /** Page sizes the domain maps with, ascending (bytes). */
  readonly pageSizes: readonly bigint[];
  /** IOVA ranges the domain can translate (aperture, or DMA windows). */
  readonly apertures: readonly IovaRange[];
  /**
   * Maps `count` 4 KiB pages at `iova` (page aligned) to the frames `pfns[0…count)` with
   * IOMMU_READ/IOMMU_WRITE `prot`, using larger pages where frames are contiguous and aligned.
   * Paging domains only.
   */
  map(iova: bigint, pfns: Uint32Array, count: number, prot: number): void;
  /** Unmaps exactly a range earlier mapped (whole map calls), and invalidates caches. */
  unmap(iova: bigint, length: bigint): void;
  /** Handles user invalidation entries (nested domains); returns the number handled. */
  invalidateUser(entries: readonly InvalidateEntry[]): number;
  /** Enables or disables hardware dirty tracking (domains allocated with it). */
  setDirtyTracking(enable: boolean): void;
  /**
   * Reads the dirty state the hardware recorded in the tables for `[iova, iova+length)` into
   * `bitmap` (bit n = the page at iova + n·pageSize), clearing it unless `noClear`.
   */
  readDirty(iova: bigint, length: bigint, pageSize: bigint, bitmap: Uint8Array, noClear: boolean): void;
  /** Releases the domain's tables and identifiers. */
  free(): void;
}

/** A recoverable page request the hardware raised, reported by the driver to core. */
export interface IommuPageRequest {
  /** The endpoint (RID) that raised it. */
  readonly endpoint: EndpointDescriptor;
  /** The PASID, when the request carried one. */
  readonly pasid: number | undefined;
  /** Page-aligned address. */
  readonly addr: bigint;
  /** IOMMU_PGFAULT_PERM_* bits. */
  readonly perm: number;
  /** Page request group index. */
  readonly grpid: number;
  /** Last request of its group. */
  readonly last: boolean;
}

/** The driver of one backend: its side of every uAPI operation that reaches an IOMMU. */
export interface IommuDriver {
  /** The backend's package name without scope. */
  readonly backend: string;
  /** The device's hardware information. */
  hwInfo(dev: EndpointDescriptor): HwInfo;
  /** A kernel-managed paging domain for the device (or EOPNOTSUPP/EINVAL with the reason). */
  allocPagingDomain(dev: EndpointDescriptor, options: PagingDomainOptions): DriverDomain;
  /** A nested domain with user-managed stage 1 over a nest-parent paging domain. */
  allocNestedDomain(
    dev: EndpointDescriptor,
    parent: DriverDomain,
    data: HwptData,
    options: { readonly iopf: boolean },
  ): DriverDomain;
  /** An SVA domain that walks the process's CPU page table. */
  allocSvaDomain(dev: EndpointDescriptor, mm: ProcessMm): DriverDomain;
  /** The identity (pass-through) domain, when the hardware has one. */
  identityDomain(dev: EndpointDescriptor): DriverDomain | undefined;
  /** The blocking domain, when the hardware has one. */
  blockedDomain(dev: EndpointDescriptor): DriverDomain | undefined;
  /** Why `domain` cannot be attached to `dev` (undefined: it can). */
  attachConflict(dev: EndpointDescriptor, domain: DriverDomain, pasid: number | undefined): string | undefined;
  /** Attaches the RID (pasid undefined) or a PASID to a domain, replacing what was there. */
  attach(dev: EndpointDescriptor, domain: DriverDomain, pasid: number | undefined): void;
  /** Detaches the RID or a PASID: from then on its DMA faults (blocked). */
  detach(dev: EndpointDescriptor, pasid: number | undefined): void;
  /** Completes a page-request group. */
  pageResponse(dev: EndpointDescriptor, pasid: number | undefined, grpid: number, code: number): void;
  /**
   * An EEH operation (`VFIO_EEH_PE_*`, already range-checked by core) on the device's PE, for a
   * platform where DMA errors freeze PEs; returns the state for `VFIO_EEH_PE_GET_STATE`, else 0.
   * Absent: the platform has no EEH (core answers EOPNOTSUPP).
   */
  eehPeOp?(dev: EndpointDescriptor, op: number): number;
  /**
   * IOMMU_VIOMMU_ALLOC for the IOMMU instance of `dev` over `parent` (a nest-parent paging
   * domain of this driver). An unsupported type is EOPNOTSUPP; a parent of another instance
   * EINVAL. Absent: the driver has no vIOMMU (core answers EOPNOTSUPP).
   */
  allocViommu?(dev: EndpointDescriptor, parent: DriverDomain, type: number): DriverViommu;
}

/** A vIOMMU as the driver keeps it (`struct iommufd_viommu` and its driver part). */
export interface DriverViommu {
  /** The vEVENTQ types it reports (`IOMMU_VEVENTQ_TYPE_*`). */
  readonly eventTypes: readonly number[];
  /**
   * Records `dev`'s virtual ID. A device of another IOMMU instance, or an ID the architecture
   * cannot hold (a vSID above 32 bits), is EINVAL. Core has checked for duplicates.
   */
  addVdevice(dev: EndpointDescriptor, virtId: bigint): void;
  /** Forgets a device's virtual ID. */
  removeVdevice(dev: EndpointDescriptor): void;
  /**
   * A nested domain allocated from the vIOMMU (the vendor data as for `allocNestedDomain`).
   * Attaching a device that has no vDEVICE here is the driver's to refuse (ENOENT) where the
   * architecture needs the virtual ID (SMMUv3: a translating vSTE; abort and bypass do not).
   */
  allocNested(dev: EndpointDescriptor, data: HwptData, options: { readonly iopf: boolean }): DriverDomain;
  /**
   * vIOMMU-wide user invalidation: entries name devices by virtual ID. Returns the entries
   * handled; a bad entry is an IoasidError naming `entries[i]`.
   */
  invalidate(entries: readonly InvalidateEntry[]): number;
  /** Where events of `type` go (each call replaces the sink; undefined drops them). */
  setEventSink(type: number, sink: ((data: Uint8Array) => void) | undefined): void;
  /** Releases what the driver holds for it. */
  free(): void;
}

/** What the platform hands a backend when a system is created. */
export interface BackendHost {
  /** Guest-physical memory. */
  readonly memory: PhysicalMemoryLike;
  /** The endpoints with their own requester IDs (PFs and VFs). */
  readonly endpoints: readonly EndpointDescriptor[];
  /** Called by the driver for every recoverable page request it takes off the hardware. */
  reportPageRequest(request: IommuPageRequest): void;
}

/** A backend wired to a platform: its driver, and the bus path from endpoints to the model. */
export interface BackendInstance {
  /** The driver core calls. */
  readonly driver: IommuDriver;
  /**
   * Carries an endpoint's DMA to the hardware model. A read's bytes land in `into[0 … size)`
   * (core has checked that `into` is long enough; a write does not use `into`).
   * Returns `undefined` on success, the fault otherwise; the success path allocates nothing.
   * Core builds the allocating `Endpoint.dma` on top of this.
   */
  dmaInto(endpoint: EndpointDescriptor, request: DmaRequest, into: Uint8Array): DmaFault | undefined;
  /** The hardware model(s), for tests and reports (never used by core). */
  readonly hardware: unknown;
}

/** A backend package's definition, given to core's createSystem. */
export interface BackendDefinition {
  /** The backend's package name without scope. */
  readonly name: string;
  /** The CPU page-table format of this platform's processes (absent: no SVA). */
  readonly cpuPageTable?: CpuPageTableFormat;
  /** Builds the hardware model(s) and the driver on the platform. */
  create(host: BackendHost): BackendInstance;
}

/** An endpoint given to a system: a name, or a name with its SR-IOV VFs and mediated sub-devices. */
export interface DeviceSpec {
  /** `DDDD:BB:DD.F`. */
  readonly name: string;
  /** Number of SR-IOV virtual functions (requester IDs after the PF's, VF offset 1, stride 1). */
  readonly vfs?: number;
  /** Number of mediated sub-devices (each tagged by a kernel-allocated PASID of the parent). */
  readonly mdevs?: number;
  /** PASID capability (default true). */
  readonly pasid?: boolean;
  /** PRI capability (default true). */
  readonly pri?: boolean;
}

/** Options every createXxxSystem accepts. */
export interface SystemOptions {
  /** The endpoints. */
  readonly devices: readonly (string | DeviceSpec)[];
  /** Physical memory size in bytes (default 2^40). */
  readonly memorySize?: bigint;
}
