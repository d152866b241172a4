import { describe, expect, it } from 'vitest';
import { PhysicalMemory } from '@ioasid/core';
import { IOMMU_READ, IOMMU_WRITE, isIoasidError } from '@ioasid/uapi';
import { IoPgtable } from './io-pgtable.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const GiB = 2 ** 30;
const MiB2 = 2 ** 21;

function table(stage: 1 | 2 = 1) {
  const memory = new PhysicalMemory({ size: 1n << 36n });
  const pt = new IoPgtable(memory, { stage, ias: 48, oas: 48, dirty: false });
  /** The descriptor at `level` for `va` as [lo, hi], following table descriptors from the root. */
  const entry = (va: number, level: number): [number, number] => {
    let t = pt.root;
    for (let l = 0; ; l++) {
      const slot = t + (Math.floor(va / 2 ** (12 + 9 * (3 - l))) % 512) * 8;
      const lo = memory.read32At(slot);
      const hi = memory.read32At(slot + 4);
      if (l === level) return [lo, hi];
      if ((lo & 3) !== 3) throw new Error(`no table at level ${l}`);
      t = (hi & 0xffff) * 2 ** 32 + ((lo & 0xfffff000) >>> 0);
    }
  };
  const run = (first: number, n: number) => Uint32Array.from({ length: n }, (_, i) => first + i);
  return { memory, pt, entry, run };
}

// Stage-1 attributes of a RW mapping: AttrIndx 1 [4:2] | AP[1] [6] | SH 3 [9:8] | AF [10] | nG [11].
const S1_RW = (1 << 2) | (1 << 6) | (3 << 8) | (1 << 10) | (1 << 11);

describe('IoPgtable (io-pgtable-arm, 4 KiB granule)', () => {
  it('2 MiB of contiguous, aligned frames at a 2 MiB IOVA is one level-2 block (no level-3 table)', () => {
    const { pt, entry, run } = table();
    pt.map(BigInt(4 * GiB + MiB2), run(0x40000, 512), 512, RW); // frames 0x40000.. = PA 0x4000_0000
    // Block: PA | 0b01 | attributes.
    expect(entry(4 * GiB + MiB2, 2)).toEqual([(0x40000000 | 1 | S1_RW) >>> 0, 0]);
    expect(pt.frames).toBe(3); // root, level 1, level 2
  });

  it('1 GiB of contiguous, aligned frames at a 1 GiB IOVA is one level-1 block', () => {
    const { pt, entry, run } = table();
    pt.map(BigInt(5 * GiB), run(0x100000, 262144), 262144, RW); // PA 0x1_0000_0000
    // Block at level 1: OA[47:30] = 4 → hi word 1, lo word attributes only.
    expect(entry(5 * GiB, 1)).toEqual([(1 | S1_RW) >>> 0, 1]);
    expect(pt.frames).toBe(2);
  });

  it('frames that are not aligned to 2 MiB make pages; a stage-2 page carries S2AP and MemAttr', () => {
    const { pt, entry, run } = table(2);
    pt.map(0x200000n, run(0x40001, 512), 512, IOMMU_READ);
    // Page: PA | 0b11 | MemAttr 0xF [5:2] | S2AP read [6] | SH 3 | AF.
    expect(entry(0x200000, 3)).toEqual([(0x40001000 | 3 | (0xf << 2) | (1 << 6) | (3 << 8) | (1 << 10)) >>> 0, 0]);
    expect(entry(0x200000 + 511 * 4096, 3)[0]).toBe((0x40200000 | 3 | (0xf << 2) | (1 << 6) | (3 << 8) | (1 << 10)) >>> 0);
    expect(pt.frames).toBe(4);
  });

  it('a leaf table left by an unmap where a block would go: the block is mapped as pages inside it', () => {
    const { pt, entry, run } = table();
    pt.map(0x200000n, run(0x40000, 1), 1, RW);
    expect(pt.unmap(0x200000n, 0x1000n)).toEqual({ unmapped: 0x1000, tablesFreed: false });
    pt.map(0x200000n, run(0x40000, 512), 512, RW);
    expect(entry(0x200000, 2)[0] & 3).toBe(3); // still a table
    expect(entry(0x200000 + 7 * 4096, 3)).toEqual([(0x40007000 | 3 | S1_RW) >>> 0, 0]);
    // Unmapping the whole 2 MiB frees the leaf table.
    expect(pt.unmap(0x200000n, 0x200000n)).toEqual({ unmapped: 0x200000, tablesFreed: true });
    expect(pt.frames).toBe(3);
  });

  it('EEXIST part way through clears what the map wrote and frees the tables it allocated', () => {
    const { memory, pt, entry, run } = table();
    pt.map(0x7000_0000_5000n, run(0x900, 1), 1, RW);
    const frames = pt.frames;
    const inUse = memory.framesInUse;
    let err: unknown;
    try {
      pt.map(0x7000_0000_0000n, run(0x800, 10), 10, RW);
    } catch (e) {
      err = e;
    }
    expect(isIoasidError(err, 'EEXIST')).toBe(true);
    for (let i = 0; i < 5; i++) expect(entry(0x7000_0000_0000 + i * 4096, 3)).toEqual([0, 0]);
    expect(entry(0x7000_0000_5000, 3)).toEqual([(0x900000 | 3 | S1_RW) >>> 0, 0]);
    expect([pt.frames, memory.framesInUse]).toEqual([frames, inUse]);
    // A map across a 2 MiB boundary into fresh tables: level 1, level 2 and the first leaf table
    // are allocated and two pages written before the second leaf table's allocation fails.
    memory.failNth.arm(4);
    let enomem: unknown;
    try {
      pt.map(0x10_001f_e000n, run(0x800, 3), 3, RW);
    } catch (e) {
      enomem = e;
    }
    expect(isIoasidError(enomem, 'ENOMEM')).toBe(true);
    expect(memory.failNth.hasFired).toBe(true);
    expect([pt.frames, memory.framesInUse]).toEqual([frames, inUse]);
    expect(entry(0, 0)).toEqual([0, 0]); // the level-0 slot is empty again
  });
});
