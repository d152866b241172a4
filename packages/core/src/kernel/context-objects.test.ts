import { describe, expect, it } from 'vitest';
import { PAGE_SIZE, U64_MAX } from '@ioasid/uapi';
import { DEV_A, DEV_B, buffer, dmaFault, dmaRead, expectErrno, expectNoChange, pattern, world } from '../test/harness.js';

const P = PAGE_SIZE;

describe('§2.1 objects: one id space per context, non-zero ids', () => {
  it('§2.1 every object kind draws a distinct non-zero id from one space', () => {
    const w = world();
    const ids = [
      w.ctx.allocIoas(),
      w.ctx.bindDevice(DEV_A),
      w.ctx.allocFaultQueue(),
      w.ctx.allocIoas(),
    ];
    ids.push(w.ctx.allocHwpt(ids[1]!, { parent: ids[0]! }));
    ids.push(w.ctx.attach(ids[1]!, ids[3]!).hwpt);
    for (const id of ids) expect(id).not.toBe(0);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('§2.1 ids are per context: two contexts each start their own space', () => {
    const w = world();
    const other = w.system.open(w.system.createProcess());
    const a = w.ctx.allocIoas();
    const b = other.allocIoas();
    expect(a).toBe(b);
    // and one context's id means nothing in the other
    w.ctx.allocIoas();
    expectErrno(() => other.iovaRanges(a + 1), 'ENOENT');
  });
});

describe('§2.4 IOMMU_DESTROY', () => {
  it('§2.4 DESTROY: an unknown id (including 0) is ENOENT', () => {
    const w = world();
    w.ctx.allocIoas();
    expectNoChange(w, () => { w.ctx.destroy(0); }, 'ENOENT', { argument: 'id' });
    expectNoChange(w, () => { w.ctx.destroy(77); }, 'ENOENT', { argument: 'id' });
  });

  it('§2.4 DESTROY: an IOAS is destroyed with its areas, and its pages are unpinned', () => {
    const w = world();
    const buf = buffer(w.proc, 4);
    const ioas = w.ctx.allocIoas();
    w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: 4n * P });
    expect(w.proc.pinCount()).toBe(4);
    w.ctx.destroy(ioas);
    expect(w.proc.pinCount()).toBe(0);
    expectErrno(() => w.ctx.iovaRanges(ioas), 'ENOENT');
    expectErrno(() => { w.ctx.destroy(ioas); }, 'ENOENT');
  });

  it('§2.4 DESTROY: an IOAS with an attached device is EBUSY', () => {
    const w = world();
    const buf = buffer(w.proc, 2);
    const ioas = w.ctx.allocIoas();
    w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: 2n * P });
    const dev = w.ctx.bindDevice(DEV_A);
    w.ctx.attach(dev, ioas);
    expectNoChange(w, () => { w.ctx.destroy(ioas); }, 'EBUSY', { argument: 'id', probes: [{ dev: DEV_A, iova: 0x10000n }] });
    w.ctx.detach(dev);
    w.ctx.destroy(ioas);
    expect(w.proc.pinCount()).toBe(0);
  });

  it('§2.4 DESTROY: an IOAS with a HWPT allocated on it is EBUSY (the HWPT holds it)', () => {
    const w = world();
    const ioas = w.ctx.allocIoas();
    const dev = w.ctx.bindDevice(DEV_A);
    const hwpt = w.ctx.allocHwpt(dev, { parent: ioas });
    expectNoChange(w, () => { w.ctx.destroy(ioas); }, 'EBUSY');
    w.ctx.destroy(hwpt);
    w.ctx.destroy(ioas);
  });

  it('§2.4 DESTROY: a HWPT attached to a device is EBUSY; detached it goes, and its id is then ENOENT', () => {
    const w = world();
    const ioas = w.ctx.allocIoas();
    const dev = w.ctx.bindDevice(DEV_A);
    const hwpt = w.ctx.allocHwpt(dev, { parent: ioas });
    expect(w.ctx.attach(dev, hwpt)).toEqual({ hwpt });
    expectNoChange(w, () => { w.ctx.destroy(hwpt); }, 'EBUSY', { argument: 'id' });
    w.ctx.detach(dev);
    w.ctx.destroy(hwpt);
    expectErrno(() => w.ctx.attach(dev, hwpt), 'ENOENT', 'target');
  });

  it('§2.4 DESTROY: a nesting parent with nested children is EBUSY', () => {
    const w = world();
    const ioas = w.ctx.allocIoas();
    const dev = w.ctx.bindDevice(DEV_A);
    const parent = w.ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } });
    const nested = w.ctx.allocHwpt(dev, { parent, data: { type: 'virtio_table', format: 'arm-lpae-s1', root: 0n } });
    expectNoChange(w, () => { w.ctx.destroy(parent); }, 'EBUSY', { argument: 'id' });
    w.ctx.destroy(nested);
    w.ctx.destroy(parent);
    w.ctx.destroy(ioas);
  });

  it('§2.4 DESTROY: a fault queue used by a HWPT is EBUSY', () => {
    const w = world();
    const ioas = w.ctx.allocIoas();
    const dev = w.ctx.bindDevice(DEV_A);
    const q = w.ctx.allocFaultQueue();
    const hwpt = w.ctx.allocHwpt(dev, { parent: ioas, faultQueue: q });
    expectNoChange(w, () => { w.ctx.destroy(q); }, 'EBUSY', { argument: 'id' });
    w.ctx.destroy(hwpt);
    w.ctx.destroy(q);
    expectErrno(() => w.ctx.readFaults(q), 'ENOENT');
  });

  it('§1.3 CREATE_NESTING: a parent IOAS with software-nested children is EBUSY', () => {
    const w = world();
    const parent = w.ctx.allocIoas();
    const child = w.ctx.createNesting(parent);
    expectNoChange(w, () => { w.ctx.destroy(parent); }, 'EBUSY', { argument: 'id' });
    w.ctx.destroy(child);
    w.ctx.destroy(parent);
  });

  it('§2.4 DESTROY: a bound device is not destroyed by DESTROY (it is unbound by its driver)', () => {
    const w = world();
    const dev = w.ctx.bindDevice(DEV_A);
    expectNoChange(w, () => { w.ctx.destroy(dev); }, 'EINVAL', { argument: 'id' });
  });
});

