/**
 * Register and descriptor bit fields, described as `[lowBit, width]` pairs, with a reader and a
 * builder. Used for CAP/ECAP and the 64-bit command registers (never on a DMA hot path).
 */

/** A bit field: its lowest bit and its width in bits. */
export type BitField = readonly [lo: number, width: number];

/** Reads a field of a 64-bit register value. */
export function getField(value: bigint, field: BitField): number {
  const [lo, width] = field;
  return Number((value >> BigInt(lo)) & ((1n << BigInt(width)) - 1n));
}

/** Returns `value` with `field` replaced by `v` (masked to the field width). */
export function setField(value: bigint, field: BitField, v: number | bigint): bigint {
  const [lo, width] = field;
  const mask = ((1n << BigInt(width)) - 1n) << BigInt(lo);
  return (value & ~mask) | ((BigInt(v) << BigInt(lo)) & mask);
}

/** Builds a register value from named fields of a layout. */
export function encodeFields<L extends Record<string, BitField>>(
  layout: L,
  values: Partial<Record<keyof L, number | bigint | boolean>>,
): bigint {
  let out = 0n;
  for (const key of Object.keys(values) as (keyof L)[]) {
    const v = values[key];
    if (v === undefined) continue;
    out = setField(out, layout[key]!, typeof v === 'boolean' ? (v ? 1 : 0) : v);
  }
  return out;
}

/** Decodes every named field of a layout from a register value. */
export function decodeFields<L extends Record<string, BitField>>(layout: L, value: bigint): Record<keyof L, number> {
  const out = {} as Record<keyof L, number>;
  for (const key of Object.keys(layout) as (keyof L)[]) out[key] = getField(value, layout[key]!);
  return out;
}

/** 2^32, for composing numbers from 32-bit halves. */
export const TWO32 = 4294967296;

/**
 * The address in bits 51:12 of a 64-bit entry given as two 32-bit halves (exact as a number).
 * Bits above 51 must be checked separately (reserved or ignored depending on the entry).
 */
export function entryAddress(lo: number, hi: number): number {
  return (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
}

/** True when any of the bits `haw..51` of the address held in the high half is set. */
export function addressBeyond(hi: number, haw: number): boolean {
  // hi carries bits 63:32; bits haw..51 are hi bits (haw-32)..19.
  const mask = ((0xfffff >>> (haw - 32)) << (haw - 32)) >>> 0;
  return (hi & mask) !== 0;
}

/** Splits a non-negative number below 2^64 into `[lo, hi]` 32-bit halves. */
export function splitNumber(v: number): [number, number] {
  const hi = Math.floor(v / TWO32);
  return [(v - hi * TWO32) >>> 0, hi >>> 0];
}
