/**
 * Fault reasons (VT-d spec §7.1.3 and Appendix; Linux dmar.c `dma_remap_fault_reasons` and
 * `dma_remap_sm_fault_reasons`), the fault recording register layout (§11.4.14) and the
 * architecture-neutral class of each reason.
 */

import type { FaultClass } from '@ioasid/uapi';

/** Scalable-mode fault reasons. */
export const SM_FAULT = {
  INVALID_ROOT_TABLE_ADDRESS: 0x30,
  TTM0_WITH_PASID: 0x31,
  TTM0_PAGE_GROUP_REQUEST: 0x32,
  ROOT_ENTRY_ACCESS: 0x38,
  ROOT_ENTRY_NOT_PRESENT: 0x39,
  ROOT_ENTRY_RESERVED: 0x3a,
  CONTEXT_ENTRY_ACCESS: 0x40,
  CONTEXT_ENTRY_NOT_PRESENT: 0x41,
  CONTEXT_ENTRY_RESERVED: 0x42,
  CONTEXT_ENTRY_INVALID: 0x43,
  CONTEXT_DTE_CLEAR: 0x44,
  CONTEXT_PASIDE_CLEAR: 0x45,
  PASID_TOO_LARGE: 0x46,
  CONTEXT_PRE_CLEAR: 0x47,
  RID_PASID_ERROR: 0x48,
  PASID_DIR_ACCESS: 0x50,
  PASID_DIR_NOT_PRESENT: 0x51,
  PASID_DIR_RESERVED: 0x52,
  PASID_ENTRY_ACCESS: 0x58,
  PASID_ENTRY_NOT_PRESENT: 0x59,
  PASID_ENTRY_RESERVED: 0x5a,
  PASID_ENTRY_INVALID: 0x5b,
  PASID_ERE_CLEAR: 0x5c,
  PASID_SRE_CLEAR: 0x5d,
  FS_ENTRY_ACCESS: 0x70,
  FS_ENTRY_NOT_PRESENT: 0x71,
  FS_ENTRY_RESERVED: 0x72,
  FS_PML4_ACCESS: 0x73,
  FS_ADDRESS_BEYOND_MGAW: 0x74,
  FS_PML4_READ_NESTED: 0x75,
  FS_ENTRY_READ_NESTED: 0x76,
  FS_ENTRY_WRITE_NESTED: 0x77,
  SS_ENTRY_ACCESS: 0x78,
  SS_ENTRY_PERMISSION: 0x79,
  SS_ENTRY_RESERVED: 0x7a,
  SS_INVALID_PTR: 0x7b,
  SS_AD_NO_SNOOP: 0x7c,
  FS_NON_CANONICAL: 0x80,
  FS_USER_PRIVILEGE: 0x81,
  NO_EXECUTE: 0x82,
  BEYOND_HAW: 0x83,
  SS_BEYOND_AW: 0x84,
  NO_WRITE: 0x85,
  NO_READ: 0x86,
  INTERRUPT_RANGE: 0x87,
  FS_AD_NO_SNOOP: 0x90,
  FS_AD_UPDATE_FAILED: 0x91,
} as const;

/** Legacy fault reasons. */
export const LEGACY_FAULT = {
  ROOT_NOT_PRESENT: 0x01,
  CONTEXT_NOT_PRESENT: 0x02,
  CONTEXT_INVALID: 0x03,
  BEYOND_MGAW: 0x04,
  NO_WRITE: 0x05,
  NO_READ: 0x06,
  SS_ENTRY_ACCESS: 0x07,
  ROOT_TABLE_ACCESS: 0x08,
  CONTEXT_TABLE_ACCESS: 0x09,
  ROOT_ENTRY_RESERVED: 0x0a,
  CONTEXT_ENTRY_RESERVED: 0x0b,
  SS_ENTRY_RESERVED: 0x0c,
  TT_BLOCKED: 0x0d,
  INTERRUPT_RANGE: 0x0e,
} as const;

const LEGACY_NAMES = [
  'Software',
  'Present bit in root entry is clear',
  'Present bit in context entry is clear',
  'Invalid context entry',
  'Access beyond MGAW',
  'PTE Write access is not set',
  'PTE Read access is not set',
  'Next page table ptr is invalid',
  'Root table address invalid',
  'Context table ptr is invalid',
  'non-zero reserved fields in RTP',
  'non-zero reserved fields in CTP',
  'non-zero reserved fields in PTE',
  'PCE for translation request specifies blocking',
];

