import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '@ioasid/uapi';
import { DEV_A, buffer, dmaRead, expectErrno, pattern, world } from '../test/harness.js';
import { MOCK_CPU } from '../test/mock-backend.js';
import { PhysicalMemory } from './physical-memory.js';
import { Process } from './process.js';

const P = PAGE_SIZE;

function proc(limit?: bigint) {
  const memory = new PhysicalMemory({ size: 1n << 30n });
  const p = new Process(memory, MOCK_CPU, limit === undefined ? {} : { lockedMemoryLimit: limit });
  return { memory, p };
}

describe('contract: processes', () => {
  it('contract: createProcess has no locked-memory limit unless one is given', () => {
    const w = world();
    expect(w.system.createProcess().lockedMemoryLimit).toBeUndefined();
    expect(w.system.createProcess({ lockedMemoryLimit: 8192n }).lockedMemoryLimit).toBe(8192n);
  });

  it('contract: mmap returns a non-zero page-aligned address of zeroed memory that read/write reach', () => {
    const { p } = proc();
    const a = p.mmap(3n * P);
    expect(a).not.toBe(0n);
    expect(a % P).toBe(0n);
    expect(p.read(a, 16)).toEqual(new Uint8Array(16));
    p.write(a + P - 2n, Uint8Array.of(1, 2, 3, 4)); // across a page boundary
    expect(p.read(a + P - 2n, 4)).toEqual(Uint8Array.of(1, 2, 3, 4));
    // a length that is not a page multiple is rounded up
    const b = p.mmap(10n);
    p.write(b + P - 1n, Uint8Array.of(7));
    expectErrno(() => p.read(b + P, 1), 'EFAULT');
  });

  it('contract: munmap unmaps any page-aligned part of earlier mmaps, as POSIX munmap does', () => {
    const { p } = proc();
    const a = p.mmap(4n * P);
    p.write(a, new Uint8Array(4 * 4096).fill(9));
    p.munmap(a + P, P); // a hole in the middle
    expect(p.read(a, 4)).toEqual(new Uint8Array(4).fill(9));
    expectErrno(() => p.read(a + P, 1), 'EFAULT');
    expect(p.read(a + 2n * P, 4)).toEqual(new Uint8Array(4).fill(9));
    // a write that would touch the hole writes nothing at all
    expectErrno(() => { p.write(a + P - 2n, Uint8Array.of(1, 2, 3, 4)); }, 'EFAULT');
    expect(p.read(a + P - 2n, 2)).toEqual(Uint8Array.of(9, 9));
    // across two mmaps and the hole between them; pages not mapped are ignored
    const b = p.mmap(2n * P);
    p.munmap(a, b + 2n * P - a);
    expectErrno(() => p.read(a, 1), 'EFAULT');
    expectErrno(() => p.read(b + P, 1), 'EFAULT');
    p.munmap(a, P); // already unmapped: fine
    expectErrno(() => { p.munmap(a + 1n, P); }, 'EINVAL', 'vaddr');
    expectErrno(() => { p.munmap(a, 0n); }, 'EINVAL', 'length');
  });

  it('contract: unmapped memory goes back to the frame allocator', () => {
    const { memory, p } = proc();
    const before = memory.framesInUse;
    const a = p.mmap(8n * P);
    expect(memory.framesInUse).toBe(before + 8);
    p.munmap(a, 4n * P);
    p.munmap(a + 4n * P, 4n * P);
    expect(memory.framesInUse).toBe(before);
  });

  it('contract: pinCount(vaddr) is the pin count of that page; pinCount() the number of pinned pages', () => {
    const { p } = proc();
    const a = p.mmap(4n * P);
    const out = new Uint32Array(8);
    p.pin(a, 2, true, out, 0);
    p.pin(a + P, 3, false, out, 2);
    expect([0n, 1n, 2n, 3n].map((i) => p.pinCount(a + i * P))).toEqual([1, 2, 1, 1]);
    expect(p.pinCount()).toBe(4);
    expect(out[1]).toBe(out[2]); // the same page, the same frame
    p.unpin(out, 0, 2);
    expect([0n, 1n, 2n, 3n].map((i) => p.pinCount(a + i * P))).toEqual([0, 1, 1, 1]);
    expect(p.pinCount()).toBe(3);
    expect(p.pinCount(a + 100n * P)).toBe(0);
  });

  it('contract: pinning beyond the locked-memory limit is ENOMEM and pins nothing', () => {
    const { p } = proc(3n * P);
    const a = p.mmap(4n * P);
    const out = new Uint32Array(4);
    p.pin(a, 2, true, out, 0);
    expectErrno(() => { p.pin(a + P, 3, true, out, 0); }, 'ENOMEM'); // 1 already pinned + 2 new = 3 … + page 3 = 4 > 3
    expect([0n, 1n, 2n, 3n].map((i) => p.pinCount(a + i * P))).toEqual([1, 1, 0, 0]);
    expect(p.pinCount()).toBe(2);
    // pages already pinned do not count again: exactly up to the limit works
    p.pin(a, 3, true, out, 0);
    expect(p.pinCount()).toBe(3);
  });

  it('contract: the locked-memory limit makes MAP_DMA fail with ENOMEM, pinning nothing', () => {
    const w = world([DEV_A], {}, 4n * P);
    const buf = buffer(w.proc, 8);
    const ioas = w.ctx.allocIoas();
    w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: 3n * P });
    expectErrno(() => w.ctx.mapDma(ioas, { iova: 0x20000n, vaddr: buf + 2n * P, length: 3n * P }), 'ENOMEM');
    expect(w.proc.pinCount()).toBe(3);
    expect(w.ctx.mapDma(ioas, { iova: 0x20000n, vaddr: buf + 2n * P, length: 2n * P })).toBe(0x20000n); // page 2 is pinned already
  });

  it('contract: pinning an unmapped or (for writes) read-only page is EFAULT and pins nothing', () => {
    const { p } = proc();
    const a = p.mmap(2n * P);
    const ro = p.mmap(P, { write: false });
    const out = new Uint32Array(4);
    expectErrno(() => { p.pin(a, 4, false, out, 0); }, 'EFAULT');
    expectErrno(() => { p.pin(ro, 1, true, out, 0); }, 'EFAULT');
    p.pin(ro, 1, false, out, 0);
    expect(p.pinCount()).toBe(1);
    expectErrno(() => { p.write(ro, Uint8Array.of(1)); }, 'EFAULT');
  });

  it('contract: munmap of a pinned page keeps its frame alive for the holder until unpin', () => {
    const w = world();
    const buf = buffer(w.proc, 4, 21);
    const ioas = w.ctx.allocIoas();
    w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: 4n * P });
    w.ctx.attach(w.ctx.bindDevice(DEV_A), ioas);
    const frames = w.system.memory.framesInUse;
    w.proc.munmap(buf, 4n * P);
    expectErrno(() => w.proc.read(buf, 1), 'EFAULT');
    // the device still reads what the process wrote: the frames are alive and not reused
    expect(dmaRead(w, DEV_A, 0x12000n, 4)).toEqual(pattern(21, 2 * 4096, 4));
    expect(w.system.memory.framesInUse).toBe(frames);
    const other = w.proc.mmap(4n * P);
    expect(w.proc.read(other, 4)).toEqual(new Uint8Array(4));
    expect(dmaRead(w, DEV_A, 0x12000n, 4)).toEqual(pattern(21, 2 * 4096, 4));
    // unpinned (unmapped from the IOAS) the four frames go back (and the mock's emptied table)
    w.ctx.unmapDma(ioas, { iova: 0x10000n, length: 4n * P });
    expect(w.system.memory.framesInUse).toBe(frames + 4 /* other */ - 4 /* buf */ - 1 /* table */);
  });

  it('platform: the CPU page table is built all or nothing, and so is an mmap into it (ENOMEM leaves nothing behind)', () => {
    const { memory, p } = proc();
    p.mmap(4n * P);
    const before = memory.framesInUse;
    // the table needs a root and three lower levels: fail each of the four allocations
    for (let n = 1; n <= 4; n++) {
      memory.failNth.arm(n);
      expectErrno(() => p.pageTableRoot, 'ENOMEM');
      expect(memory.framesInUse).toBe(before);
    }
    memory.failNth.disarm();
    expect(p.pageTableRoot).toBeGreaterThan(0n);
    const withTable = memory.framesInUse;
    expect(withTable).toBe(before + 4);
    // an mmap far away needs new lower-level tables: fail them, and nothing is mapped or allocated
    for (let n = 1; n <= 3; n++) {
      memory.failNth.arm(n);
      const e = expectErrno(() => p.mmap(1n << 31n), 'ENOMEM');
      expect(e.errno).toBe('ENOMEM');
      expect(memory.framesInUse).toBeGreaterThanOrEqual(withTable);
      expect(p['vmas']).toHaveLength(1);
    }
    memory.failNth.disarm();
  });

  it('platform: SVA — the CPU page table follows mmap and munmap (present bit, writable bit, address)', () => {
    const { memory, p } = proc();
    const a = p.mmap(2n * P);
    const ro = p.mmap(P, { write: false });
    const walk = (va: bigint): bigint => {
      let table = p.pageTableRoot;
      for (let level = 3; level > 0; level--) {
        const e = memory.read64(table + ((va >> BigInt(12 + 9 * level)) & 511n) * 8n);
        if ((e & 1n) === 0n) return 0n;
        table = e & 0x000ffffffffff000n;
      }
      return memory.read64(table + ((va >> 12n) & 511n) * 8n);
    };
    p.write(a + P, Uint8Array.of(0x5a));
    const leaf = walk(a + P);
    expect(leaf & 3n).toBe(3n); // present | writable
    expect(memory.read(leaf & 0x000ffffffffff000n, 1)).toEqual(Uint8Array.of(0x5a));
    expect(walk(ro) & 3n).toBe(1n); // present, read-only
    p.munmap(a + P, P);
    expect(walk(a + P)).toBe(0n);
    const b = p.mmap(P);
    expect(walk(b) & 1n).toBe(1n);
  });
});
