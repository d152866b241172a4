import { describe, expect, it } from 'vitest';
import { PAGE_SIZE, U64_MAX } from '@ioasid/uapi';
import { DEV_A, buffer, dmaFault, dmaRead, expectErrno, expectNoChange, pattern, world, type World } from '../test/harness.js';

const P = PAGE_SIZE;
const MSI_START = 0xfee00000n; // the mock's x86 MSI window [0xfee00000, 0xfeefffff]
const MSI_LAST = 0xfeefffffn;
const APERTURE_LAST = (1n << 48n) - 1n; // the mock's aperture [0, 2^48-1]

/** A world with a 16-page buffer (pattern seed 1), an IOAS and DEV_A attached to it. */
function attached(): World & { buf: bigint; ioas: number; dev: number } {
  const w = world();
  const buf = buffer(w.proc, 16, 1);
  const ioas = w.ctx.allocIoas();
  const dev = w.ctx.bindDevice(DEV_A);
  w.ctx.attach(dev, ioas);
  return { ...w, buf, ioas, dev };
}

const lowestSetBit = (v: bigint) => v & -v;

describe('§2.4 IOMMU_IOAS_MAP', () => {
  it('§2.4 MAP: a fixed IOVA maps exactly there; the device reads the bytes the process wrote', () => {
    const w = attached();
    expect(w.ctx.mapDma(w.ioas, { iova: 0x200000n, vaddr: w.buf, length: 16n * P })).toBe(0x200000n);
    expect(dmaRead(w, DEV_A, 0x200000n, 16)).toEqual(pattern(1, 0, 16));
    expect(dmaRead(w, DEV_A, 0x200000n + 5n * P + 7n, 9)).toEqual(pattern(1, 5 * 4096 + 7, 9));
    // a read that crosses a page boundary inside the area
    expect(dmaRead(w, DEV_A, 0x200000n + P - 2n, 4)).toEqual(pattern(1, 4094, 4));
    // just below and just past the area: nothing there
    expect(dmaFault(w, DEV_A, 0x200000n - 4n)).toBe('translation');
    expect(dmaFault(w, DEV_A, 0x200000n + 16n * P)).toBe('translation');
  });

  it('§2.4 MAP: device writes land in the process memory', () => {
    const w = attached();
    w.ctx.mapDma(w.ioas, { iova: 0x10000n, vaddr: w.buf, length: 2n * P });
    const r = w.system.device(DEV_A).dma({ iova: 0x10ffen, size: 0, write: true, data: Uint8Array.of(0xaa, 0xbb, 0xcc, 0xdd) });
    expect(r.ok).toBe(true);
    expect(w.proc.read(w.buf + 0xffen, 4)).toEqual(Uint8Array.of(0xaa, 0xbb, 0xcc, 0xdd));
  });

  it('§2.4 MAP: without FIXED the kernel picks the IOVA — never 0, from PAGE_SIZE up, aligned to min(next power of two ≥ length, lowest set bit of vaddr)', () => {
    const w = attached();
    const length = 0x10000n;
    const align = lowestSetBit(w.buf) < length ? lowestSetBit(w.buf) : length; // next pow2 ≥ 0x10000 is 0x10000
    const first = w.ctx.mapDma(w.ioas, { vaddr: w.buf, length });
    // the lowest address ≥ PAGE_SIZE aligned to `align` (the IOAS is empty)
    expect(first).toBe(((P + align - 1n) / align) * align);
    expect(first).not.toBe(0n);
    const second = w.ctx.mapDma(w.ioas, { vaddr: w.buf, length });
    expect(second).toBe(first + length);
    // a vaddr whose lowest set bit is 4 KiB: alignment min(0x4000, 0x1000) = 0x1000, first hole at PAGE_SIZE
    const third = w.ctx.mapDma(w.ioas, { vaddr: w.buf + P, length: 4n * P });
    expect(third).toBe(P);
    expect(dmaRead(w, DEV_A, third, 4)).toEqual(pattern(1, 4096, 4));
    expect(dmaRead(w, DEV_A, second + 3n, 2)).toEqual(pattern(1, 3, 2));
  });

  it('§2.4 MAP: an auto IOVA avoids reserved regions and existing areas', () => {
    const w = world([DEV_A], {
      reserved: [
        { start: 0x1000n, last: 0x7fffn, kind: 'reserved' },
        { start: 0x10000n, last: 0x1ffffn, kind: 'msi' },
      ],
    });
    const buf = buffer(w.proc, 16);
    const ioas = w.ctx.allocIoas();
    w.ctx.attach(w.ctx.bindDevice(DEV_A), ioas);
    w.ctx.mapDma(ioas, { iova: 0x8000n, vaddr: buf, length: 2n * P });
    // free from PAGE_SIZE up: [0xa000, 0xffff] (6 pages), then [0x20000, …)
    expect(w.ctx.mapDma(ioas, { vaddr: buf, length: 2n * P })).toBe(0xa000n);
    expect(w.ctx.mapDma(ioas, { vaddr: buf, length: 8n * P })).toBe(0x20000n);
    expect(w.ctx.mapDma(ioas, { vaddr: buf, length: 4n * P })).toBe(0xc000n);
    expect(w.ctx.mapDma(ioas, { vaddr: buf, length: 2n * P })).toBe(0x28000n);
  });

  it('§2.4 MAP: an auto IOVA takes the lowest hole even when areas exist in a higher usable range', () => {
    const w = world([DEV_A], { reserved: [{ start: 0x8000n, last: 0xffffn, kind: 'reserved' }] });
    const buf = buffer(w.proc, 4);
    const ioas = w.ctx.allocIoas();
    w.ctx.attach(w.ctx.bindDevice(DEV_A), ioas);
    // (in this order the higher area becomes the tree's root, with the lower one below it)
    w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: P });
    w.ctx.mapDma(ioas, { iova: 0x1000n, vaddr: buf, length: P });
    // usable: [0, 0x7fff] and [0x10000, …); the lowest free page from PAGE_SIZE is 0x2000
    expect(w.ctx.mapDma(ioas, { vaddr: buf + P, length: P })).toBe(0x2000n);
  });

  it('§2.4 MAP: no suitable hole for an auto IOVA is ENOSPC', () => {
    const w = attached();
    w.ctx.allowIovas(w.ioas, [{ start: 0x100000n, last: 0x103fffn }]);
    w.ctx.mapDma(w.ioas, { vaddr: w.buf, length: 2n * P });
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { vaddr: w.buf, length: 4n * P }), 'ENOSPC', { argument: 'iova' });
    expect(w.ctx.mapDma(w.ioas, { vaddr: w.buf, length: 2n * P })).toBe(0x102000n);
  });

  it('§2.4 MAP: the auto-IOVA search ends at ULONG_MAX − PAGE_SIZE', () => {
    const w = world();
    const buf = buffer(w.proc, 4);
    const ioas = w.ctx.allocIoas();
    // only the top two pages of the 64-bit space are allowed
    w.ctx.allowIovas(ioas, [{ start: U64_MAX - 2n * P + 1n, last: U64_MAX }]);
    expectNoChange(w, () => w.ctx.mapDma(ioas, { vaddr: buf, length: 2n * P }), 'ENOSPC');
    expect(w.ctx.mapDma(ioas, { vaddr: buf, length: P })).toBe(U64_MAX - 2n * P + 1n);
  });

  it('§2.4 MAP: iova or length ≥ ULONG_MAX is EOVERFLOW, checked before the permission and id checks', () => {
    const w = attached();
    const probes = [{ dev: DEV_A, iova: 0x1000n }];
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: U64_MAX, vaddr: w.buf, length: P }), 'EOVERFLOW', { argument: 'iova', probes });
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: 0n, vaddr: w.buf, length: U64_MAX }), 'EOVERFLOW', { argument: 'length', probes });
    expectNoChange(w, () => w.ctx.mapDma(999, { vaddr: w.buf, length: U64_MAX, read: false, write: false }), 'EOVERFLOW');
  });

  it('§2.4 MAP: neither readable nor writable is EINVAL, checked before the IOAS id', () => {
    const w = attached();
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { vaddr: w.buf, length: P, read: false, write: false }), 'EINVAL', { argument: 'read/write' });
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { vaddr: w.buf, length: P, read: false }), 'EINVAL');
    expectNoChange(w, () => w.ctx.mapDma(999, { vaddr: w.buf, length: 0n, read: false, write: false }), 'EINVAL', { argument: 'read/write' });
  });

  it('§2.4 MAP: an unknown ioas_id is ENOENT, checked before the length', () => {
    const w = attached();
    expectNoChange(w, () => w.ctx.mapDma(999, { vaddr: w.buf, length: 0n }), 'ENOENT', { argument: 'ioas' });
    expectNoChange(w, () => w.ctx.mapDma(w.dev, { vaddr: w.buf, length: P }), 'ENOENT', { argument: 'ioas' });
  });

  it('§2.4 MAP: length 0, or not a multiple of the IOAS alignment, is EINVAL', () => {
    const w = attached();
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: 0x1001n, vaddr: w.buf, length: 0n }), 'EINVAL', { argument: 'length' });
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: 0x1000n, vaddr: w.buf, length: P + 0x800n }), 'EINVAL', { argument: 'length' });
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { vaddr: w.buf, length: 0x800n }), 'EINVAL', { argument: 'length' });
  });

  it('§2.4 MAP: FIXED — a misaligned iova is EINVAL; an end past 2^64−1 is EOVERFLOW', () => {
    const w = attached();
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: 0x1800n, vaddr: w.buf, length: P }), 'EINVAL', { argument: 'iova' });
    // 0xffff_ffff_ffff_f000 is aligned and below U64_MAX, but + 0x2000 − 1 wraps
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: U64_MAX - 0xfffn, vaddr: w.buf, length: 2n * P }), 'EOVERFLOW', { argument: 'iova' });
  });

  it('§2.4 MAP: FIXED — a range that intersects a reserved region (or leaves the aperture) is EINVAL', () => {
    const w = attached();
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: MSI_START - P, vaddr: w.buf, length: 2n * P }), 'EINVAL', { argument: 'iova' });
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: MSI_LAST + 1n - P, vaddr: w.buf, length: P * 2n }), 'EINVAL');
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: APERTURE_LAST + 1n - P, vaddr: w.buf, length: 2n * P }), 'EINVAL');
    // the page just below the window and the last page of the aperture are usable
    expect(w.ctx.mapDma(w.ioas, { iova: MSI_START - P, vaddr: w.buf, length: P })).toBe(MSI_START - P);
    expect(w.ctx.mapDma(w.ioas, { iova: APERTURE_LAST + 1n - P, vaddr: w.buf, length: P })).toBe(APERTURE_LAST + 1n - P);
  });

  it('§2.4 MAP: FIXED — a range that intersects an existing area is EEXIST; the existing IOVA is never replaced', () => {
    const w = attached();
    const other = buffer(w.proc, 4, 100);
    w.ctx.mapDma(w.ioas, { iova: 0x10000n, vaddr: w.buf, length: 4n * P });
    const probes = [0x10000n, 0x13000n, 0xf000n, 0x14000n].map((iova) => ({ dev: DEV_A, iova }));
    for (const iova of [0xf000n, 0x13000n, 0x11000n, 0x12000n]) {
      expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova, vaddr: other, length: 2n * P }), 'EEXIST', { argument: 'iova', probes });
    }
    // a range that contains the whole area
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: 0xf000n, vaddr: w.buf, length: 8n * P }), 'EEXIST', { probes });
    // ranges touching it on either side are fine
    w.ctx.mapDma(w.ioas, { iova: 0xe000n, vaddr: other, length: 2n * P });
    w.ctx.mapDma(w.ioas, { iova: 0x14000n, vaddr: other, length: 2n * P });
    expect(dmaRead(w, DEV_A, 0x10000n, 4)).toEqual(pattern(1, 0, 4));
    expect(dmaRead(w, DEV_A, 0xf000n, 4)).toEqual(pattern(100, 4096, 4));
  });

  it('§2.4 MAP: user VA not (fully) mapped is EFAULT, after every other check, and pins nothing', () => {
    const w = attached();
    const hole = w.buf + 64n * P; // never mmapped
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { vaddr: hole, length: P }), 'EFAULT');
    // the last page runs past the mmap: all or nothing
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: 0x100000n, vaddr: w.buf + 15n * P, length: 2n * P }), 'EFAULT');
    expect(w.proc.pinCount(w.buf + 15n * P)).toBe(0);
    // EEXIST is found before the bad vaddr
    w.ctx.mapDma(w.ioas, { iova: 0x100000n, vaddr: w.buf, length: P });
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: 0x100000n, vaddr: hole, length: P }), 'EEXIST');
  });

  it('§2.4 MAP: read-only process memory maps read-only; a writable map of it is EFAULT; the device cannot write it', () => {
    const w = attached();
    const ro = w.proc.mmap(2n * P, { write: false });
    expectNoChange(w, () => w.ctx.mapDma(w.ioas, { iova: 0x10000n, vaddr: ro, length: 2n * P }), 'EFAULT');
    w.ctx.mapDma(w.ioas, { iova: 0x10000n, vaddr: ro, length: 2n * P, read: true, write: false });
    expect(dmaRead(w, DEV_A, 0x10000n, 4)).toEqual(new Uint8Array(4));
    expect(dmaFault(w, DEV_A, 0x10000n, true)).toBe('permission');
  });

  it('§2.4 MAP: permissions — write-only areas refuse reads, read-only areas refuse writes', () => {
    const w = attached();
    w.ctx.mapDma(w.ioas, { iova: 0x10000n, vaddr: w.buf, length: P, write: true });
    w.ctx.mapDma(w.ioas, { iova: 0x20000n, vaddr: w.buf, length: P, read: true });
    expect(dmaFault(w, DEV_A, 0x10000n, false)).toBe('permission');
    expect(dmaFault(w, DEV_A, 0x10000n, true)).toBeUndefined();
    expect(dmaFault(w, DEV_A, 0x20000n, true)).toBe('permission');
    expect(dmaFault(w, DEV_A, 0x20000n, false)).toBeUndefined();
  });

  it('§2.4 MAP: an IOAS can be filled before any device is attached; attaching mirrors every area', () => {
    const w = world();
    const buf = buffer(w.proc, 4, 7);
    const ioas = w.ctx.allocIoas();
    w.ctx.mapDma(ioas, { iova: 0x40000n, vaddr: buf, length: 4n * P });
    const dev = w.ctx.bindDevice(DEV_A);
    expect(dmaFault(w, DEV_A, 0x40000n)).toBe('blocked');
    w.ctx.attach(dev, ioas);
    expect(dmaRead(w, DEV_A, 0x43000n, 4)).toEqual(pattern(7, 3 * 4096, 4));
  });

  it('§2.3 IOAS: pages are pinned once however many domains mirror the IOAS', () => {
    // DEV_B sits on another IOMMU unit: attaching it to the same IOAS needs a second domain
    const w = world([DEV_A, '0000:00:03.0'], { unitOf: (ep) => (ep.name === '0000:00:03.0' ? 1 : 0) });
    const buf = buffer(w.proc, 4, 3);
    const ioas = w.ctx.allocIoas();
    const a = w.ctx.bindDevice(DEV_A);
    const b = w.ctx.bindDevice('0000:00:03.0');
    const ha = w.ctx.attach(a, ioas).hwpt;
    const hb = w.ctx.attach(b, ioas).hwpt;
    expect(hb).not.toBe(ha);
    w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: 4n * P });
    for (let i = 0n; i < 4n; i++) expect(w.proc.pinCount(buf + i * P)).toBe(1);
    expect(w.proc.pinCount()).toBe(4);
    expect(dmaRead(w, DEV_A, 0x12000n, 2)).toEqual(pattern(3, 8192, 2));
    expect(dmaRead(w, '0000:00:03.0', 0x12000n, 2)).toEqual(pattern(3, 8192, 2));
  });
});

