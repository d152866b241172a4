/** The shapes of per-device hardware information (IOMMU_GET_HW_INFO, widened). */

/** An inclusive IOVA range `[start, last]`. */
export interface IovaRange {
  /** First byte. */
  readonly start: bigint;
  /** Last byte (inclusive). */
  readonly last: bigint;
}

/** Why a range is reserved. */
export type ReservedRegionKind = 'msi' | 'direct' | 'reserved' | 'window-gap';

/** A reserved IOVA region reported by the IOMMU or the platform. */
export interface ReservedRegion extends IovaRange {
  /** The kind of region (an MSI doorbell, a direct-mapped region, a hole between windows …). */
  readonly kind: ReservedRegionKind;
}

/**
 * What a device's IOMMU can do. Each boolean predicts whether the matching operation works:
 * a false one makes that operation throw EOPNOTSUPP.
 */
export interface HwInfo {
  /** The backend's package name without scope, e.g. `'intel-vtd'`. */
  readonly backend: string;
  /** PASID width in bits (0 = no PASID support on this device). */
  readonly pasidBits: number;
  /** Hardware nesting formats accepted by allocHwpt with vendor data (empty = none). */
  readonly nestingFormats: readonly string[];
  /** An identity (pass-through) domain exists. */
  readonly passthrough: boolean;
  /** A blocking domain exists (an attached-to-nothing state that faults every DMA). */
  readonly blocked: boolean;
  /** Shared virtual addressing: bindSva works. */
  readonly sva: boolean;
  /** Recoverable I/O page faults: allocHwpt with a fault queue works. */
  readonly iopf: boolean;
  /** A global (system-wide, ENQCMD-style) PASID can be used on this device. */
  readonly globalPasid: boolean;
  /** Dirty page tracking (iommufd `IOMMU_HW_CAP_DIRTY_TRACKING`). */
  readonly dirtyTracking: boolean;
  /**
   * A DMA fault isolates the device until software recovers it (PAPR EEH freezes the PE);
   * absent or false: a fault affects only the faulting request.
   */
  readonly dmaFaultFreezes?: boolean;
  /**
   * The vIOMMU types (`IOMMU_VIOMMU_TYPE_*`) `allocViommu` accepts for this device; absent or
   * empty: none (EOPNOTSUPP, with the reason in `unsupported.viommu`).
   */
  readonly viommuTypes?: readonly number[];
  /**
   * The functions (by name) that share this device's isolation unit — its IOMMU group, e.g.
   * the functions of one PAPR partitionable endpoint — itself included. The IOMMU cannot tell
   * their DMA apart, so they are never bound by two contexts (EBUSY). Absent: the device is
   * alone in its group.
   */
  readonly group?: readonly string[];
  /** Page sizes the IOMMU can map, in bytes, ascending. */
  readonly pageSizes: readonly bigint[];
  /** The IOVA ranges the device can use (apertures or DMA windows). */
  readonly iovaRanges: readonly IovaRange[];
  /** Reserved regions inside the apertures. */
  readonly reservedRegions: readonly ReservedRegion[];
  /** iommufd `out_capabilities` bits (IOMMU_HW_CAP_*). */
  readonly capabilities: number;
  /** iommufd `out_data_type` (IOMMU_HW_INFO_TYPE_*). */
  readonly dataType: number;
  /** Why operations that the hardware lacks are refused, keyed by operation name. */
  readonly unsupported: Readonly<Record<string, string>>;
  /** The architecture's own record (CAP/ECAP, IDRs, PE windows, virtio config and probe). */
  readonly vendor: Readonly<Record<string, unknown>>;
}
