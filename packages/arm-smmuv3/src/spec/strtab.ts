/**
 * Stream table structures: the Level 1 Stream Table Descriptor (IHI0070 §5.1) and the
 * StreamID split of a 2-level table (§3.3.2).
 */

import { getAddr, getField, setAddr, setField, type Field } from './bits.js';

/** Bytes per STE. */
export const STE_SIZE = 64;
/** Bytes per L1STD. */
export const L1STD_SIZE = 8;

/** L1STD.Span [4:0]: 0 invalid, 1..11 ⇒ 2^(Span-1) STEs. */
export const L1STD_SPAN: Field = [0, 0, 5];
/** L1STD.L2Ptr is bits [51:6]. */
export const L1STD_L2PTR_LSB = 6;

/** A decoded L1STD. */
export interface L1Std {
  /** Span (0 = invalid). */
  readonly span: number;
  /** Physical address of the level-2 array of STEs. */
  readonly l2Ptr: number;
}

/** Encodes an L1STD into two 32-bit words. */
export function encodeL1Std(d: L1Std, out: Uint32Array = new Uint32Array(2)): Uint32Array {
  out.fill(0);
  setField(out, L1STD_SPAN, d.span);
  setAddr(out, 0, L1STD_L2PTR_LSB, 51, d.l2Ptr);
  return out;
}

/** Decodes an L1STD from two 32-bit words. */
export function decodeL1Std(w: ArrayLike<number>): L1Std {
  return { span: getField(w, L1STD_SPAN), l2Ptr: getAddr(w, 0, L1STD_L2PTR_LSB, 51) };
}

/** The L1STD as a 64-bit value. */
export function l1StdValue(span: number, l2Ptr: bigint): bigint {
  return (l2Ptr & (((1n << 52n) - 1n) & ~0x3fn)) | BigInt(span & 0x1f);
}