describe('§2.1 close: closing the fd destroys everything', () => {
  function busyContext() {
    const w = world([DEV_A, DEV_B, { name: '0000:00:04.0', mdevs: 1 }]);
    const framesBefore = w.system.memory.framesInUse;
    const buf = buffer(w.proc, 8);
    const frames = w.system.memory.framesInUse;
    const { ctx } = w;
    const ioas = ctx.allocIoas();
    const ioas2 = ctx.allocIoas();
    ctx.registerMemory({ vaddr: buf, length: 8n * P });
    ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: 4n * P });
    ctx.mapDma(ioas2, { iova: 0x10000n, vaddr: buf + 4n * P, length: 4n * P });
    ctx.copyDma(ioas2, ioas, { srcIova: 0x10000n, dstIova: 0x20000n, length: 4n * P });
    const child = ctx.createNesting(ioas);
    ctx.mapDma(child, { iova: 0x80000n, vaddr: 0x11000n, length: P });
    const a = ctx.bindDevice(DEV_A);
    const b = ctx.bindDevice(DEV_B);
    const m = ctx.bindDevice('0000:00:04.0/mdev0');
    ctx.attach(a, ioas);
    const q = ctx.allocFaultQueue();
    const parent = ctx.allocHwpt(b, { parent: ioas2, flags: { nestParent: true } });
    const nested = ctx.allocHwpt(b, { parent, data: { type: 'virtio_table', format: 'arm-lpae-s1', root: 0x10000n }, faultQueue: q });
    ctx.attach(b, nested);
    ctx.attach(a, child, { pasid: 5 });
    const global = ctx.allocPasid({ global: true });
    ctx.attach(b, ioas2, { pasid: global });
    ctx.attach(m, ioas);
    ctx.attach(m, ioas2, { pasid: 1 });
    ctx.bindSva(a, w.proc);
    return { ...w, framesBefore, frames, buf, a, b, m, global };
  }

  it('§2.1 close: every object is released, every page unpinned, every frame given back', () => {
    const w = busyContext();
    expect(w.proc.pinCount()).toBe(8);
    expect(dmaRead(w, DEV_A, 0x10000n, 2)).toEqual(pattern(1, 0, 2));
    w.ctx.close();
    expect(w.proc.pinCount()).toBe(0);
    for (let i = 0n; i < 8n; i++) expect(w.proc.pinCount(w.buf + i * P)).toBe(0);
    // the mock's domains, table frames and context entries are all gone; the process's own
    // CPU page table (built for SVA) belongs to the process and stays
    expect(w.hw.attached.size).toBe(0);
    expect(w.hw.contexts.size).toBe(0);
    expect([...w.hw.domains].every((d) => d.freed)).toBe(true);
    const cpuTableFrames = w.proc['cpuTable']!['tables'].length;
    expect(w.system.memory.framesInUse).toBe(w.frames + cpuTableFrames);
    expect(w.system.owners.size).toBe(0);
  });

  it('§2.1 close: devices of a closed context are blocked (contract) and can be bound by another context', () => {
    const w = busyContext();
    w.ctx.close();
    expect(dmaFault(w, DEV_A, 0x10000n)).toBe('blocked');
    expect(dmaFault(w, DEV_B, 0x10000n)).toBe('blocked');
    expect(dmaFault(w, DEV_A, 0x80000n, false, 5)).toBe('blocked');
    expect(dmaFault(w, '0000:00:04.0/mdev0', 0x10000n)).toBe('blocked');
    expect(dmaFault(w, '0000:00:04.0/mdev0', 0x10000n, false, 1)).toBe('blocked');
    const other = w.system.open(w.system.createProcess());
    for (const name of [DEV_A, DEV_B, '0000:00:04.0/mdev0']) expect(other.bindDevice(name)).toBeGreaterThan(0);
  });

  it('§2.1 close: the PASIDs the context held are free again', () => {
    const w = busyContext();
    w.ctx.close();
    const other = w.system.open(w.system.createProcess());
    const b = other.bindDevice(DEV_B);
    // the global PASID and the explicitly attached PASID 5 are usable by someone else now
    other.attach(b, other.allocIoas(), { pasid: w.global });
    const a = other.bindDevice(DEV_A);
    other.attach(a, other.allocIoas(), { pasid: 5 });
    expect(w.system.pasids['global'].size).toBe(0);
  });

  it('§2.1 close: is idempotent, and every later call is EBADF', () => {
    const w = busyContext();
    w.ctx.close();
    w.ctx.close();
    expectErrno(() => w.ctx.allocIoas(), 'EBADF');
    expectErrno(() => w.ctx.bindDevice(DEV_A), 'EBADF');
    expectErrno(() => w.ctx.unmapDma(1, { iova: 0n, length: U64_MAX }), 'EBADF');
  });

  it('§3.1 teardown: after close no page of the test buffer is still referenced, whatever the context did', () => {
    const w = busyContext();
    w.ctx.close();
    const backings = w.proc['backings'];
    for (const b of backings) expect([...b.pins].every((c) => c === 0)).toBe(true);
    // the buffer can be unmapped and its frames go back to the allocator
    w.proc.munmap(w.buf, 8n * P);
    const cpuTableFrames = w.proc['cpuTable']!['tables'].length;
    expect(w.system.memory.framesInUse).toBe(w.framesBefore + cpuTableFrames);
  });
});

describe('§1.3 IOASID_CHECK_EXTENSION', () => {
  it('§1.3 CHECK_EXTENSION returns 1 for fd-level extensions core supports and 0 otherwise', () => {
    const w = world();
    expect(w.ctx.checkExtension('prereg')).toBe(1);
    expect(w.ctx.checkExtension('type1v2')).toBe(1);
    expect(w.ctx.checkExtension('no-such-extension')).toBe(0);
  });
});
