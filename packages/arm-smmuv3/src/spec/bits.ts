/**
 * Bit-field access on SMMUv3 structures held as little-endian 32-bit words: a 64-bit qword k of
 * an STE, CD, command, event or descriptor is words `2k` (bits 31:0) and `2k+1` (bits 63:32).
 * Fields are named by `[qword, lsb, width]` exactly as the specification numbers them per
 * qword (spec bit N = qword N/64, bit N%64). No BigInt on these paths.
 */

/** A bit field: qword index, least significant bit within the qword, width in bits (≤ 32). */
export type Field = readonly [qword: number, lsb: number, width: number];

const TWO32 = 4294967296;

function mask(width: number): number {
  return width >= 32 ? 0xffffffff : (1 << width) - 1;
}

/** Reads a field of at most 32 bits. */
export function getField(w: ArrayLike<number>, f: Field): number {
  const [q, lsb, width] = f;
  const base = q * 2;
  if (lsb >= 32) return ((w[base + 1]! >>> (lsb - 32)) & mask(width)) >>> 0;
  if (lsb + width <= 32) return ((w[base]! >>> lsb) & mask(width)) >>> 0;
  const lowBits = 32 - lsb;
  const lo = w[base]! >>> lsb;
  const hi = w[base + 1]! & mask(width - lowBits);
  return (lo + hi * 2 ** lowBits) >>> 0;
}

/** Writes a field of at most 32 bits (the value is masked to the field). */
export function setField(w: Uint32Array, f: Field, value: number): void {
  const [q, lsb, width] = f;
  const base = q * 2;
  const v = (value & mask(width)) >>> 0;
  if (lsb >= 32) {
    const s = lsb - 32;
    const m = (mask(width) << s) >>> 0;
    w[base + 1] = ((w[base + 1]! & ~m) | (v << s)) >>> 0;
    return;
  }
  if (lsb + width <= 32) {
    const m = (mask(width) << lsb) >>> 0;
    w[base] = ((w[base]! & ~m) | (v << lsb)) >>> 0;
    return;
  }
  const lowBits = 32 - lsb;
  const loMask = (mask(lowBits) << lsb) >>> 0;
  w[base] = ((w[base]! & ~loMask) | ((v & mask(lowBits)) << lsb)) >>> 0;
  const hiMask = mask(width - lowBits);
  w[base + 1] = ((w[base + 1]! & ~hiMask) | (Math.floor(v / 2 ** lowBits) & hiMask)) >>> 0;
}

/**
 * Reads an address field `[msb:lsb]` of qword `q` as a number, keeping its bit positions
 * (the low `lsb` bits are zero). `lsb` < 32 ≤ `msb` < 64, addresses below 2^53.
 */
export function getAddr(w: ArrayLike<number>, q: number, lsb: number, msb: number): number {
  const base = q * 2;
  const lo = ((w[base]! >>> lsb) << lsb) >>> 0;
  const hi = w[base + 1]! & mask(msb - 31);
  return hi * TWO32 + lo;
}

/** Writes an address field `[msb:lsb]` of qword `q` (bits outside the field are kept). */
export function setAddr(w: Uint32Array, q: number, lsb: number, msb: number, addr: number): void {
  const base = q * 2;
  const loMask = (mask(32 - lsb) << lsb) >>> 0;
  const lo = addr % TWO32;
  w[base] = ((w[base]! & ~loMask) | (lo & loMask)) >>> 0;
  const hiMask = mask(msb - 31);
  w[base + 1] = ((w[base + 1]! & ~hiMask) | (Math.floor(addr / TWO32) & hiMask)) >>> 0;
}

/** Converts 32-bit words to 64-bit qwords. */
export function toQwords(w: ArrayLike<number>): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i + 1 < w.length; i += 2) out.push(BigInt(w[i]! >>> 0) | (BigInt(w[i + 1]! >>> 0) << 32n));
  return out;
}

/** Converts 64-bit qwords to 32-bit words (into `out` when given). */
export function toWords(q: readonly bigint[], out: Uint32Array = new Uint32Array(q.length * 2)): Uint32Array {
  for (let i = 0; i < q.length; i++) {
    const v = BigInt.asUintN(64, q[i]!);
    out[i * 2] = Number(v & 0xffffffffn);
    out[i * 2 + 1] = Number(v >> 32n);
  }
  return out;
}
