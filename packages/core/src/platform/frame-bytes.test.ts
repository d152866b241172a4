import { describe, expect, it } from 'vitest';
import { copyFrameBytes } from './frame-bytes.js';
import { PhysicalMemory } from './physical-memory.js';

describe('copyFrameBytes', () => {
  const mem = new PhysicalMemory({ size: 1n << 24n });
  const bytes = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 5) & 0xff);
  mem.write(0x3000n, bytes);

  it('gives the bytes memory holds (little-endian), aligned or not, for every length up to 16', () => {
    const words = mem.frameWords(3)!;
    for (let at = 0; at < 40; at++) {
      for (let n = 0; n <= 16; n++) {
        const out = new Uint8Array(n + 2).fill(0xee);
        copyFrameBytes(words, at, out, 1, n);
        expect([...out]).toEqual([0xee, ...bytes.subarray(at, at + n), 0xee]);
      }
    }
  });

  it('a frame never written reads as zeros; only the n bytes are written', () => {
    const out = new Uint8Array(6).fill(0xee);
    copyFrameBytes(mem.frameWords(9), 12, out, 1, 4);
    expect([...out]).toEqual([0xee, 0, 0, 0, 0, 0xee]);
  });

  it('reaches the last byte of the frame', () => {
    mem.write(0x3ffcn, Uint8Array.of(1, 2, 3, 4));
    const out = new Uint8Array(4);
    copyFrameBytes(mem.frameWords(3), 4092, out, 0, 4);
    expect([...out]).toEqual([1, 2, 3, 4]);
  });
});
