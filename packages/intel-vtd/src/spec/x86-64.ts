/**
 * The x86-64 CPU page-table format of the platform's processes (Intel SDM vol. 3 §4.5), as
 * the IOMMU's first stage walks it for SVA: present (bit 0), R/W (bit 1), U/S (bit 2, set for
 * user pages), address bits 12..51, XD (bit 63) on non-executable leaves.
 */

import type { CpuPageTableFormat } from '@ioasid/uapi';
import { FS_P, FS_RW, FS_US, FS_XD_HI } from './first-stage.js';
import { splitNumber } from './fields.js';

/** x86-64 4-level paging: the table SVA hands to a VT-d PASID entry (FSPM = 0). */
export const X86_64_PAGE_TABLE: CpuPageTableFormat = {
  name: 'x86-64',
  levels: 4,
  table(pa: number, out: Uint32Array): void {
    const [lo, hi] = splitNumber(pa);
    out[0] = (lo | FS_P | FS_RW | FS_US) >>> 0;
    out[1] = hi;
  },
  leaf(pa: number, writable: boolean, executable: boolean, out: Uint32Array): void {
    const [lo, hi] = splitNumber(pa);
    out[0] = (lo | FS_P | FS_US | (writable ? FS_RW : 0)) >>> 0;
    out[1] = (hi | (executable ? 0 : FS_XD_HI)) >>> 0;
  },
};
