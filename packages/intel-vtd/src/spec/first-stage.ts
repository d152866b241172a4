/**
 * First-stage paging entries: the x86-64 4/5-level format (VT-d spec §9.7; Linux
 * drivers/iommu/generic_pt/fmt/x86_64.h). 512 × 64-bit entries per 4 KiB table.
 */

import * as fields from './fields.js';

// Bound locally: the reserved-bit checks run at every level of a walk, and a module runner that
// implements import bindings as getters (vitest's) would turn each use into a call.
const { addressBeyond } = fields;

/** P: present. */
export const FS_P = 1 << 0;
/** R/W: writes allowed (AND across levels). */
export const FS_RW = 1 << 1;
/** U/S: user accesses allowed (AND across levels). */
export const FS_US = 1 << 2;
/** PWT. */
export const FS_PWT = 1 << 3;
/** PCD. */
export const FS_PCD = 1 << 4;
/** A: accessed (set by hardware). */
export const FS_A = 1 << 5;
/** D: dirty (set by hardware in the leaf on a write). */
export const FS_D = 1 << 6;
/** PS: large page at levels 2 (2 MiB) and 3 (1 GiB). */
export const FS_PS = 1 << 7;
/** G: global (ignored by the IOMMU). */
export const FS_G = 1 << 8;
/** EA: extended accessed (with PASID-entry EAFE). */
export const FS_EA = 1 << 10;
/** XD: execute disable, bit 63 (bit 31 of the high dword). */
export const FS_XD_HI = 0x80000000;

/** Linux's non-leaf first-stage entry bits: P | R/W | U/S | A (0x27). */
export const FS_TABLE_BITS = FS_P | FS_RW | FS_US | FS_A;

/** Encodes a non-leaf first-stage entry pointing at `table` (Linux writes P|RW|U|A). */
export function encodeFsTable(table: bigint): bigint {
  return table | BigInt(FS_TABLE_BITS);
}

/**
 * Encodes a first-stage leaf as Linux does: P | U/S | A, plus R/W | D when writable, PS for a
 * 2 MiB or 1 GiB leaf (0x25 read-only, 0x67 read-write, +0x80 large), XD when not executable.
 */
export function encodeFsLeaf(pa: bigint, e: { writable: boolean; large?: boolean; user?: boolean; xd?: boolean }): bigint {
  let v = pa | BigInt(FS_P | FS_A | (e.user === false ? 0 : FS_US));
  if (e.writable) v |= BigInt(FS_RW | FS_D);
  if (e.large === true) v |= BigInt(FS_PS);
  if (e.xd === true) v |= 1n << 63n;
  return v;
}

/**
 * True when a present first-stage entry at `level` (1 = PTE … 5 = PML5E) has reserved bits
 * set: address bits 51:HAW, PS at levels 4/5, PS at level 3 without CAP.FL1GP, and the low
 * address bits of a large leaf (2 MiB: 20:13, 1 GiB: 29:13).
 */
export function fsEntryReserved(lo: number, hi: number, level: number, haw: number, fl1gp: boolean): boolean {
  if (addressBeyond(hi, haw)) return true;
  if (level >= 2 && (lo & FS_PS) !== 0) {
    if (level >= 4) return true;
    if (level === 3) return !fl1gp || (lo & 0x3fffe000) !== 0;
    return (lo & 0x1fe000) !== 0;
  }
  return false;
}

/** True when a first-stage input address is canonical for 4-level (48-bit) or 5-level (57-bit) paging. */
export function fsCanonical(hi: number, fiveLevel: boolean): boolean {
  const top = fiveLevel ? hi >>> 24 : hi >>> 15; // bits 63:56 or 63:47
  return top === 0 || top === (fiveLevel ? 0xff : 0x1ffff);
}
