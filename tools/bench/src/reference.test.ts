import { describe, expect, it } from 'vitest';
import { ReferenceWalker } from './reference.js';

describe('the reference walker', () => {
  it('walks 4 levels of 9 bits and finds the frame of a mapped page', () => {
    const w = new ReferenceWalker(16);
    // IOVA 0x0000_1234_5678_9000: vpn = 0x123456789; hi = 0x1234, lo = 0x56789000
    w.map(0x123456789, 0xabcde);
    expect(w.walk(0x1234, 0x56789000)).toBe(0xabcde);
    expect(w.walk(0x1234, 0x5678a000)).toBe(-1); // the next page is not mapped
    expect(w.walk(0, 0x1000)).toBe(-1);
  });
  it('the IOTLB returns what the walk returned', () => {
    const w = new ReferenceWalker(16, 8);
    w.map(0x100000, 7);
    expect(w.translate(1, 0)).toBe(7); // vpn 0x100000 = IOVA 0x1_0000_0000
    expect(w.translate(1, 0)).toBe(7);
    expect(w.translate(1, 0x1000)).toBe(-1);
  });
  it('read copies the bytes of the translated frame into the caller\'s buffer', () => {
    const w = new ReferenceWalker(16, 8);
    w.map(0x100000, 3); // IOVA 0x1_0000_0000 → frame 3
    const memory = new Uint8Array(4 * 4096);
    memory.set([1, 2, 3, 4, 5], 3 * 4096 + 0x10);
    const out = new Uint8Array(4);
    expect(w.read(1, 0x10, memory, out, 4)).toBe(true);
    expect(out).toEqual(Uint8Array.of(1, 2, 3, 4));
    expect(w.read(1, 0x1010, memory, out, 4)).toBe(false); // not mapped
  });
});
