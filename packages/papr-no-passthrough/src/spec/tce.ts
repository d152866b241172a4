/**
 * The Translation Control Entry (LoPAR ch_address_map.xml "TCE Definition"; Linux
 * arch/powerpc/include/asm/tce.h). A TCE is a big-endian 64-bit word: the real page number
 * in bits 63..12 (IBM bits 0–51), reserved bits 11..2, and the page mapping and control field
 * in bits 1..0 (IBM bits 62–63): 00 page fault (no access), 01 read-only, 10 write-only,
 * 11 read/write. "Read" means the device may read memory (DMA to the device).
 */

/** The device may read memory through the TCE (`TCE_PCI_READ`). */
export const TCE_PCI_READ = 0x1;
/** The device may write memory through the TCE (`TCE_PCI_WRITE`). */
export const TCE_PCI_WRITE = 0x2;
/** The page mapping and control field. */
export const TCE_PERM_MASK = 0x3;
/** The RPN starts at bit 12. */
export const TCE_RPN_SHIFT = 12;
/** Bytes per TCE (`TCE_ENTRY_SIZE`). */
export const TCE_ENTRY_SIZE = 8;
/** Reserved bits 11..2 (LoPAR IBM bits 52–61). */
export const TCE_RESERVED_MASK = 0xffc;

/** A decoded TCE. */
export interface Tce {
  /** The real (page-aligned) address, bits 63..12. */
  readonly address: bigint;
  /** The device may read memory. */
  readonly read: boolean;
  /** The device may write memory. */
  readonly write: boolean;
}

/** Encodes a TCE for a page-aligned real address (its low 12 bits are dropped). */
export function encodeTce(address: bigint, read: boolean, write: boolean): bigint {
  const perm = (read ? TCE_PCI_READ : 0) | (write ? TCE_PCI_WRITE : 0);
  return (BigInt.asUintN(64, address) & ~0xfffn) | BigInt(perm);
}

/** Decodes a TCE value. */
export function decodeTce(tce: bigint): Tce {
  const v = BigInt.asUintN(64, tce);
  return { address: v & ~0xfffn, read: (v & 1n) !== 0n, write: (v & 2n) !== 0n };
}

/** Reverses the bytes of a 32-bit word: big-endian ↔ the little-endian memory accessors. */
export function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

/** The TCE permission bits for IOMMU_READ (1) / IOMMU_WRITE (2) — the same bit values. */
export function tcePermFromProt(prot: number): number {
  return prot & TCE_PERM_MASK;
}
