/**
 * Second-stage paging entries (VT-d spec §9.8; Linux drivers/iommu/generic_pt/fmt/vtdss.h).
 * There is no present bit: R = W = 0 means not present.
 */

import * as fields from './fields.js';

// Bound locally: the reserved-bit checks run at every level of a walk, and a module runner that
// implements import bindings as getters (vitest's) would turn each use into a call.
const { addressBeyond } = fields;

/** R: read permission. */
export const SS_R = 1 << 0;
/** W: write permission. */
export const SS_W = 1 << 1;
/** X (EPT execute; ignored by VT-d). */
export const SS_X = 1 << 2;
/** PS: large page at level 2 (2 MiB) or 3 (1 GiB, CAP.SLLPS bit 1). */
export const SS_PS = 1 << 7;
/** A: accessed (with PASID-entry SSADE). */
export const SS_A = 1 << 8;
/** D: dirty (leaf, with SSADE). */
export const SS_D = 1 << 9;
/** SNP: snoop (leaf only). */
export const SS_SNP = 1 << 11;
/** TM: transient mapping, bit 62 (bit 30 of the high dword); reserved in scalable mode. */
export const SS_TM_HI = 0x40000000;

/** Encodes a non-leaf second-stage entry as Linux does: `table | R | W` (0x3). */
export function encodeSsTable(table: bigint): bigint {
  return table | BigInt(SS_R | SS_W);
}

/** Encodes a second-stage leaf: R/W per permission, PS for a large leaf, SNP when asked. */
export function encodeSsLeaf(pa: bigint, e: { read: boolean; write: boolean; large?: boolean; snp?: boolean }): bigint {
  let v = pa;
  if (e.read) v |= BigInt(SS_R);
  if (e.write) v |= BigInt(SS_W);
  if (e.large === true) v |= BigInt(SS_PS);
  if (e.snp === true) v |= BigInt(SS_SNP);
  return v;
}

/**
 * True when a present second-stage entry at `level` has reserved bits set: address bits
 * 51:HAW, TM (bit 62), PS at levels 4/5 or where CAP.SLLPS lacks the size, the low address
 * bits of a large leaf (2 MiB: 20:12, 1 GiB: 29:12), SNP in a non-leaf or without ECAP.SC.
 */
export function ssEntryReserved(lo: number, hi: number, level: number, haw: number, sllps: number, sc: boolean): boolean {
  if (addressBeyond(hi, haw) || (hi & SS_TM_HI) !== 0) return true;
  const leaf = level === 1 || (lo & SS_PS) !== 0;
  if (level >= 2 && (lo & SS_PS) !== 0) {
    if (level >= 4) return true;
    if (level === 3 && ((sllps & 2) === 0 || (lo & 0x3ffff000) !== 0)) return true;
    if (level === 2 && ((sllps & 1) === 0 || (lo & 0x1ff000) !== 0)) return true;
  }
  if ((lo & SS_SNP) !== 0 && (!leaf || !sc)) return true;
  return false;
}
