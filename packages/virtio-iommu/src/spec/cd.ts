/**
 * SMMUv3 Context Descriptor (Arm IHI 0070, "CD"), 64 bytes, as the extension's
 * `VIRTIO_IOMMU_X_FORMAT_SMMUV3_CD` PASID table holds it: a linear table of 2^S1CDMax CDs at
 * S1ContextPtr, CD n at S1ContextPtr + 64·n. Only the fields the model reads are named here.
 * Word 0 (bits 31:0): T0SZ 5:0, TG0 7:6 (0 = 4 KiB), EPD0 14, ENDI 15, V 31.
 * Word 1 (bits 63:32): IPS 34:32, AFFD 35, AA64 41, HD 42, HA 43, S 44, R 45, A 46, ASET 47,
 * ASID 63:48. Word 2–3 (bits 127:64): TTB0 in bits 119:68 (address bits 51:4).
 */

import { put32 } from './bytes.js';

/** Size of a CD. */
export const CD_SIZE = 64;
/** Word 0 bit 14: EPD0. */
export const CD_W0_EPD0 = 1 << 14;
/** Word 0 bit 15: ENDI (big-endian tables; unsupported by the model). */
export const CD_W0_ENDI = 1 << 15;
/** Word 0 bit 31: V. */
export const CD_W0_V = 1 << 31;
/** Word 1 bit 3 (CD bit 35): AFFD — AF = 0 never faults. */
export const CD_W1_AFFD = 1 << 3;
/** Word 1 bit 9 (CD bit 41): AA64. */
export const CD_W1_AA64 = 1 << 9;
/** Word 1 ASID shift (CD bits 63:48). */
export const CD_W1_ASID_SHIFT = 16;

/** The fields of a CD the model uses. */
export interface CdFields {
  /** Input size 64 − T0SZ. */
  readonly t0sz: number;
  /** TG0 (0 = 4 KiB). */
  readonly tg0?: number;
  /** EPD0. */
  readonly epd0?: boolean;
  /** Valid. */
  readonly valid: boolean;
  /** VMSAv8-64 tables (must be set). */
  readonly aa64?: boolean;
  /** AF = 0 never faults. */
  readonly affd?: boolean;
  /** ASID. */
  readonly asid?: number;
  /** Stage-1 table root. */
  readonly ttb0: number;
}

/** Encodes a 64-byte CD. */
export function encodeCd(f: CdFields): Uint8Array {
  const b = new Uint8Array(CD_SIZE);
  const w0 = (f.t0sz & 0x3f) | ((f.tg0 ?? 0) << 6) | (f.epd0 ? CD_W0_EPD0 : 0) | (f.valid ? CD_W0_V : 0);
  const w1 = (f.aa64 ?? true ? CD_W1_AA64 : 0) | (f.affd ? CD_W1_AFFD : 0) | ((f.asid ?? 0) << CD_W1_ASID_SHIFT);
  put32(b, 0, w0 >>> 0);
  put32(b, 4, w1 >>> 0);
  put32(b, 8, (f.ttb0 % 0x100000000) >>> 0 & 0xfffffff0);
  put32(b, 12, Math.floor(f.ttb0 / 0x100000000) & 0xfffff);
  return b;
}
