/**
 * The AArch64 CPU page-table format (4 KiB granule, 48-bit VA, 4 levels) of the platform's
 * processes, as Linux arm64 writes user mappings: table descriptors `PA | 0b11`; page
 * descriptors with AttrIndx 0 (MT_NORMAL), AP[1]=1 (EL0 access), AP[2]=1 when read-only,
 * SH=ISH, AF=1, nG=1, PXN=1 and UXN unless executable (Arm ARM D8.3). SVA hands this table to
 * the SMMU through a CD.
 */

import type { CpuPageTableFormat } from '@ioasid/uapi';
import { DESC_AF, DESC_HI_PXN, DESC_HI_UXN, DESC_TABLE, S1_AP_RDONLY, S1_AP_UNPRIV, S1_NG, SH_ISH_BITS } from './pgtable.js';

/**
 * Linux arm64 MAIR_EL1: idx0 MT_NORMAL 0xFF, idx1 MT_NORMAL_TAGGED 0xF0, idx2 MT_NORMAL_NC 0x44,
 * idx3 Device-nGnRnE 0x00, idx4 Device-nGnRE 0x04.
 */
export const AARCH64_MAIR_EL1 = 0x040044f0ffn;

const TWO32 = 4294967296;

/** The AArch64 4 KiB CPU page-table format. */
export const aarch64CpuPageTable: CpuPageTableFormat = {
  name: 'aarch64',
  levels: 4,
  table(pa: number, out: Uint32Array): void {
    out[0] = (((pa % TWO32) & 0xfffff000) | DESC_TABLE) >>> 0;
    out[1] = Math.floor(pa / TWO32) & 0xffff;
  },
  leaf(pa: number, writable: boolean, executable: boolean, out: Uint32Array): void {
    let lo = ((pa % TWO32) & 0xfffff000) | DESC_TABLE | S1_AP_UNPRIV | SH_ISH_BITS | DESC_AF | S1_NG;
    if (!writable) lo |= S1_AP_RDONLY;
    let hi = (Math.floor(pa / TWO32) & 0xffff) | DESC_HI_PXN;
    if (!executable) hi |= DESC_HI_UXN;
    out[0] = lo >>> 0;
    out[1] = hi >>> 0;
  },
};
