import { describe, expect, it } from 'vitest';
import { PAGE_SIZE, U64_MAX } from '@ioasid/uapi';
import { DEV_A, buffer, dmaFault, dmaRead, expectErrno, expectNoChange, pattern, world } from '../test/harness.js';

const P = PAGE_SIZE;

describe('§1.3 IOASID_REGISTER_MEMORY / UNREGISTER_MEMORY (prereg)', () => {
  it('§1.3 REGISTER_MEMORY pins once: a page mapped into several IOASes is pinned and accounted once', () => {
    // the locked-memory limit is exactly the registered size: double accounting would fail
    const w = world([DEV_A], {}, 4n * P);
    const buf = buffer(w.proc, 4);
    w.ctx.registerMemory({ vaddr: buf, length: 4n * P });
    expect(w.proc.pinCount()).toBe(4);
    const a = w.ctx.allocIoas();
    const b = w.ctx.allocIoas();
    w.ctx.mapDma(a, { iova: 0x10000n, vaddr: buf, length: 4n * P });
    w.ctx.mapDma(b, { iova: 0x80000n, vaddr: buf + P, length: 2n * P });
    expect(w.proc.pinCount(buf + P)).toBe(1);
    expect(w.proc.pinCount()).toBe(4);
    w.ctx.attach(w.ctx.bindDevice(DEV_A), b);
    expect(dmaRead(w, DEV_A, 0x81000n, 2)).toEqual(pattern(1, 2 * 4096, 2));
  });

  it('§1.3 REGISTER_MEMORY: once memory is registered, a map whose vaddr lies outside every registration fails', () => {
    const w = world();
    const buf = buffer(w.proc, 8);
    const ioas = w.ctx.allocIoas();
    w.ctx.registerMemory({ vaddr: buf, length: 4n * P });
    expectNoChange(w, () => w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf + 4n * P, length: P }), 'EINVAL', { argument: 'vaddr' });
    // straddling the end of the registration
    expectNoChange(w, () => w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf + 3n * P, length: 2n * P }), 'EINVAL', { argument: 'vaddr' });
    expect(w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf + 3n * P, length: P })).toBe(0x10000n);
  });

  it('§1.3 REGISTER_MEMORY: the argument checks (alignment, length, overlap, unmapped memory, the memlock limit) change nothing', () => {
    const w = world([DEV_A], {}, 6n * P);
    const buf = buffer(w.proc, 8);
    w.ctx.registerMemory({ vaddr: buf, length: 2n * P });
    expectNoChange(w, () => { w.ctx.registerMemory({ vaddr: buf + 4n * P, length: 0n }); }, 'EINVAL', { argument: 'length' });
    expectNoChange(w, () => { w.ctx.registerMemory({ vaddr: buf + 4n * P, length: 0x800n }); }, 'EINVAL', { argument: 'length' });
    expectNoChange(w, () => { w.ctx.registerMemory({ vaddr: buf + 0x800n, length: P }); }, 'EINVAL', { argument: 'vaddr' });
    expectNoChange(w, () => { w.ctx.registerMemory({ vaddr: buf + P, length: 2n * P }); }, 'EBUSY', { argument: 'vaddr' });
    expectNoChange(w, () => { w.ctx.registerMemory({ vaddr: buf + 8n * P, length: P }); }, 'EFAULT');
    expectNoChange(w, () => { w.ctx.registerMemory({ vaddr: buf + 2n * P, length: 6n * P }); }, 'ENOMEM');
    expectNoChange(w, () => { w.ctx.registerMemory({ vaddr: U64_MAX, length: P }); }, 'EOVERFLOW', { argument: 'vaddr' });
  });

  it('§1.3 UNREGISTER_MEMORY reverses exactly one registration; an inexact range is ENOENT', () => {
    const w = world();
    const buf = buffer(w.proc, 4);
    w.ctx.registerMemory({ vaddr: buf, length: 4n * P });
    expectNoChange(w, () => { w.ctx.unregisterMemory({ vaddr: buf, length: 2n * P }); }, 'ENOENT', { argument: 'vaddr' });
    w.ctx.unregisterMemory({ vaddr: buf, length: 4n * P });
    expect(w.proc.pinCount()).toBe(0);
    // with no registration left, any process memory maps again
    const ioas = w.ctx.allocIoas();
    w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: P });
  });

  it('§1.3 UNREGISTER_MEMORY of memory still mapped is EBUSY until the last mapping of it goes', () => {
    const w = world();
    const buf = buffer(w.proc, 4);
    const r = { vaddr: buf, length: 4n * P };
    w.ctx.registerMemory(r);
    const a = w.ctx.allocIoas();
    const b = w.ctx.allocIoas();
    w.ctx.mapDma(a, { iova: 0x10000n, vaddr: buf, length: 2n * P });
    w.ctx.mapDma(a, { iova: 0x20000n, vaddr: buf + 2n * P, length: 2n * P });
    w.ctx.copyDma(b, a, { srcIova: 0x10000n, dstIova: 0x40000n, length: 2n * P });
    expectNoChange(w, () => { w.ctx.unregisterMemory(r); }, 'EBUSY', { argument: 'vaddr' });
    w.ctx.unmapDma(a, { iova: 0n, length: U64_MAX });
    // the COPY still uses it
    expectNoChange(w, () => { w.ctx.unregisterMemory(r); }, 'EBUSY');
    w.ctx.unmapDma(b, { iova: 0x40000n, length: 2n * P });
    w.ctx.unregisterMemory(r);
    expect(w.proc.pinCount()).toBe(0);
  });

  it('§1.3 UNREGISTER_MEMORY: destroying the IOAS that mapped registered memory releases its use', () => {
    const w = world();
    const buf = buffer(w.proc, 2);
    const r = { vaddr: buf, length: 2n * P };
    w.ctx.registerMemory(r);
    const a = w.ctx.allocIoas();
    w.ctx.mapDma(a, { iova: 0x10000n, vaddr: buf, length: 2n * P });
    w.ctx.destroy(a);
    w.ctx.unregisterMemory(r);
    expect(w.proc.pinCount()).toBe(0);
  });

  it('§1.3 UNREGISTER_MEMORY: a software-nested child over registered memory neither takes nor drops the registration', () => {
    const w = world();
    const buf = buffer(w.proc, 4);
    const r = { vaddr: buf, length: 4n * P };
    w.ctx.registerMemory(r);
    const parent = w.ctx.allocIoas();
    w.ctx.mapDma(parent, { iova: 0x0n, vaddr: buf, length: 4n * P });
    const child = w.ctx.createNesting(parent);
    w.ctx.mapDma(child, { iova: 0x2000n, vaddr: 0x1000n, length: P });
    w.ctx.unmapDma(child, { iova: 0x2000n, length: P });
    // the parent still maps the registered memory
    expectNoChange(w, () => { w.ctx.unregisterMemory(r); }, 'EBUSY');
    w.ctx.unmapDma(parent, { iova: 0n, length: U64_MAX });
    w.ctx.unregisterMemory(r);
    expect(w.proc.pinCount()).toBe(0);
  });
});

