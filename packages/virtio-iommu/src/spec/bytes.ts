/**
 * Little-endian field access on request and record buffers. Every multi-byte virtio-iommu
 * field is little-endian (virtio 1.x, "le16/le32/le64"). The 64-bit accessors have a bigint
 * form for readability and a hi/lo number form for paths that must not allocate BigInts.
 */

/** Reads a le16 at `off` (0 when out of bounds). */
export function le16(b: Uint8Array, off: number): number {
  return (b[off] ?? 0) | ((b[off + 1] ?? 0) << 8);
}

/** Reads a le32 at `off` (missing bytes read as 0). */
export function le32(b: Uint8Array, off: number): number {
  return ((b[off] ?? 0) | ((b[off + 1] ?? 0) << 8) | ((b[off + 2] ?? 0) << 16) | ((b[off + 3] ?? 0) << 24)) >>> 0;
}

/** Reads a le64 at `off` as a bigint. */
export function le64(b: Uint8Array, off: number): bigint {
  return BigInt(le32(b, off)) | (BigInt(le32(b, off + 4)) << 32n);
}

/** Writes a le16. */
export function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}

/** Writes a le32. */
export function put32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

/** Writes a le64 from a bigint (taken modulo 2^64). */
export function put64(b: Uint8Array, off: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  put32(b, off, Number(u & 0xffffffffn));
  put32(b, off + 4, Number(u >> 32n));
}

/** Writes a le64 from its high and low 32-bit halves (no BigInt). */
export function put64HiLo(b: Uint8Array, off: number, hi: number, lo: number): void {
  put32(b, off, lo);
  put32(b, off + 4, hi);
}

/** True when every byte of `b[from…to)` is zero (bytes past the end count as zero). */
export function allZero(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if ((b[i] ?? 0) !== 0) return false;
  return true;
}
