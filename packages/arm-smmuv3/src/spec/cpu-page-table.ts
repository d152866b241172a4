/**
 * The AArch64 CPU page-table format (4 KiB granule, 48-bit VA, 4 levels) of the platform's
 * processes, as Linux arm64 writes user mappings: table descriptors `PA | 0b11`; page
 * descriptors with AttrIndx 0 (MT_NORMAL), AP[1]=1 (EL0 access), AP[2]=1 when read-only,
 * SH=ISH, AF=1, nG=1, PXN=1 and UXN unless executable (Arm ARM D8.3). SVA hands this table to
 * the SMMU through a CD; the CD's MAIR is Linux's MAIR_EL1 below.
 */

/**
 * Linux arm64 MAIR_EL1: idx0 MT_NORMAL 0xFF, idx1 MT_NORMAL_TAGGED 0xF0, idx2 MT_NORMAL_NC 0x44,
 * idx3 Device-nGnRnE 0x00, idx4 Device-nGnRE 0x04.
 */
export const AARCH64_MAIR_EL1 = 0x040044f0ffn;

/**
 * The AArch64 4 KiB CPU page-table format itself is the platform's, shared with every backend
 * that walks it: `@ioasid/core`'s `AARCH64_CPU_PAGE_TABLE`.
 */
export { AARCH64_CPU_PAGE_TABLE as aarch64CpuPageTable } from '@ioasid/core';