describe('§2.4 IOMMU_IOAS_UNMAP (contract: check order)', () => {
  function twoAreas() {
    const w = attached();
    w.ctx.mapDma(w.ioas, { iova: 0x10000n, vaddr: w.buf, length: 4n * P });
    w.ctx.mapDma(w.ioas, { iova: 0x20000n, vaddr: w.buf + 4n * P, length: 4n * P });
    const probes = [0x10000n, 0x13ff8n, 0x20000n, 0x23ff8n].map((iova) => ({ dev: DEV_A, iova }));
    return { ...w, probes };
  }

  it('contract UNMAP order 1: the unmap-all form {0, U64_MAX} comes first and succeeds on an empty IOAS', () => {
    const w = attached();
    // length U64_MAX would be EOVERFLOW in any other form
    expect(w.ctx.unmapDma(w.ioas, { iova: 0n, length: U64_MAX })).toBe(0n);
  });

  it('contract UNMAP order 2: iova or length ≥ 2^64−1 is EOVERFLOW (before length 0 and the area lookup)', () => {
    const w = twoAreas();
    const { probes } = w;
    expectNoChange(w, () => w.ctx.unmapDma(w.ioas, { iova: U64_MAX, length: 0n }), 'EOVERFLOW', { argument: 'iova', probes });
    expectNoChange(w, () => w.ctx.unmapDma(w.ioas, { iova: 0x10000n, length: U64_MAX }), 'EOVERFLOW', { argument: 'length', probes });
    expectNoChange(w, () => w.ctx.unmapDma(w.ioas, { iova: 1n, length: U64_MAX }), 'EOVERFLOW', { probes });
  });

  it('contract UNMAP order 3: length 0 is EINVAL (before the wrap check and the area lookup)', () => {
    const w = twoAreas();
    expectNoChange(w, () => w.ctx.unmapDma(w.ioas, { iova: 0x10000n, length: 0n }), 'EINVAL', { argument: 'length', probes: w.probes });
    expectNoChange(w, () => w.ctx.unmapDma(w.ioas, { iova: U64_MAX - 1n, length: 0n }), 'EINVAL', { argument: 'length' });
  });

  it('contract UNMAP order 4: an end that wraps past 2^64−1 is EOVERFLOW (before the area lookup)', () => {
    const w = twoAreas();
    // iova and length are both below U64_MAX, but iova + length − 1 = 2^64
    expectNoChange(w, () => w.ctx.unmapDma(w.ioas, { iova: U64_MAX - 1n, length: 3n }), 'EOVERFLOW', { probes: w.probes });
    // an end exactly at U64_MAX does not wrap: it reaches the lookup, which finds nothing
    expectNoChange(w, () => w.ctx.unmapDma(w.ioas, { iova: U64_MAX - 1n, length: 2n }), 'ENOENT', { probes: w.probes });
  });

  it('contract UNMAP order 5: then the area lookup — nothing there is ENOENT', () => {
    const w = twoAreas();
    expectNoChange(w, () => w.ctx.unmapDma(w.ioas, { iova: 0x30000n, length: 0x10000n }), 'ENOENT', { argument: 'iova', probes: w.probes });
    expectNoChange(w, () => w.ctx.unmapDma(w.ioas, { iova: 0x14000n, length: 0xc000n }), 'ENOENT', { probes: w.probes });
  });

  it('§2.4 UNMAP: an unknown ioas_id is ENOENT', () => {
    const w = twoAreas();
    expectNoChange(w, () => w.ctx.unmapDma(999, { iova: 0x10000n, length: 4n * P }), 'ENOENT', { argument: 'ioas' });
    expectNoChange(w, () => w.ctx.unmapDma(999, { iova: 0n, length: U64_MAX }), 'ENOENT', { argument: 'ioas' });
  });

  it('§2.4 UNMAP: a range that would split an area is ENOENT and changes nothing', () => {
    const w = twoAreas();
    const { probes } = w;
    // inside, cutting the head, cutting the tail
    for (const [iova, length] of [
      [0x11000n, P],
      [0x10000n, 2n * P],
      [0x12000n, 2n * P],
      [0xf000n, 2n * P],
    ] as const) {
      expectNoChange(w, () => w.ctx.unmapDma(w.ioas, { iova, length }), 'ENOENT', { argument: 'iova', probes });
    }
    // one whole area plus a cut into the next: the whole one is not unmapped either
    expectNoChange(w, () => w.ctx.unmapDma(w.ioas, { iova: 0x10000n, length: 0x11000n }), 'ENOENT', { probes });
    expect(w.proc.pinCount()).toBe(8);
  });

  it('§2.4 UNMAP: a superset of whole areas (gaps allowed) unmaps them all and returns the bytes unmapped', () => {
    const w = twoAreas();
    expect(w.ctx.unmapDma(w.ioas, { iova: 0x8000n, length: 0x30000n })).toBe(8n * P);
    expect(w.proc.pinCount()).toBe(0);
    for (const p of w.probes) expect(dmaFault(w, DEV_A, p.iova)).toBe('translation');
    // exactly one area
    w.ctx.mapDma(w.ioas, { iova: 0x10000n, vaddr: w.buf, length: 4n * P });
    expect(w.ctx.unmapDma(w.ioas, { iova: 0x10000n, length: 4n * P })).toBe(4n * P);
  });

  it('§2.4 UNMAP: {0, U64_MAX} unmaps everything and returns the total', () => {
    const w = twoAreas();
    const frames = w.system.memory.framesInUse;
    expect(w.ctx.unmapDma(w.ioas, { iova: 0n, length: U64_MAX })).toBe(8n * P);
    expect(w.proc.pinCount()).toBe(0);
    // both areas sit under one 2 MiB table of the mock, which is freed with its last entry
    expect(w.system.memory.framesInUse).toBe(frames - 1);
    for (const p of w.probes) expect(dmaFault(w, DEV_A, p.iova)).toBe('translation');
    expect(w.ctx.unmapDma(w.ioas, { iova: 0n, length: U64_MAX })).toBe(0n);
  });
});

