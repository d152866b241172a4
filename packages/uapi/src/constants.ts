/**
 * Constants of the uAPI, named as Linux's include/uapi/linux/iommufd.h names them, plus the
 * ioasid-specific ones (PASID width, page size).
 */

/** The 64-bit all-ones value: `{ iova: 0n, length: U64_MAX }` is the unmap-everything form. */
export const U64_MAX = (1n << 64n) - 1n;

/** The CPU and IOMMU base page size the platform uses (4 KiB). */
export const PAGE_SIZE = 4096n;
/** log2 of {@link PAGE_SIZE}. */
export const PAGE_SHIFT = 12;

/** PASIDs are 20 bits wide (PCIe): values 0 … 2^20−1; PASID 0 is the RID's own space. */
export const PASID_BITS = 20;
/** The largest PASID value. */
export const PASID_MAX = (1 << PASID_BITS) - 1;

/** `IOMMU_HWPT_ALLOC_*` flags (iommufd.h `enum iommufd_hwpt_alloc_flags`). */
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
/** Dirty tracking enforced on attach. */
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
/** `fault_id` is valid: the HWPT reports I/O page faults to a fault queue. */
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
/** The domain may be attached to any PASID. */
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

/** `enum iommu_hwpt_data_type`. */
export const IOMMU_HWPT_DATA_NONE = 0;
/** Intel VT-d stage-1 page table (`struct iommu_hwpt_vtd_s1`). */
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
/** Arm SMMUv3 nested STE (`struct iommu_hwpt_arm_smmuv3`). */
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;

/** `struct iommu_hwpt_vtd_s1` flags. */
export const IOMMU_VTD_S1_SRE = 1 << 0;
/** Extended access flag enable. */
export const IOMMU_VTD_S1_EAFE = 1 << 1;
/** Write protect enable. */
export const IOMMU_VTD_S1_WPE = 1 << 2;
/** `iommu_hwpt_vtd_s1_invalidate.flags`: leaf PTE caches only. */
export const IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0;

/** `enum iommu_hwpt_invalidate_data_type`. */
export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
/** Raw SMMUv3 command-queue entries through a vIOMMU. */
export const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1;

/** `struct iommu_hwpt_pgfault.flags`. */
export const IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0;
/** The last page request of a group. */
export const IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;
/** `struct iommu_hwpt_pgfault.perm` bits. */
export const IOMMU_PGFAULT_PERM_READ = 1 << 0;
/** Write permission requested. */
export const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
/** Execute permission requested. */
export const IOMMU_PGFAULT_PERM_EXEC = 1 << 2;
/** Privileged access requested. */
export const IOMMU_PGFAULT_PERM_PRIV = 1 << 3;
/** `enum iommufd_page_response_code`. */
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
/** The page request failed: the device must not retry. */
export const IOMMUFD_PAGE_RESP_INVALID = 1;

/** `enum iommu_hw_capabilities`. */
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;
/** PASID executable permission supported. */
export const IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1;
/** PASID privileged mode supported. */
export const IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2;

/** `enum iommu_hw_info_type`. */
export const IOMMU_HW_INFO_TYPE_NONE = 0;
/** Intel VT-d: `struct iommu_hw_info_vtd`. */
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
/** Arm SMMUv3: `struct iommu_hw_info_arm_smmuv3`. */
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;

/**
 * `struct vfio_eeh_pe_op.op` (include/uapi/linux/vfio.h): EEH operations on the partitionable
 * endpoint (PE) of a device, for platforms where a DMA error freezes the PE (PAPR).
 */
export const VFIO_EEH_PE_DISABLE = 0;
/** Enable EEH on the PE. */
export const VFIO_EEH_PE_ENABLE = 1;
/** Enable MMIO for a frozen PE. */
export const VFIO_EEH_PE_UNFREEZE_IO = 2;
/** Enable DMA for a frozen PE. */
export const VFIO_EEH_PE_UNFREEZE_DMA = 3;
/** Read the PE state (one of `VFIO_EEH_PE_STATE_*`). */
export const VFIO_EEH_PE_GET_STATE = 4;
/** Deassert the PE reset. */
export const VFIO_EEH_PE_RESET_DEACTIVATE = 5;
/** Assert a hot reset. */
export const VFIO_EEH_PE_RESET_HOT = 6;
/** Assert a fundamental reset. */
export const VFIO_EEH_PE_RESET_FUNDAMENTAL = 7;
/** Configure the PE after a reset (restore its bridges' and functions' configuration). */
export const VFIO_EEH_PE_CONFIGURE = 8;
/** Inject an EEH error. */
export const VFIO_EEH_PE_INJECT_ERR = 9;
/** `VFIO_EEH_PE_GET_STATE` results: the PE works normally. */
export const VFIO_EEH_PE_STATE_NORMAL = 0;
/** A PE reset is in progress (asserted). */
export const VFIO_EEH_PE_STATE_RESET = 1;
/** MMIO and DMA are stopped (the PE is frozen). */
export const VFIO_EEH_PE_STATE_STOPPED = 2;
/** DMA only is stopped (MMIO was unfrozen). */
export const VFIO_EEH_PE_STATE_STOPPED_DMA = 4;
/** The state is temporarily unavailable. */
export const VFIO_EEH_PE_STATE_UNAVAIL = 5;

/** `enum iommu_viommu_type`: reserved for a vIOMMU with no vendor part. */
export const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
/** An Arm SMMUv3 vIOMMU: virtual StreamIDs, nested STEs, CMDQ-format invalidation. */
export const IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1;
/** `enum iommu_veventq_type`: reserved. */
export const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
/** Arm SMMUv3 event records (`struct iommu_vevent_arm_smmuv3`: the 32-byte record, vSID in it). */
export const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1;
/** `struct iommufd_vevent_header.flags`: events were lost; the header carries no data. */
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;
