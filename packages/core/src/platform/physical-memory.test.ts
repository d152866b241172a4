import { describe, expect, it } from 'vitest';
import { isIoasidError } from '@ioasid/uapi';
import { PhysicalMemory } from './physical-memory.js';

describe('contract: PhysicalMemory (size, zero fill, little-endian, copies, EFAULT)', () => {
  it('size is in bytes and defaults to 2^40', () => {
    expect(new PhysicalMemory().size).toBe(1n << 40n);
    expect(new PhysicalMemory({ size: 1n << 20n }).size).toBe(0x100000n);
  });
  it('never-written memory reads as zero anywhere below size, without allocating', () => {
    const m = new PhysicalMemory({ size: 1n << 30n });
    expect(m.read32((1n << 30n) - 4n)).toBe(0);
    expect(m.read64(0x12340n)).toBe(0n);
    expect(m.read(0x3ffffff0n, 16)).toEqual(new Uint8Array(16));
    expect(m.framesInUse).toBe(0);
  });
  it('32- and 64-bit accessors are little-endian', () => {
    const m = new PhysicalMemory({ size: 1n << 20n });
    m.write64(0x1000n, 0x0807060504030201n);
    expect([...m.read(0x1000n, 8)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(m.read32(0x1000n)).toBe(0x04030201);
    expect(m.read32(0x1004n)).toBe(0x08070605);
    m.write32(0x2001n, 0xaabbccdd); // unaligned, crossing no page
    expect([...m.read(0x2001n, 4)]).toEqual([0xdd, 0xcc, 0xbb, 0xaa]);
    m.write64(0x2ffcn, 0xffeeddccbbaa9988n); // straddles a 4 KiB frame boundary
    expect(m.read64(0x2ffcn)).toBe(0xffeeddccbbaa9988n);
  });
  it('number-address accessors are exact above 4 GiB (no aliasing of the low 32 bits)', () => {
    const m = new PhysicalMemory({ size: 1n << 40n });
    m.write32At(0x1_2345_6788, 0xcafef00d);
    expect(m.read32(0x1_2345_6788n)).toBe(0xcafef00d);
    expect(m.read32At(0x2345_6788)).toBe(0); // the same low 32 bits, another frame
    expect(m.read32At(0x2_2345_6788)).toBe(0);
    m.write32At(0xff_ffff_fffc, 7);
    expect(m.read64(0xff_ffff_fff8n)).toBe(7n << 32n);
    expect(m.frameWords(0xff_ffff_f000 / 4096)?.[1023]).toBe(7);
  });
  it('read returns a copy, never a view', () => {
    const m = new PhysicalMemory({ size: 1n << 20n });
    m.write(0x100n, Uint8Array.of(9, 9));
    const a = m.read(0x100n, 2);
    a[0] = 1;
    expect(m.read(0x100n, 2)).toEqual(Uint8Array.of(9, 9));
  });
  it('an access at or beyond size throws EFAULT', () => {
    const m = new PhysicalMemory({ size: 1n << 20n });
    for (const f of [
      () => m.read32(1n << 20n),
      () => m.read64((1n << 20n) - 4n),
      () => {
        m.write(0xffffen, Uint8Array.of(1, 2, 3));
      },
      () => m.read32At(2 ** 20),
    ]) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(isIoasidError(err, 'EFAULT')).toBe(true);
    }
  });
  it('frames are allocated zeroed, counted, and zeroed again after free', () => {
    const m = new PhysicalMemory({ size: 1n << 24n });
    const pfn = m.allocFrame();
    expect(pfn).toBeGreaterThan(0);
    expect(m.framesInUse).toBe(1);
    m.write32(BigInt(pfn) * 4096n, 0xdead);
    m.freeFrames(pfn);
    expect(m.framesInUse).toBe(0);
    const again = m.allocFrame();
    expect(again).toBe(pfn);
    expect(m.read32(BigInt(again) * 4096n)).toBe(0);
    const run = m.allocFrames(512, 512);
    expect(run % 512).toBe(0);
    expect(m.framesInUse).toBe(513);
  });
  it('the fail_nth injector fails exactly the n-th allocation with ENOMEM', () => {
    const m = new PhysicalMemory({ size: 1n << 24n });
    m.failNth.arm(2);
    m.allocFrame();
    expect(() => m.allocFrame()).toThrow(/ENOMEM/);
    expect(m.framesInUse).toBe(1);
    m.allocFrame();
    expect(m.framesInUse).toBe(2);
  });
  it('contract: any address below size can be written without allocating it first, and reads back', () => {
    const m = new PhysicalMemory({ size: 1n << 32n });
    m.write64((1n << 32n) - 8n, (0xdeadn << 48n) | 0xbeefn);
    expect(m.read64((1n << 32n) - 8n)).toBe((0xdeadn << 48n) | 0xbeefn);
    m.write(0x7fff_fffen, Uint8Array.of(1, 2, 3, 4)); // across a frame boundary
    expect(m.read32(0x7fff_fffen)).toBe(0x04030201);
    expect(m.framesInUse).toBe(0); // the allocator's accounting is untouched
  });
  it('contract: an access that starts below size but runs past it is EFAULT, and writes nothing', () => {
    const m = new PhysicalMemory({ size: 1n << 20n });
    let err: unknown;
    try {
      m.write((1n << 20n) - 2n, Uint8Array.of(1, 2, 3, 4));
    } catch (e) {
      err = e;
    }
    expect(isIoasidError(err, 'EFAULT')).toBe(true);
    expect(m.read((1n << 20n) - 2n, 2)).toEqual(new Uint8Array(2));
    expect(m.contains(2 ** 20 - 4, 4)).toBe(true);
    expect(m.contains(2 ** 20 - 4, 5)).toBe(false);
    expect(m.contains(-1, 1)).toBe(false);
    expect(() => m.read(-1n, 1)).toThrow(/EFAULT/);
  });
  it('contract: the number accessors agree with the bigint ones (little-endian halves of a 64-bit entry)', () => {
    const m = new PhysicalMemory({ size: 1n << 20n });
    const entry = (1n << 63n) | (0x1234n << 12n) | 3n;
    m.write64(0x3000n, entry);
    expect(m.read32At(0x3000)).toBe(Number(entry & 0xffffffffn)); // 0x01234003
    expect(m.read32At(0x3004)).toBe(0x80000000);
    m.write32At(0x3008, 0xcafef00d);
    expect(m.read64(0x3008n)).toBe(0xcafef00dn);
    const out = new Uint8Array(6);
    m.readInto(0x3000, out, 1, 4);
    expect([...out]).toEqual([0, 0x03, 0x40, 0x23, 0x01, 0]);
  });
  it('an exhausted allocator is ENOMEM and counts nothing', () => {
    const m = new PhysicalMemory({ size: 4n * 4096n });
    m.allocFrames(2); // frames 1-2 (frame 0 is never handed out)
    m.allocFrame();
    expect(() => m.allocFrame()).toThrow(/ENOMEM/);
    expect(() => m.allocFrames(2)).toThrow(/ENOMEM/);
    expect(m.framesInUse).toBe(3);
  });
  it('rejects sizes that are not a positive multiple of 4 KiB', () => {
    expect(() => new PhysicalMemory({ size: 100n })).toThrow(/EINVAL/);
  });
});
