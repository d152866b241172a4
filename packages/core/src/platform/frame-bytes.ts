/**
 * Bytes out of a frame's 32-bit words (`PhysicalMemory.frameWords`): the small-read path every
 * hardware model takes for a DMA inside one frame, in one place. Memory is little-endian; the
 * words are host-endian views, so a big-endian host swaps.
 */

const HOST_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** XOR for a byte's index within its word on this host (0 little-endian, 3 big-endian). */
const SWAP = HOST_LE ? 0 : 3;

/**
 * Copies `n` bytes starting at byte `at` of a frame into `out[off …)`. `words` is the frame's
 * `frameWords` (undefined: never written, reads as zeros); `at + n` must be ≤ 4096. Aligned
 * word runs take one load per 4 bytes.
 */
export function copyFrameBytes(words: Uint32Array | undefined, at: number, out: Uint8Array, off: number, n: number): void {
  if (words === undefined) {
    for (let k = 0; k < n; k++) out[off + k] = 0; // a loop: fill() costs more than a small read
    return;
  }
  if (SWAP === 0 && (at & 3) === 0 && (n & 3) === 0) {
    for (let k = 0, i = at >>> 2; k < n; k += 4, i++) {
      const w = words[i]!;
      out[off + k] = w;
      out[off + k + 1] = w >>> 8;
      out[off + k + 2] = w >>> 16;
      out[off + k + 3] = w >>> 24;
    }
    return;
  }
  for (let k = 0; k < n; k++) {
    const b = at + k;
    out[off + k] = words[b >>> 2]! >>> (((b & 3) ^ SWAP) << 3);
  }
}