describe('§2.4 IOMMU_IOAS_COPY', () => {
  function src() {
    const w = attached();
    const srcIoas = w.ctx.allocIoas();
    w.ctx.mapDma(srcIoas, { iova: 0x10000n, vaddr: w.buf, length: 4n * P });
    w.ctx.mapDma(srcIoas, { iova: 0x14000n, vaddr: w.buf + 8n * P, length: 4n * P }); // adjacent
    w.ctx.mapDma(srcIoas, { iova: 0x20000n, vaddr: w.buf + 4n * P, length: 2n * P, read: true, write: false });
    const probes = [0x40000n, 0x44000n].map((iova) => ({ dev: DEV_A, iova }));
    return { ...w, srcIoas, probes };
  }

  it('§2.4 COPY: maps the source pages at the destination, sharing the pin', () => {
    const w = src();
    expect(w.ctx.copyDma(w.ioas, w.srcIoas, { srcIova: 0x11000n, dstIova: 0x40000n, length: 2n * P })).toBe(0x40000n);
    expect(dmaRead(w, DEV_A, 0x40000n, 4)).toEqual(pattern(1, 4096, 4));
    expect(dmaRead(w, DEV_A, 0x41ffcn, 4)).toEqual(pattern(1, 2 * 4096 - 4, 4));
    expect(w.proc.pinCount(w.buf + P)).toBe(1);
    expect(w.proc.pinCount()).toBe(10);
  });

  it('§2.4 COPY: any sub-range fully and contiguously covered by source areas is accepted', () => {
    const w = src();
    // spans the two adjacent areas [0x10000, 0x13fff] and [0x14000, 0x17fff]
    w.ctx.copyDma(w.ioas, w.srcIoas, { srcIova: 0x13000n, dstIova: 0x40000n, length: 2n * P });
    expect(dmaRead(w, DEV_A, 0x40000n, 2)).toEqual(pattern(1, 3 * 4096, 2));
    expect(dmaRead(w, DEV_A, 0x41000n, 2)).toEqual(pattern(1, 8 * 4096, 2));
  });

  it('§2.4 COPY: a source range not fully covered is ENOENT', () => {
    const w = src();
    const { probes } = w;
    expectNoChange(w, () => w.ctx.copyDma(w.ioas, w.srcIoas, { srcIova: 0x17000n, dstIova: 0x40000n, length: 2n * P }), 'ENOENT', { argument: 'srcIova', probes });
    expectNoChange(w, () => w.ctx.copyDma(w.ioas, w.srcIoas, { srcIova: 0xf000n, dstIova: 0x40000n, length: 2n * P }), 'ENOENT', { probes });
    expectNoChange(w, () => w.ctx.copyDma(w.ioas, w.srcIoas, { srcIova: 0x30000n, dstIova: 0x40000n, length: P }), 'ENOENT', { probes });
  });

  it('§2.4 COPY: flag rules as MAP — EOVERFLOW for any value ≥ ULONG_MAX, EINVAL without R/W, EINVAL for length 0, ENOENT for unknown IOAS ids', () => {
    const w = src();
    const { probes } = w;
    const c = (o: Partial<Parameters<typeof w.ctx.copyDma>[2]>, dst = w.ioas, s = w.srcIoas) => () =>
      w.ctx.copyDma(dst, s, { srcIova: 0x10000n, dstIova: 0x40000n, length: P, ...o });
    expectNoChange(w, c({ srcIova: U64_MAX }), 'EOVERFLOW', { argument: 'srcIova', probes });
    expectNoChange(w, c({ dstIova: U64_MAX }), 'EOVERFLOW', { argument: 'dstIova', probes });
    expectNoChange(w, c({ length: U64_MAX, read: false, write: false }), 'EOVERFLOW', { argument: 'length', probes });
    expectNoChange(w, c({ read: false, write: false }, 999, 999), 'EINVAL', { argument: 'read/write', probes });
    expectNoChange(w, c({ length: 0n }), 'EINVAL', { argument: 'length', probes });
    expectNoChange(w, c({}, 999), 'ENOENT', { argument: 'dst', probes });
    expectNoChange(w, c({}, w.ioas, 999), 'ENOENT', { argument: 'src', probes });
  });

  it('§2.4 COPY: WRITEABLE from a READABLE-only source area is EPERM; a read-only copy works', () => {
    const w = src();
    expectNoChange(w, () => w.ctx.copyDma(w.ioas, w.srcIoas, { srcIova: 0x20000n, dstIova: 0x40000n, length: P }), 'EPERM', { probes: w.probes });
    w.ctx.copyDma(w.ioas, w.srcIoas, { srcIova: 0x20000n, dstIova: 0x40000n, length: P, read: true, write: false });
    expect(dmaRead(w, DEV_A, 0x40000n, 2)).toEqual(pattern(1, 4 * 4096, 2));
    expect(dmaFault(w, DEV_A, 0x40000n, true)).toBe('permission');
  });

  it('§2.4 COPY: the destination range follows MAP rules — EEXIST on overlap, auto IOVA when absent', () => {
    const w = src();
    w.ctx.mapDma(w.ioas, { iova: 0x40000n, vaddr: w.buf, length: P });
    expectNoChange(w, () => w.ctx.copyDma(w.ioas, w.srcIoas, { srcIova: 0x10000n, dstIova: 0x40000n, length: P }), 'EEXIST', { argument: 'dstIova' });
    const auto = w.ctx.copyDma(w.ioas, w.srcIoas, { srcIova: 0x10000n, length: 4n * P });
    expect(auto).not.toBe(0n);
    expect(auto % P).toBe(0n);
    expect(dmaRead(w, DEV_A, auto + 2n * P, 2)).toEqual(pattern(1, 2 * 4096, 2));
  });

  it('§2.4 COPY: the copy keeps the pages pinned after the source is unmapped; the pin goes with the last user', () => {
    const w = src();
    w.ctx.copyDma(w.ioas, w.srcIoas, { srcIova: 0x10000n, dstIova: 0x40000n, length: 4n * P });
    w.ctx.unmapDma(w.srcIoas, { iova: 0n, length: U64_MAX });
    expect(w.proc.pinCount(w.buf)).toBe(1);
    expect(w.proc.pinCount()).toBe(4);
    expect(dmaRead(w, DEV_A, 0x43000n, 2)).toEqual(pattern(1, 3 * 4096, 2));
    w.ctx.unmapDma(w.ioas, { iova: 0x40000n, length: 4n * P });
    expect(w.proc.pinCount()).toBe(0);
  });

  it('§2.3 COPY: a page stays pinned exactly while some area maps it — unmapping the source unpins the pages the copy does not map', () => {
    const w = src();
    w.ctx.copyDma(w.ioas, w.srcIoas, { srcIova: 0x11000n, dstIova: 0x40000n, length: 2n * P }); // pages 1, 2 of the first area
    w.ctx.unmapDma(w.srcIoas, { iova: 0x10000n, length: 0x8000n }); // both adjacent areas (buf pages 0-3 and 8-11)
    expect([0n, 1n, 2n, 3n, 8n].map((i) => w.proc.pinCount(w.buf + i * P))).toEqual([0, 1, 1, 0, 0]);
    expect(w.proc.pinCount()).toBe(2 + 2); // the copy's two pages and the read-only area's two
    expect(dmaRead(w, DEV_A, 0x41000n, 2)).toEqual(pattern(1, 2 * 4096, 2));
    // a locked-memory limit sees the same: the unpinned pages no longer count
    w.ctx.unmapDma(w.ioas, { iova: 0x40000n, length: 2n * P });
    expect(w.proc.pinCount()).toBe(2);
  });

  it('§1.3 CREATE_NESTING: a child keeps pinned only the parent pages it maps', () => {
    const w = attached();
    const parent = w.ctx.allocIoas();
    w.ctx.mapDma(parent, { iova: 0n, vaddr: w.buf, length: 8n * P });
    const child = w.ctx.createNesting(parent);
    w.ctx.mapDma(child, { iova: 0x2000n, vaddr: 0x3000n, length: P });
    w.ctx.unmapDma(child, { iova: 0n, length: U64_MAX });
    w.ctx.mapDma(child, { iova: 0x2000n, vaddr: 0x3000n, length: P });
    expect(w.proc.pinCount()).toBe(8);
    expect(w.proc.pinCount(w.buf + 3n * P)).toBe(1);
  });

  it('§2.4 COPY: within one IOAS', () => {
    const w = attached();
    w.ctx.mapDma(w.ioas, { iova: 0x10000n, vaddr: w.buf, length: 2n * P });
    w.ctx.copyDma(w.ioas, w.ioas, { srcIova: 0x10000n, dstIova: 0x80000n, length: 2n * P });
    expect(dmaRead(w, DEV_A, 0x81000n, 2)).toEqual(pattern(1, 4096, 2));
    expect(w.proc.pinCount(w.buf)).toBe(1);
  });
});

