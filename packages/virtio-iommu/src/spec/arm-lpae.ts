/**
 * Arm VMSAv8-64 (LPAE) stage-1 translation-table descriptors with the 4 KiB granule (Arm ARM
 * D8.3 "Translation table descriptor formats"), the TCR_EL1 fields the extension's LPAE
 * descriptor uses, and the AArch64 CPU page-table format processes use for SVA.
 *
 * Bits of a descriptor, split into the low and high 32-bit words the walker reads:
 * - low bit 0 valid; bit 1: table (levels 0–2) / page (level 3), 0 = block (levels 1–2)
 * - low bits 4:2 AttrIndx, bit 6 AP[1] (EL0 access), bit 7 AP[2] (read-only), bits 9:8 SH,
 *   bit 10 AF, bit 11 nG, bits 31:12 output address [31:12]
 * - high bits 15:0 output address [47:32], bits 19:16 OA[51:48] (RES0 without LPA2),
 *   bit 21 PXN (53), bit 22 UXN (54); table descriptors: bit 27 PXNTable (59),
 *   bit 28 UXNTable (60), bits 30:29 APTable (62:61).
 */


/** Descriptor bit 0: valid. */
export const LPAE_VALID = 1 << 0;
/** Descriptor bit 1: table (levels 0–2) or page (level 3). */
export const LPAE_TABLE_OR_PAGE = 1 << 1;
/** AttrIndx shift (bits 4:2). */
export const LPAE_ATTRINDX_SHIFT = 2;
/** AP[1] (bit 6): EL0 (unprivileged) access permitted. */
export const LPAE_AP_UNPRIV = 1 << 6;
/** AP[2] (bit 7): read-only. */
export const LPAE_AP_RDONLY = 1 << 7;
/** SH shift (bits 9:8); 0b11 inner shareable. */
export const LPAE_SH_SHIFT = 8;
/** AF (bit 10): access flag. */
export const LPAE_AF = 1 << 10;
/** nG (bit 11): not global. */
export const LPAE_NG = 1 << 11;
/** High word bit 21 = descriptor bit 53: PXN. */
export const LPAE_HI_PXN = 1 << 21;
/** High word bit 22 = descriptor bit 54: UXN. */
export const LPAE_HI_UXN = 1 << 22;
/** High word bit 27 = bit 59: PXNTable. */
export const LPAE_HI_PXNTABLE = 1 << 27;
/** High word bit 28 = bit 60: UXNTable. */
export const LPAE_HI_UXNTABLE = 1 << 28;
/** High word bit 29 = bit 61: APTable[0] (no EL0 access below). */
export const LPAE_HI_APTABLE_NOEL0 = 1 << 29;
/** High word bit 30 = bit 62: APTable[1] (no write below). */
export const LPAE_HI_APTABLE_RDONLY = 1 << 30;
/** High word bits 19:16 = OA[51:48]: RES0 with a 48-bit output address. */
export const LPAE_HI_OA_51_48 = 0xf << 16;

/** TCR_EL1.T0SZ (bits 5:0): input size 64 − T0SZ. */
export const TCR_T0SZ_MASK = 0x3f;
/** TCR_EL1.EPD0 (bit 7): walks of TTBR0 disabled. */
export const TCR_EPD0 = 1 << 7;
/** TCR_EL1.TG0 shift (bits 15:14): 0b00 4 KiB, 0b01 64 KiB, 0b10 16 KiB. */
export const TCR_TG0_SHIFT = 14;
/** Smallest T0SZ for 4 KiB without FEAT_LPA2/TTST: 16 (48-bit VA). */
export const T0SZ_MIN = 16;
/** Largest T0SZ for 4 KiB without FEAT_TTST: 39 (25-bit VA). */
export const T0SZ_MAX = 39;

/** A TCR for a 4 KiB-granule table of `vaBits` input bits (TG0 = 0, inner-shareable WB). */
export function lpaeTcr(vaBits = 48): bigint {
  // IRGN0 = ORGN0 = 0b01 (write-back write-allocate), SH0 = 0b11: what Linux's io-pgtable-arm writes.
  return BigInt((64 - vaBits) | (1 << 8) | (1 << 10) | (3 << 12));
}

/** Start level and level count of a 4 KiB-granule walk for T0SZ (Arm ARM: 9 bits per level). */
export function lpaeStartLevel(t0sz: number): number {
  const ia = 64 - t0sz;
  const levels = Math.ceil((ia - 12) / 9);
  return 4 - levels;
}

/** Encodes a next-level table descriptor to `pa`. */
export function lpaeTableDescriptor(pa: number, out: Uint32Array): void {
  out[0] = (((pa % 0x100000000) >>> 12) << 12 | LPAE_VALID | LPAE_TABLE_OR_PAGE) >>> 0;
  out[1] = Math.floor(pa / 0x100000000) & 0xffff;
}

/**
 * Encodes a level-3 page descriptor: AttrIndx 0, SH inner shareable, AF, nG, AP[1] when
 * `unpriv`, AP[2] when not `writable`, UXN when not `executable`, PXN always (user memory).
 */
export function lpaePageDescriptor(pa: number, writable: boolean, executable: boolean, out: Uint32Array, unpriv = true): void {
  let lo = ((pa % 0x100000000) >>> 12) << 12;
  lo |= LPAE_VALID | LPAE_TABLE_OR_PAGE | (3 << LPAE_SH_SHIFT) | LPAE_AF | LPAE_NG;
  if (unpriv) lo |= LPAE_AP_UNPRIV;
  if (!writable) lo |= LPAE_AP_RDONLY;
  out[0] = lo >>> 0;
  out[1] = (Math.floor(pa / 0x100000000) & 0xffff) | LPAE_HI_PXN | (executable ? 0 : LPAE_HI_UXN);
}

/**
 * The AArch64 4 KiB-granule, 4-level CPU page-table format (48-bit VA): the table SVA hands to
 * the extension as an `arm-lpae-s1` table. It is the platform CPU's, shared with every backend
 * that walks it: `@ioasid/core`'s AARCH64_CPU_PAGE_TABLE (same bits as lpaePageDescriptor with
 * `unpriv`).
 */
export { AARCH64_CPU_PAGE_TABLE as aarch64CpuPageTable } from '@ioasid/core';
