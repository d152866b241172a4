/**
 * The CPU page-table formats of the platform's processes — the tables SVA hands to an IOMMU.
 * They belong to the CPU, not to any one IOMMU, so every backend of an architecture shares
 * them: x86-64 (VT-d SVA) and AArch64 4 KiB granule (SMMUv3 SVA, the virtio-iommu extension's
 * `arm-lpae-s1` tables).
 */

import type { CpuPageTableFormat } from '@ioasid/uapi';

const TWO32 = 4294967296;

/** x86-64 PTE bits (Intel SDM vol. 3 §4.5, Table 4-19/4-20): P, R/W, U/S; XD is bit 63. */
const X86_P = 1 << 0;
const X86_RW = 1 << 1;
const X86_US = 1 << 2;
const X86_XD_HI = 1 << 31; // bit 63 of the entry, in the high word

/**
 * x86-64 4-level paging as Linux writes user mappings: tables present | R/W | U/S; leaves
 * present | U/S, R/W when writable, XD when not executable; address bits 12..51.
 */
export const X86_64_CPU_PAGE_TABLE: CpuPageTableFormat = {
  name: 'x86-64',
  levels: 4,
  table(pa: number, out: Uint32Array): void {
    out[0] = ((pa % TWO32) | X86_P | X86_RW | X86_US) >>> 0;
    out[1] = Math.floor(pa / TWO32) & 0xfffff;
  },
  leaf(pa: number, writable: boolean, executable: boolean, out: Uint32Array): void {
    out[0] = ((pa % TWO32) | X86_P | X86_US | (writable ? X86_RW : 0)) >>> 0;
    out[1] = ((Math.floor(pa / TWO32) & 0xfffff) | (executable ? 0 : X86_XD_HI)) >>> 0;
  },
};

/** VMSAv8-64 stage-1 descriptor bits (Arm ARM D8.3): table/page type 0b11, AP, SH, AF, nG, PXN, UXN. */
const A64_TABLE_OR_PAGE = 0b11;
const A64_AP_EL0 = 1 << 6; // AP[1]: EL0 access
const A64_AP_RDONLY = 1 << 7; // AP[2]: read-only
const A64_SH_ISH = 3 << 8; // inner shareable
const A64_AF = 1 << 10;
const A64_NG = 1 << 11;
const A64_PXN_HI = 1 << 21; // bit 53
const A64_UXN_HI = 1 << 22; // bit 54

/**
 * AArch64 4 KiB granule, 48-bit VA, 4 levels, as Linux arm64 writes user mappings: table
 * descriptors `PA | 0b11`; page descriptors with AttrIndx 0, AP[1]=1, AP[2]=1 when read-only,
 * SH=ISH, AF=1, nG=1, PXN=1, and UXN unless executable.
 */
export const AARCH64_CPU_PAGE_TABLE: CpuPageTableFormat = {
  name: 'aarch64',
  levels: 4,
  table(pa: number, out: Uint32Array): void {
    out[0] = (((pa % TWO32) & 0xfffff000) | A64_TABLE_OR_PAGE) >>> 0;
    out[1] = Math.floor(pa / TWO32) & 0xffff;
  },
  leaf(pa: number, writable: boolean, executable: boolean, out: Uint32Array): void {
    const lo = ((pa % TWO32) & 0xfffff000) | A64_TABLE_OR_PAGE | A64_AP_EL0 | A64_SH_ISH | A64_AF | A64_NG | (writable ? 0 : A64_AP_RDONLY);
    out[0] = lo >>> 0;
    out[1] = ((Math.floor(pa / TWO32) & 0xffff) | A64_PXN_HI | (executable ? 0 : A64_UXN_HI)) >>> 0;
  },
};
