/**
 * The capabilities the model advertises by default: a scalable-mode unit with 20-bit PASIDs,
 * first-stage 4- and 5-level paging with 1 GiB pages, 48-bit second stage (39/48-bit SAGAW)
 * with 2 MiB/1 GiB pages, nesting, pass-through, page requests, supervisor and execute
 * requests, second-stage A/D (dirty tracking), queued invalidation and 8 fault records.
 */

import { CAP, ECAP } from './registers.js';
import { encodeFields } from './fields.js';

/** VER_REG value: architecture 3.0, the first revision with scalable mode (QEMU reports 0x30 in scalable mode). */
export const DEFAULT_VER = 0x30;
/** Fault recording registers start at 0x220 (QEMU's offset). */
export const DEFAULT_FRO = 0x22;
/** The IOTLB registers start at 0xF0 (QEMU's offset). */
export const DEFAULT_IRO = 0x0f;

/** Default CAP_REG. */
export const DEFAULT_CAP: bigint = encodeFields(CAP, {
  ND: 6,
  SAGAW: 0b00110,
  MGAW: 47,
  FRO: DEFAULT_FRO,
  SLLPS: 0b11,
  PSI: 1,
  NFR: 7,
  MAMV: 18,
  DWD: 1,
  DRD: 1,
  FL1GP: 1,
  FL5LP: 1,
});

/** Default ECAP_REG. */
export const DEFAULT_ECAP: bigint = encodeFields(ECAP, {
  C: 1,
  QI: 1,
  PT: 1,
  SC: 1,
  IRO: DEFAULT_IRO,
  NEST: 1,
  PRS: 1,
  ERS: 1,
  SRS: 1,
  EAFS: 1,
  PSS: 19,
  PASID: 1,
  PDS: 1,
  SMTS: 1,
  SSADS: 1,
  SSTS: 1,
  FSTS: 1,
  SMPWCS: 1,
  RPS: 1,
});