describe('§1.3 IOASID_CREATE_NESTING / §1.6 5.3 software nesting', () => {
  /** The RFC's flow: GPA space mapped to HVA, a child GIOVA space whose maps take GPAs. */
  function gpa() {
    const w = world();
    const hva = buffer(w.proc, 16, 9);
    const gpaIoas = w.ctx.allocIoas();
    w.ctx.mapDma(gpaIoas, { iova: 0n, vaddr: hva, length: 8n * P }); // GPA 0 → HVA
    w.ctx.mapDma(gpaIoas, { iova: 0x10000n, vaddr: hva + 8n * P, length: 4n * P, read: true, write: false });
    const giova = w.ctx.createNesting(gpaIoas);
    const dev = w.ctx.bindDevice(DEV_A);
    return { ...w, hva, gpaIoas, giova, dev };
  }

  it('§1.6 5.3: a map on the child takes a GPA as vaddr — GIOVA 0x2000 → GPA 0x1000 → HVA + 0x1000', () => {
    const w = gpa();
    w.ctx.mapDma(w.giova, { iova: 0x2000n, vaddr: 0x1000n, length: P });
    w.ctx.attach(w.dev, w.giova);
    expect(dmaRead(w, DEV_A, 0x2000n, 8)).toEqual(pattern(9, 0x1000, 8));
    expect(dmaFault(w, DEV_A, 0x1000n)).toBe('translation');
    // pinned once: the child shares the parent's pin
    expect(w.proc.pinCount(w.hva + P)).toBe(1);
  });

  it('§1.3 CREATE_NESTING: a child map may span several contiguous parent areas', () => {
    const w = gpa();
    w.ctx.mapDma(w.gpaIoas, { iova: 0x8000n, vaddr: w.hva + 12n * P, length: 2n * P });
    w.ctx.mapDma(w.giova, { iova: 0x40000n, vaddr: 0x7000n, length: 2n * P, read: true, write: false });
    w.ctx.attach(w.dev, w.giova);
    expect(dmaRead(w, DEV_A, 0x40000n, 2)).toEqual(pattern(9, 7 * 4096, 2));
    expect(dmaRead(w, DEV_A, 0x41000n, 2)).toEqual(pattern(9, 12 * 4096, 2));
  });

  it('§1.3 CREATE_NESTING: a child map of GPAs the parent does not map is ENOENT; a writable map of a read-only parent area is EPERM', () => {
    const w = gpa();
    expectNoChange(w, () => w.ctx.mapDma(w.giova, { iova: 0x2000n, vaddr: 0x20000n, length: P }), 'ENOENT', { argument: 'vaddr' });
    expectNoChange(w, () => w.ctx.mapDma(w.giova, { iova: 0x2000n, vaddr: 0x7000n, length: 2n * P }), 'ENOENT');
    expectNoChange(w, () => w.ctx.mapDma(w.giova, { iova: 0x2000n, vaddr: 0x10000n, length: P }), 'EPERM', { argument: 'write' });
    w.ctx.mapDma(w.giova, { iova: 0x2000n, vaddr: 0x10000n, length: P, read: true, write: false });
  });

  it('§1.3 CREATE_NESTING: a parent area a child depends on cannot be unmapped (EBUSY) until the child lets go', () => {
    const w = gpa();
    w.ctx.mapDma(w.giova, { iova: 0x2000n, vaddr: 0x1000n, length: P });
    expectNoChange(w, () => w.ctx.unmapDma(w.gpaIoas, { iova: 0n, length: 8n * P }), 'EBUSY');
    expectNoChange(w, () => w.ctx.unmapDma(w.gpaIoas, { iova: 0n, length: U64_MAX }), 'EBUSY');
    // the unrelated area can go
    expect(w.ctx.unmapDma(w.gpaIoas, { iova: 0x10000n, length: 4n * P })).toBe(4n * P);
    w.ctx.unmapDma(w.giova, { iova: 0n, length: U64_MAX });
    expect(w.ctx.unmapDma(w.gpaIoas, { iova: 0n, length: U64_MAX })).toBe(8n * P);
    expect(w.proc.pinCount()).toBe(0);
  });

  it('§1.3 CREATE_NESTING of an unknown IOAS is ENOENT', () => {
    const w = world();
    expectErrno(() => w.ctx.createNesting(42), 'ENOENT', 'parentIoas');
  });
});
