/**
 * The x86-64 CPU page-table format of the platform's processes (Intel SDM vol. 3 §4.5), as
 * the IOMMU's first stage walks it for SVA: present (bit 0), R/W (bit 1), U/S (bit 2, set for
 * user pages), address bits 12..51, XD (bit 63) on non-executable leaves.
 *
 * x86-64 4-level paging: the table SVA hands to a VT-d PASID entry (FSPM = 0). The format is the
 * platform CPU's, shared with every backend that walks it: `@ioasid/core`'s X86_64_CPU_PAGE_TABLE.
 */
export { X86_64_CPU_PAGE_TABLE as X86_64_PAGE_TABLE } from '@ioasid/core';