const SM_NAMES: Readonly<Record<number, string>> = {
  0x30: 'SM: Invalid Root Table Address',
  0x31: 'SM: TTM 0 for request with PASID',
  0x32: 'SM: TTM 0 for page group request',
  0x38: 'SM: Error attempting to access Root Entry',
  0x39: 'SM: Present bit in Root Entry is clear',
  0x3a: 'SM: Non-zero reserved field set in Root Entry',
  0x40: 'SM: Error attempting to access Context Entry',
  0x41: 'SM: Present bit in Context Entry is clear',
  0x42: 'SM: Non-zero reserved field set in the Context Entry',
  0x43: 'SM: Invalid Context Entry',
  0x44: 'SM: DTE field in Context Entry is clear',
  0x45: 'SM: PASID Enable field in Context Entry is clear',
  0x46: 'SM: PASID is larger than the max in Context Entry',
  0x47: 'SM: PRE field in Context-Entry is clear',
  0x48: 'SM: RID_PASID field error in Context-Entry',
  0x50: 'SM: Error attempting to access the PASID Directory Entry',
  0x51: 'SM: Present bit in Directory Entry is clear',
  0x52: 'SM: Non-zero reserved field set in PASID Directory Entry',
  0x58: 'SM: Error attempting to access PASID Table Entry',
  0x59: 'SM: Present bit in PASID Table Entry is clear',
  0x5a: 'SM: Non-zero reserved field set in PASID Table Entry',
  0x5b: 'SM: Invalid Scalable-Mode PASID Table Entry',
  0x5c: 'SM: ERE field is clear in PASID Table Entry',
  0x5d: 'SM: SRE field is clear in PASID Table Entry',
  0x70: 'SM: Error attempting to access first-level paging entry',
  0x71: 'SM: Present bit in first-level paging entry is clear',
  0x72: 'SM: Non-zero reserved field set in first-level paging entry',
  0x73: 'SM: Error attempting to access FL-PML4 entry',
  0x74: 'SM: First-level entry address beyond MGAW in Nested translation',
  0x75: 'SM: Read permission error in FL-PML4 entry in Nested translation',
  0x76: 'SM: Read permission error in first-level paging entry in Nested translation',
  0x77: 'SM: Write permission error in first-level paging entry in Nested translation',
  0x78: 'SM: Error attempting to access second-level paging entry',
  0x79: 'SM: Read/Write permission error in second-level paging entry',
  0x7a: 'SM: Non-zero reserved field set in second-level paging entry',
  0x7b: 'SM: Invalid second-level page table pointer',
  0x7c: 'SM: A/D bit update needed in second-level entry when set up in no snoop',
  0x80: 'SM: Address in first-level translation is not canonical',
  0x81: 'SM: U/S set 0 for first-level translation with user privilege',
  0x82: 'SM: No execute permission for request with PASID and ER=1',
  0x83: 'SM: Address beyond the DMA hardware max',
  0x84: 'SM: Second-level entry address beyond the max',
  0x85: 'SM: No write permission for Write/AtomicOp request',
  0x86: 'SM: No read permission for Read/AtomicOp request',
  0x87: 'SM: Invalid address-interrupt address',
  0x90: 'SM: A/D bit update needed in first-level entry when set up in no snoop',
  // Not in Linux's table (it prints "Unknown"); QEMU VTD_FR_FS_BIT_UPDATE_FAILED, spec SFS.10.
  0x91: 'SM: First-stage A/D bit update failed',
};

/** The name Linux prints for a fault reason ("Unknown" for codes it has no text for). */
export function faultReasonName(code: number): string {
  if (code >= 0x30) return SM_NAMES[code] ?? 'Unknown';
  return LEGACY_NAMES[code] ?? 'Unknown';
}

/**
 * The legacy code QEMU (and legacy mode) reports for a scalable-mode reason of the root,
 * context or second-stage walk, given the access; other reasons are unchanged. (QEMU
 * intel_iommu.c keeps the legacy codes for those steps even in scalable mode.)
 */
export function legacyFaultReason(code: number, write: boolean): number {
  switch (code) {
    case SM_FAULT.ROOT_ENTRY_ACCESS:
      return LEGACY_FAULT.ROOT_TABLE_ACCESS;
    case SM_FAULT.ROOT_ENTRY_NOT_PRESENT:
      return LEGACY_FAULT.ROOT_NOT_PRESENT;
    case SM_FAULT.ROOT_ENTRY_RESERVED:
      return LEGACY_FAULT.ROOT_ENTRY_RESERVED;
    case SM_FAULT.CONTEXT_ENTRY_ACCESS:
      return LEGACY_FAULT.CONTEXT_TABLE_ACCESS;
    case SM_FAULT.CONTEXT_ENTRY_NOT_PRESENT:
      return LEGACY_FAULT.CONTEXT_NOT_PRESENT;
    case SM_FAULT.CONTEXT_ENTRY_RESERVED:
      return LEGACY_FAULT.CONTEXT_ENTRY_RESERVED;
    case SM_FAULT.CONTEXT_ENTRY_INVALID:
    case SM_FAULT.SS_INVALID_PTR:
      return LEGACY_FAULT.CONTEXT_INVALID;
    case SM_FAULT.CONTEXT_DTE_CLEAR:
      return LEGACY_FAULT.TT_BLOCKED;
    case SM_FAULT.SS_ENTRY_ACCESS:
      return LEGACY_FAULT.SS_ENTRY_ACCESS;
    case SM_FAULT.SS_ENTRY_PERMISSION:
      return write ? LEGACY_FAULT.NO_WRITE : LEGACY_FAULT.NO_READ;
    case SM_FAULT.SS_ENTRY_RESERVED:
      return LEGACY_FAULT.SS_ENTRY_RESERVED;
    case SM_FAULT.SS_BEYOND_AW:
    case SM_FAULT.BEYOND_HAW:
      return LEGACY_FAULT.BEYOND_MGAW;
    case SM_FAULT.NO_WRITE:
      return LEGACY_FAULT.NO_WRITE;
    case SM_FAULT.NO_READ:
      return LEGACY_FAULT.NO_READ;
    case SM_FAULT.INTERRUPT_RANGE:
      return LEGACY_FAULT.INTERRUPT_RANGE;
    default:
      return code;
  }
}

