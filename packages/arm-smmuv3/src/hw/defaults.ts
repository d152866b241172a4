/**
 * Default feature registers of the model, and the `qemu` profile reproducing QEMU's
 * `hw/arm/smmuv3.c` defaults (IDR0 0x0D40101A, IDR1 0x02730010, IDR5 0x54, AIDR 1).
 */

import {
  IDR0,
  IDR0_HTTU_ACCESS_DIRTY,
  IDR0_TTENDIAN_LE,
  IDR0_TTF_AARCH64,
  IDR1,
  IDR3,
  IDR5,
  regValue,
} from '../spec/registers.js';

/** Values of the identification registers. */
export interface SmmuIdRegisters {
  /** SMMU_IDR0. */
  readonly idr0: number;
  /** SMMU_IDR1. */
  readonly idr1: number;
  /** SMMU_IDR3. */
  readonly idr3: number;
  /** SMMU_IDR5. */
  readonly idr5: number;
  /** SMMU_IIDR. */
  readonly iidr: number;
  /** SMMU_AIDR. */
  readonly aidr: number;
}

/**
 * The default model: 2-level stream and CD tables, S1 and S2, 16-bit ASID/VMID, SSIDSIZE 20,
 * 4K/16K/64K granules, OAS 48 bits, AArch64 little-endian tables, ATS, PRI, stall supported,
 * HTTU access+dirty, range invalidation, SMMUv3.2.
 */
export const DEFAULT_IDR: SmmuIdRegisters = {
  idr0: regValue([
    [IDR0.S2P, 1],
    [IDR0.S1P, 1],
    [IDR0.TTF, IDR0_TTF_AARCH64],
    [IDR0.COHACC, 1],
    [IDR0.HTTU, IDR0_HTTU_ACCESS_DIRTY],
    [IDR0.ATS, 1],
    [IDR0.ASID16, 1],
    [IDR0.PRI, 1],
    [IDR0.VMID16, 1],
    [IDR0.CD2L, 1],
    [IDR0.TTENDIAN, IDR0_TTENDIAN_LE],
    [IDR0.STALL_MODEL, 0],
    [IDR0.ST_LEVEL, 1],
  ]),
  idr1: regValue([
    [IDR1.SIDSIZE, 16],
    [IDR1.SSIDSIZE, 20],
    [IDR1.PRIQS, 19],
    [IDR1.EVENTQS, 19],
    [IDR1.CMDQS, 19],
  ]),
  idr3: regValue([[IDR3.RIL, 1]]),
  idr5: regValue([
    [IDR5.OAS, 5],
    [IDR5.GRAN4K, 1],
    [IDR5.GRAN16K, 1],
    [IDR5.GRAN64K, 1],
    [IDR5.STALL_MAX, 32],
  ]),
  // Implementer 0x43B (Arm), the model's product ID 0x000.
  iidr: 0x43b,
  // SMMUv3.2 (range invalidation is a v3.2 feature).
  aidr: 0x02,
};

/** QEMU's emulated SMMUv3 (stage 1 only, one CD, no stall, no PRI/ATS, OAS 44, 4K/64K). */
export const QEMU_IDR: SmmuIdRegisters = {
  idr0: 0x0d40101a,
  idr1: 0x02730010,
  idr3: 0,
  idr5: 0x54,
  iidr: 0,
  aidr: 0x01,
};
