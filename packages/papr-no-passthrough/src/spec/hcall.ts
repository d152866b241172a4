/**
 * The sPAPR TCE hypercalls and hcall return codes, with the numbers LoPAR gives them
 * (LoPAR ch_lpar_option.xml "Translation Control Entry Access"; Linux
 * arch/powerpc/include/asm/hvcall.h spells the same values).
 */

/** `H_GET_TCE` (LIOBN, IOBA) → R4 = the TCE. */
export const H_GET_TCE = 0x1c;
/** `H_PUT_TCE` (LIOBN, IOBA, TCE). */
export const H_PUT_TCE = 0x20;
/** `H_STUFF_TCE` (LIOBN, IOBA, TCE value, count): the same TCE into `count` entries. */
export const H_STUFF_TCE = 0x138;
/** `H_PUT_TCE_INDIRECT` (LIOBN, IOBA, address of a 4 KiB page of TCEs, count). */
export const H_PUT_TCE_INDIRECT = 0x13c;

/** The largest `count` of H_PUT_TCE_INDIRECT and H_STUFF_TCE: one 4 KiB page of 8-byte TCEs. */
export const TCE_LIST_MAX = 512;
/** H_PUT_TCE_INDIRECT's TCE list must be 4 KiB aligned. */
export const TCE_LIST_ALIGN = 4096;

/** The hcall completed. */
export const H_SUCCESS = 0;
/** Resource busy, retry. */
export const H_BUSY = 1;
/** Part of the request was done (H_GET_TCE: the RPN is outside the caller's logical space). */
export const H_PARTIAL = 5;
/** A hardware error. */
export const H_HARDWARE = -1;
/** The function is not supported. */
export const H_FUNCTION = -2;
/** The caller lacks the privilege. */
export const H_PRIVILEGE = -3;
/** A parameter is invalid (LIOBN, IOBA, TCE, count, list address …). */
export const H_PARAMETER = -4;
/** Not found. */
export const H_NOT_FOUND = -7;
/** Not enough memory. */
export const H_NO_MEM = -9;
/** Not authorized. */
export const H_AUTHORITY = -10;
/** Permission denied. */
export const H_PERMISSION = -11;
/** Resource not available. */
export const H_RESOURCE = -16;
/** The resource was rescinded. */
export const H_RESCINDED = -46;
/** Parameter 2 is invalid. */
export const H_P2 = -55;
/** Parameter 3 is invalid. */
export const H_P3 = -56;
/** Parameter 4 is invalid (H_STUFF_TCE: count above 512). */
export const H_P4 = -57;

const RETURN_NAMES: Readonly<Record<number, string>> = {
  [H_SUCCESS]: 'H_SUCCESS',
  [H_BUSY]: 'H_BUSY',
  [H_PARTIAL]: 'H_PARTIAL',
  [H_HARDWARE]: 'H_HARDWARE',
  [H_FUNCTION]: 'H_FUNCTION',
  [H_PRIVILEGE]: 'H_PRIVILEGE',
  [H_PARAMETER]: 'H_PARAMETER',
  [H_NOT_FOUND]: 'H_NOT_FOUND',
  [H_NO_MEM]: 'H_NO_MEM',
  [H_AUTHORITY]: 'H_AUTHORITY',
  [H_PERMISSION]: 'H_PERMISSION',
  [H_RESOURCE]: 'H_RESOURCE',
  [H_RESCINDED]: 'H_RESCINDED',
  [H_P2]: 'H_P2',
  [H_P3]: 'H_P3',
  [H_P4]: 'H_P4',
};

/** The name of an hcall return code (`'H_PARAMETER'`), or `'H_<n>'` for an unknown one. */
export function hcallReturnName(ret: number): string {
  return RETURN_NAMES[ret] ?? `H_${ret}`;
}

/** The return code as the 64-bit register value R3 holds (−4 → 0xfffffffffffffffc). */
export function hcallReturnRegister(ret: number): bigint {
  return BigInt.asUintN(64, BigInt(ret));
}

/** What an hcall returns: R3 (`ret`, signed) and R4… (`values`, unsigned 64-bit). */
export interface HcallResult {
  /** The return code (H_SUCCESS, H_PARAMETER …). */
  readonly ret: number;
  /** The output registers R4… (H_GET_TCE: the TCE). */
  readonly values: readonly bigint[];
}