/** Reasons that FPD cannot suppress (memory-access errors and root-level errors). */
export function faultIsQualified(smCode: number): boolean {
  switch (smCode) {
    case 0x30:
    case 0x31:
    case 0x32:
    case 0x38:
    case 0x39:
    case 0x3a:
    case 0x40:
    case 0x50:
    case 0x58:
      return false;
    default:
      return true;
  }
}

/** The architecture-neutral class of a scalable-mode reason. */
export function faultClass(smCode: number): FaultClass {
  switch (smCode) {
    case 0x30:
    case 0x31:
    case 0x32:
    case 0x39:
    case 0x41:
    case 0x44:
    case 0x45:
    case 0x47:
    case 0x51:
    case 0x59:
      return 'blocked';
    case 0x38:
    case 0x40:
    case 0x50:
    case 0x58:
    case 0x70:
    case 0x73:
    case 0x78:
    case 0x7b:
      return 'external-abort';
    case 0x3a:
    case 0x42:
    case 0x43:
    case 0x46:
    case 0x48:
    case 0x52:
    case 0x5a:
    case 0x5b:
    case 0x72:
    case 0x7a:
      return 'bad-config';
    case 0x71:
    case 0x74:
    case 0x75:
    case 0x76:
    case 0x79:
      return 'translation';
    case 0x80:
    case 0x83:
    case 0x84:
      return 'address-size';
    default:
      return 'permission';
  }
}

/** A decoded fault recording register (FRCD, 128 bits). */
export interface FaultRecord {
  /** F: the record holds a fault. */
  readonly f: boolean;
  /** T1: 1 = read request, 0 = write request. */
  readonly t1: boolean;
  /** AT: address type. */
  readonly at: number;
  /** PV: PASID value. */
  readonly pv: number;
  /** FR: fault reason. */
  readonly fr: number;
  /** PP: PASID present. */
  readonly pp: boolean;
  /** EXE: execute permission requested (bit 94; position from the spec, not in the digest). */
  readonly exe: boolean;
  /** PRIV: privileged-mode requested (bit 93). */
  readonly priv: boolean;
  /** T2 (bit 92). */
  readonly t2: boolean;
  /** SID: source id. */
  readonly sid: number;
  /** FI: faulting page address (bits 63:12). */
  readonly fi: bigint;
}

/** Encodes an FRCD as `[lo, hi]` 64-bit words. */
export function encodeFaultRecord(r: Omit<FaultRecord, 'f'> & { f?: boolean }): [bigint, bigint] {
  const hi =
    BigInt(r.sid & 0xffff) |
    (r.t2 ? 1n << 28n : 0n) |
    (r.priv ? 1n << 29n : 0n) |
    (r.exe ? 1n << 30n : 0n) |
    (r.pp ? 1n << 31n : 0n) |
    (BigInt(r.fr & 0xff) << 32n) |
    (BigInt(r.pv & 0xfffff) << 40n) |
    (BigInt(r.at & 3) << 60n) |
    (r.t1 ? 1n << 62n : 0n) |
    (r.f === false ? 0n : 1n << 63n);
  return [r.fi & ~0xfffn & ((1n << 64n) - 1n), hi];
}

/** Decodes an FRCD from its four dwords (as Linux reads them: dwords at +0/+4, +8, +12). */
export function decodeFaultRecord(dw: ArrayLike<number>): FaultRecord {
  const d2 = dw[2]!;
  const d3 = dw[3]!;
  return {
    fi: (BigInt(dw[1]!) << 32n) | BigInt((dw[0]! & 0xfffff000) >>> 0),
    sid: d2 & 0xffff,
    t2: (d2 & (1 << 28)) !== 0,
    priv: (d2 & (1 << 29)) !== 0,
    exe: (d2 & (1 << 30)) !== 0,
    pp: (d2 & 0x80000000) !== 0,
    fr: d3 & 0xff,
    pv: (d3 >>> 8) & 0xfffff,
    at: (d3 >>> 28) & 3,
    t1: (d3 & 0x40000000) !== 0,
    f: (d3 & 0x80000000) !== 0,
  };
}