describe('§2.4 IOMMU_IOAS_IOVA_RANGES and IOMMU_IOAS_ALLOW_IOVAS', () => {
  it('§2.4 IOVA_RANGES: a fresh IOAS has one range [0, ULONG_MAX]; the alignment is the page size (never larger than PAGE_SIZE)', () => {
    const w = world();
    const ioas = w.ctx.allocIoas();
    expect(w.ctx.iovaRanges(ioas)).toEqual({ ranges: [{ start: 0n, last: U64_MAX }], alignment: P });
    expectErrno(() => w.ctx.iovaRanges(999), 'ENOENT', 'ioas');
  });

  it('§2.4 IOVA_RANGES: an attached device narrows the ranges to its aperture minus its reserved regions; detaching widens them again', () => {
    const w = world();
    const ioas = w.ctx.allocIoas();
    const dev = w.ctx.bindDevice(DEV_A);
    w.ctx.attach(dev, ioas);
    expect(w.ctx.iovaRanges(ioas).ranges).toEqual([
      { start: 0n, last: MSI_START - 1n },
      { start: MSI_LAST + 1n, last: APERTURE_LAST },
    ]);
    w.ctx.detach(dev);
    expect(w.ctx.iovaRanges(ioas).ranges).toEqual([{ start: 0n, last: U64_MAX }]);
  });

  it('§2.4 ALLOW_IOVAS: each range needs start < last (a 1-byte range is EINVAL); overlapping entries are EINVAL', () => {
    const w = world();
    const ioas = w.ctx.allocIoas();
    w.ctx.allowIovas(ioas, [{ start: 0x100000n, last: 0x1fffffn }]);
    const before = w.ctx.allowedIovas(ioas);
    expectNoChange(w, () => { w.ctx.allowIovas(ioas, [{ start: 0x5000n, last: 0x5000n }]); }, 'EINVAL');
    expectNoChange(w, () => { w.ctx.allowIovas(ioas, [{ start: 0x6000n, last: 0x5000n }]); }, 'EINVAL');
    expectNoChange(w, () => { w.ctx.allowIovas(ioas, [{ start: 0x10000n, last: 0x2ffffn }, { start: 0x2f000n, last: 0x3ffffn }]); }, 'EINVAL', { argument: 'ranges' });
    expectNoChange(w, () => { w.ctx.allowIovas(999, []); }, 'ENOENT', { argument: 'ioas' });
    expect(w.ctx.allowedIovas(ioas)).toEqual(before);
  });

  it('§2.4 ALLOW_IOVAS: a list that intersects a reserved region is EADDRINUSE and the whole update is rolled back', () => {
    const w = world();
    const ioas = w.ctx.allocIoas();
    const dev = w.ctx.bindDevice(DEV_A);
    w.ctx.attach(dev, ioas);
    w.ctx.allowIovas(ioas, [{ start: 0x100000n, last: 0x1fffffn }]);
    expectNoChange(
      w,
      () => { w.ctx.allowIovas(ioas, [{ start: 0x400000n, last: 0x4fffffn }, { start: MSI_START - P, last: MSI_START + P }]); },
      'EADDRINUSE',
      { argument: 'ranges' },
    );
    expect(w.ctx.allowedIovas(ioas)).toEqual([{ start: 0x100000n, last: 0x1fffffn }]);
  });

  it('§2.4 ALLOW_IOVAS: automatic IOVA allocation uses only the allowed ranges; an empty list clears it', () => {
    const w = world();
    const buf = buffer(w.proc, 4);
    const ioas = w.ctx.allocIoas();
    w.ctx.allowIovas(ioas, [{ start: 0x40000000n, last: 0x4000ffffn }, { start: 0x7000000n, last: 0x7003fffn }]);
    expect(w.ctx.mapDma(ioas, { vaddr: buf, length: 4n * P })).toBe(0x7000000n);
    expect(w.ctx.mapDma(ioas, { vaddr: buf, length: 4n * P })).toBe(0x40000000n);
    w.ctx.allowIovas(ioas, []);
    expect(w.ctx.allowedIovas(ioas)).toEqual([]);
    expect(w.ctx.mapDma(ioas, { vaddr: buf, length: 4n * P })).toBe(0x4000n); // the first 16 KiB-aligned hole from PAGE_SIZE
  });

  it('§2.4 ALLOW_IOVAS: IOVA_RANGES never gets narrower than the list — a device that would reserve inside it cannot attach', () => {
    const w = world();
    const ioas = w.ctx.allocIoas();
    w.ctx.allowIovas(ioas, [{ start: 0xf0000000n, last: 0xffffffffn }]); // covers the MSI window
    const dev = w.ctx.bindDevice(DEV_A);
    expectNoChange(w, () => w.ctx.attach(dev, ioas), 'EADDRINUSE', { argument: 'target', probes: [{ dev: DEV_A, iova: 0n }] });
    expect(w.ctx.iovaRanges(ioas).ranges).toEqual([{ start: 0n, last: U64_MAX }]);
  });

  it('§2.4 attach: a device whose reserved region or aperture would cut an existing area cannot attach', () => {
    const w = world();
    const buf = buffer(w.proc, 4);
    const ioas = w.ctx.allocIoas();
    w.ctx.mapDma(ioas, { iova: MSI_START, vaddr: buf, length: P });
    const dev = w.ctx.bindDevice(DEV_A);
    expectNoChange(w, () => w.ctx.attach(dev, ioas), 'EADDRINUSE', { argument: 'target' });
    w.ctx.unmapDma(ioas, { iova: 0n, length: U64_MAX });
    w.ctx.mapDma(ioas, { iova: 1n << 48n, vaddr: buf, length: P });
    expectNoChange(w, () => w.ctx.attach(dev, ioas), 'EINVAL', { argument: 'target' });
  });
});
