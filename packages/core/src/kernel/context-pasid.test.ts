import { describe, expect, it } from 'vitest';
import { IOMMUFD_PAGE_RESP_INVALID, PAGE_SIZE } from '@ioasid/uapi';
import { DEV_A, DEV_B, buffer, dmaFault, dmaRead, expectErrno, expectNoChange, pattern, snapshot, world } from '../test/harness.js';
import { PasidAllocator } from './pasid-allocator.js';

const P = PAGE_SIZE;

function spaces(devices: Parameters<typeof world>[0] = [DEV_A, DEV_B], mock: Parameters<typeof world>[1] = {}) {
  const w = world(devices, mock);
  const buf = buffer(w.proc, 2, 50);
  const ioas = w.ctx.allocIoas();
  w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: 2n * P });
  return { ...w, buf, ioas };
}

describe('contract: PASID values', () => {
  it('contract: PASIDs are plain numbers from 1 — PASID 0 is the RID\'s own space and is EINVAL, as is any value beyond the width', () => {
    const w = spaces([DEV_A], { pasidBits: 8 });
    const dev = w.ctx.bindDevice(DEV_A);
    expectNoChange(w, () => w.ctx.attach(dev, w.ioas, { pasid: 0 }), 'EINVAL', { argument: 'pasid' });
    expectNoChange(w, () => w.ctx.attach(dev, w.ioas, { pasid: 256 }), 'EINVAL', { argument: 'pasid' });
    expectNoChange(w, () => w.ctx.attach(dev, w.ioas, { pasid: 1.5 }), 'EINVAL', { argument: 'pasid' });
    expectNoChange(w, () => { w.ctx.detach(dev, { pasid: 0 }); }, 'EINVAL', { argument: 'pasid' });
    expect(w.ctx.attach(dev, w.ioas, { pasid: 255 })).toMatchObject({ pasid: 255 });
    expect(dmaRead(w, DEV_A, 0x10000n, 2, 255)).toEqual(pattern(50, 0, 2));
  });
});

describe('§1.2/§1.5 per-device PASIDs chosen at attach', () => {
  it('§1.5 attach with pasid \'auto\' lets the kernel choose the lowest PASID free on that device and returns it', () => {
    const w = spaces();
    const a = w.ctx.bindDevice(DEV_A);
    const b = w.ctx.bindDevice(DEV_B);
    expect(w.ctx.attach(a, w.ioas, { pasid: 'auto' }).pasid).toBe(1);
    w.ctx.attach(a, w.ioas, { pasid: 3 });
    expect(w.ctx.attach(a, w.ioas, { pasid: 'auto' }).pasid).toBe(2);
    expect(w.ctx.attach(a, w.ioas, { pasid: 'auto' }).pasid).toBe(4);
    // per device: DEV_B's space is independent
    expect(w.ctx.attach(b, w.ioas, { pasid: 'auto' }).pasid).toBe(1);
    expect(dmaRead(w, DEV_A, 0x10000n, 2, 4)).toEqual(pattern(50, 0, 2));
    // a detached auto PASID is given back
    w.ctx.detach(a, { pasid: 2 });
    expect(w.ctx.attach(a, w.ioas, { pasid: 'auto' }).pasid).toBe(2);
  });

  it('§1.5 a PASID used on a device by one context is EBUSY for another context on that device, and free on other devices', () => {
    const w = spaces();
    const other = w.system.open(w.system.createProcess());
    const a = w.ctx.bindDevice(DEV_A);
    w.ctx.attach(a, w.ioas, { pasid: 5 });
    // another context cannot get at DEV_A (it is bound here), so it binds DEV_B and uses 5 there
    const b = other.bindDevice(DEV_B);
    expect(other.attach(b, other.allocIoas(), { pasid: 5 }).pasid).toBe(5);
  });
});

describe('§1.4/§1.5 PASIDs allocated with a property: a set of devices, or global (ENQCMD)', () => {
  it('§1.7 allocPasid({ devices }) returns a PASID free on each of the devices', () => {
    const w = spaces();
    const a = w.ctx.bindDevice(DEV_A);
    const b = w.ctx.bindDevice(DEV_B);
    w.ctx.attach(a, w.ioas, { pasid: 1 });
    w.ctx.attach(b, w.ioas, { pasid: 2 });
    expect(w.ctx.allocPasid({ devices: [a] })).toBe(2);
    expect(w.ctx.allocPasid({ devices: [a, b] })).toBe(3);
    expect(w.ctx.allocPasid({ devices: [b] })).toBe(1);
  });

  it('§1.7 a PASID allocated for devices is reserved for this context on them: usable here, kept across detach, EBUSY for others', () => {
    const w = world([{ name: DEV_A, vfs: 1 }, DEV_B]);
    const ioas = w.ctx.allocIoas();
    const a = w.ctx.bindDevice(DEV_A);
    const vf = w.ctx.bindDevice('0000:00:02.1');
    const p = w.ctx.allocPasid({ devices: [a, vf] });
    w.ctx.attach(a, ioas, { pasid: p });
    w.ctx.detach(a, { pasid: p });
    // still reserved: 'auto' skips it on these devices
    expect(w.ctx.attach(a, ioas, { pasid: 'auto' }).pasid).not.toBe(p);
    w.ctx.unbindDevice(vf);
    const other = w.system.open(w.system.createProcess());
    const vf2 = other.bindDevice('0000:00:02.1');
    const oio = other.allocIoas();
    expectNoChange(w, () => other.attach(vf2, oio, { pasid: p }), 'EBUSY', { argument: 'pasid', contexts: [w.ctx, other] });
    w.ctx.freePasid(p);
    expect(other.attach(vf2, oio, { pasid: p }).pasid).toBe(p);
  });

  it('§1.7 allocPasid argument errors: no devices is EINVAL, an unknown device ENOENT', () => {
    const w = spaces();
    const a = w.ctx.bindDevice(DEV_A);
    expectNoChange(w, () => w.ctx.allocPasid({ devices: [] }), 'EINVAL', { argument: 'devices' });
    expectNoChange(w, () => w.ctx.allocPasid({ devices: [a, 99] }), 'ENOENT', { argument: 'devices[1]' });
    expectNoChange(w, () => w.ctx.allocPasid({ devices: [w.ioas] }), 'ENOENT', { argument: 'devices[0]' });
  });

  it('§1.4 a global PASID is one value valid on every device and IOMMU unit: no device anywhere uses it, and nobody else can', () => {
    const w = world([DEV_A, DEV_B, '0000:00:04.0'], { unitOf: (ep) => (ep.name === DEV_B ? 1 : 0) });
    const buf = buffer(w.proc, 1, 60);
    const ioas = w.ctx.allocIoas();
    w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: P });
    const other = w.system.open(w.system.createProcess());
    const c = other.bindDevice('0000:00:04.0');
    other.attach(c, other.allocIoas(), { pasid: 1 }); // PASID 1 is in use on one device somewhere
    const g = w.ctx.allocPasid({ global: true });
    expect(g).toBe(2);
    // usable on devices of both units
    const a = w.ctx.bindDevice(DEV_A);
    const b = w.ctx.bindDevice(DEV_B);
    w.ctx.attach(a, ioas, { pasid: g });
    w.ctx.attach(b, ioas, { pasid: g });
    expect(dmaRead(w, DEV_A, 0x10000n, 2, g)).toEqual(pattern(60, 0, 2));
    expect(dmaRead(w, DEV_B, 0x10000n, 2, g)).toEqual(pattern(60, 0, 2));
    // nobody else can allocate it or attach it
    const oio = other.allocIoas();
    expectNoChange(w, () => other.attach(c, oio, { pasid: g }), 'EBUSY', { contexts: [w.ctx, other] });
    expect(other.allocPasid({ global: true })).toBe(3);
    expect(other.allocPasid({ devices: [c] })).toBe(4);
    expect(other.attach(c, other.allocIoas(), { pasid: 'auto' }).pasid).toBe(5);
  });

  it('contract: globalPasid false on a device makes using a global PASID there EOPNOTSUPP; its own PASIDs still work', () => {
    const w = world([DEV_A, DEV_B], { info: (ep) => (ep.name === DEV_B ? { globalPasid: false } : {}) });
    const ioas = w.ctx.allocIoas();
    const a = w.ctx.bindDevice(DEV_A);
    const b = w.ctx.bindDevice(DEV_B);
    const g = w.ctx.allocPasid({ global: true }); // DEV_A can use one, so the system has them
    w.ctx.attach(a, ioas, { pasid: g });
    expectNoChange(w, () => w.ctx.attach(b, ioas, { pasid: g }), 'EOPNOTSUPP', { argument: 'pasid' });
    expect(w.ctx.attach(b, ioas, { pasid: 'auto' }).pasid).not.toBe(g);
  });

  it('§1.7 freePasid: a PASID still attached is EBUSY; one this context does not hold is ENOENT; freed, it is available again', () => {
    const w = spaces();
    const a = w.ctx.bindDevice(DEV_A);
    const g = w.ctx.allocPasid({ global: true });
    w.ctx.attach(a, w.ioas, { pasid: g });
    expectNoChange(w, () => { w.ctx.freePasid(g); }, 'EBUSY', { argument: 'pasid' });
    expectNoChange(w, () => { w.ctx.freePasid(77); }, 'ENOENT', { argument: 'pasid' });
    w.ctx.detach(a, { pasid: g });
    w.ctx.freePasid(g);
    expectErrno(() => { w.ctx.freePasid(g); }, 'ENOENT');
    expect(w.ctx.allocPasid({ global: true })).toBe(g);
  });

  it('§1.4 the PASID space is finite: when no value is left allocation is ENOSPC', () => {
    const alloc = new PasidAllocator(3);
    const owner = {};
    expect([alloc.allocGlobal(owner), alloc.allocForDevices(owner, ['x']), alloc.allocForDevices(owner, ['y'])]).toEqual([1, 2, 2]);
    expect(alloc.allocForDevices(owner, ['x'])).toBe(3);
    expectErrno(() => alloc.allocForDevices(owner, ['x']), 'ENOSPC');
    expectErrno(() => alloc.allocGlobal(owner), 'ENOSPC');
    alloc.releaseAll(owner);
    expect(alloc.allocGlobal({})).toBe(1);
  });
});

describe('§1.5 mediated devices: vPASID → pPASID', () => {
  it('§1.5 two contexts each attach PASID 1 on mdevs of the same parent and never see each other\'s memory', () => {
    const w = world([{ name: DEV_A, mdevs: 2 }]);
    const procB = w.system.createProcess();
    const ctxB = w.system.open(procB);
    const bufA = buffer(w.proc, 1, 70);
    const bufB = buffer(procB, 1, 90);
    const ioasA = w.ctx.allocIoas();
    const ioasB = ctxB.allocIoas();
    w.ctx.mapDma(ioasA, { iova: 0x10000n, vaddr: bufA, length: P });
    ctxB.mapDma(ioasB, { iova: 0x10000n, vaddr: bufB, length: P });
    const ma = w.ctx.bindDevice(`${DEV_A}/mdev0`);
    const mb = ctxB.bindDevice(`${DEV_A}/mdev1`);
    expect(w.ctx.attach(ma, ioasA, { pasid: 1 }).pasid).toBe(1);
    expect(ctxB.attach(mb, ioasB, { pasid: 1 }).pasid).toBe(1);
    expect(dmaRead(w, `${DEV_A}/mdev0`, 0x10000n, 2, 1)).toEqual(pattern(70, 0, 2));
    expect(dmaRead(w, `${DEV_A}/mdev1`, 0x10000n, 2, 1)).toEqual(pattern(90, 0, 2));
    // a write through one lands in its own process only
    w.system.device(`${DEV_A}/mdev1`).dma({ iova: 0x10000n, size: 0, write: true, data: Uint8Array.of(0xee), pasid: 1 });
    expect(procB.read(bufB, 1)).toEqual(Uint8Array.of(0xee));
    expect(w.proc.read(bufA, 1)).toEqual(pattern(70, 0, 1));
    // on the wire the two vPASID 1s are different PASIDs of the parent RID
    const wire = [...w.hw.attached.keys()].filter((k) => k.startsWith('16/'));
    expect(new Set(wire).size).toBe(2);
    expect(wire).not.toContain('16/1');
    // an mdev's other vPASIDs and default space are blocked until attached
    expect(dmaFault(w, `${DEV_A}/mdev0`, 0x10000n, false, 2)).toBe('blocked');
    expect(dmaFault(w, `${DEV_A}/mdev0`, 0x10000n)).toBe('blocked');
    // the parent's own RID sees neither
    expect(dmaFault(w, DEV_A, 0x10000n)).toBe('blocked');
  });

  it('§1.5 an mdev\'s default space rides on a kernel PASID of its parent; the parent cannot take that PASID (EBUSY)', () => {
    const w = world([{ name: DEV_A, mdevs: 1 }]);
    const other = w.system.open(w.system.createProcess());
    const buf = buffer(w.proc, 1, 80);
    const ioas = w.ctx.allocIoas();
    w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: P });
    const m = w.ctx.bindDevice(`${DEV_A}/mdev0`);
    expect(w.ctx.attach(m, ioas)).toEqual({ hwpt: expect.any(Number) as number });
    expect(dmaRead(w, `${DEV_A}/mdev0`, 0x10000n, 2)).toEqual(pattern(80, 0, 2));
    const [slot] = [...w.hw.attached.keys()];
    const wire = Number(slot!.split('/')[1]);
    expect(wire).toBeGreaterThan(0);
    // another context cannot bind the parent at all: it could issue the mdev's wire PASID
    expectNoChange(w, () => other.bindDevice(DEV_A), 'EBUSY', { argument: 'name', contexts: [w.ctx, other] });
    // the mdev's own context may drive the parent too, but cannot take the wire PASID
    const pf = w.ctx.bindDevice(DEV_A);
    const oio = w.ctx.allocIoas();
    expectNoChange(w, () => w.ctx.attach(pf, oio, { pasid: wire }), 'EBUSY', { argument: 'pasid', contexts: [w.ctx, other] });
    // and 'auto' on the parent never hands it out
    expect(w.ctx.attach(pf, w.ctx.allocIoas(), { pasid: 'auto' }).pasid).not.toBe(wire);
  });

  it('§1.5 a parent and its mdevs share DMA ownership: another context cannot bind one while the other is bound (EBUSY)', () => {
    const w = world([{ name: DEV_A, mdevs: 2 }, DEV_B]);
    const other = w.system.open(w.system.createProcess());
    // parent first: an mdev of it in another context is EBUSY, in the same context it is fine
    const pf = w.ctx.bindDevice(DEV_A);
    expectNoChange(w, () => other.bindDevice(`${DEV_A}/mdev0`), 'EBUSY', { argument: 'name', contexts: [w.ctx, other] });
    const m0 = w.ctx.bindDevice(`${DEV_A}/mdev0`);
    // an unrelated device is not affected
    expect(other.bindDevice(DEV_B)).toBeGreaterThan(0);
    // mdev first: once the parent is gone, another context takes mdev1; the parent then stays out
    w.ctx.unbindDevice(pf);
    const m1 = other.bindDevice(`${DEV_A}/mdev1`);
    expectNoChange(w, () => w.ctx.bindDevice(DEV_A), 'EBUSY', { argument: 'name', contexts: [w.ctx, other] });
    // mdevs of one parent in two contexts are fine; the parent is free once neither context holds
    // an mdev of it but its own
    other.unbindDevice(m1);
    expect(w.ctx.bindDevice(DEV_A)).toBeGreaterThan(m0);
  });

  it('§1.2 the functions of one IOMMU group (hw_info group) are claimed together: another context gets EBUSY', () => {
    const group = [DEV_A, DEV_B];
    const w = world([DEV_A, DEV_B, '0000:00:04.0'], { info: (ep) => (ep.name === '0000:00:04.0' ? {} : { group }) });
    const other = w.system.open(w.system.createProcess());
    const a = w.ctx.bindDevice(DEV_A);
    expectNoChange(w, () => other.bindDevice(DEV_B), 'EBUSY', { argument: 'name', contexts: [w.ctx, other] });
    expect(other.bindDevice('0000:00:04.0')).toBeGreaterThan(0); // not in the group
    expect(w.ctx.bindDevice(DEV_B)).toBeGreaterThan(a); // the same context may hold the whole group
    w.ctx.close();
    expect(other.bindDevice(DEV_B)).toBeGreaterThan(0); // the group is free again
  });

  it('§1.5 detaching or unbinding an mdev gives its parent PASIDs back', () => {
    const w = world([{ name: DEV_A, mdevs: 1 }]);
    const ioas = w.ctx.allocIoas();
    const before = snapshot(w);
    const m = w.ctx.bindDevice(`${DEV_A}/mdev0`);
    w.ctx.attach(m, ioas);
    w.ctx.attach(m, ioas, { pasid: 4 });
    w.ctx.attach(m, ioas, { pasid: 'auto' });
    w.ctx.unbindDevice(m);
    const after = snapshot(w) as { pasids: unknown; attached: unknown; contexts: unknown; framesInUse: number };
    const b = before as typeof after;
    expect(after.pasids).toEqual(b.pasids);
    expect(after.attached).toEqual([]);
    expect(after.contexts).toEqual([]);
    expect(after.framesInUse).toBe(b.framesInUse);
  });
});

describe('§1.5/§2.3 SVA: a process address space on a PASID', () => {
  it('§1.5 bindSva puts the process address space on a PASID: the device reads and writes process memory by virtual address', () => {
    const w = world();
    const buf = buffer(w.proc, 2, 5);
    const dev = w.ctx.bindDevice(DEV_A);
    const { pasid } = w.ctx.bindSva(dev, w.proc);
    expect(pasid).toBeGreaterThan(0);
    expect(dmaRead(w, DEV_A, buf + 0x1000n, 4, pasid)).toEqual(pattern(5, 0x1000, 4));
    w.system.device(DEV_A).dma({ iova: buf, size: 0, write: true, data: Uint8Array.of(9, 8), pasid });
    expect(w.proc.read(buf, 2)).toEqual(Uint8Array.of(9, 8));
    // the RID is not affected
    expect(dmaFault(w, DEV_A, buf)).toBe('blocked');
  });

  it('§1.5 one process has one PASID system-wide (ENQCMD): every device and context binding it gets the same value', () => {
    const w = world([DEV_A, DEV_B, '0000:00:04.0']);
    const other = w.system.open(w.system.createProcess());
    const b = w.ctx.bindDevice(DEV_B);
    const p1 = w.ctx.bindSva(w.ctx.bindDevice(DEV_A), w.proc).pasid;
    expect(w.ctx.bindSva(b, w.proc).pasid).toBe(p1);
    expect(other.bindSva(other.bindDevice('0000:00:04.0'), w.proc).pasid).toBe(p1);
    // another process gets another value, on the same device too; nobody can allocate p1
    const proc2 = w.system.createProcess();
    const buf2 = buffer(proc2, 1, 44);
    const p2 = w.ctx.bindSva(b, proc2).pasid;
    expect(p2).not.toBe(p1);
    expect(dmaRead(w, DEV_B, buf2, 2, p2)).toEqual(pattern(44, 0, 2));
    const g = other.allocPasid({ global: true });
    expect([p1, p2]).not.toContain(g);
  });

  it('§1.5 unbindSva blocks the PASID; the process PASID is released with its last binding', () => {
    const w = world();
    const buf = buffer(w.proc, 1);
    const dev = w.ctx.bindDevice(DEV_A);
    const before = snapshot(w);
    const { pasid } = w.ctx.bindSva(dev, w.proc);
    expect(w.ctx.bindSva(dev, w.proc).pasid).toBe(pasid); // binding twice is the same binding
    expectNoChange(w, () => { w.ctx.unbindSva(dev, pasid + 1); }, 'ENOENT', { argument: 'pasid' });
    w.ctx.unbindSva(dev, pasid);
    expect(dmaFault(w, DEV_A, buf, false, pasid)).toBe('blocked');
    const after = snapshot(w) as { sva: unknown; pasids: unknown; ctxs: { objects: unknown }[] };
    const b = before as typeof after;
    expect(after.sva).toEqual([]);
    expect(after.pasids).toEqual(b.pasids);
    expect(after.ctxs[0]!.objects).toEqual(b.ctxs[0]!.objects);
  });

  it('§1.5 SVA follows the CPU page table: after munmap the device faults (a page request nobody handles is answered INVALID)', () => {
    const w = world();
    const buf = buffer(w.proc, 2, 3);
    const dev = w.ctx.bindDevice(DEV_A);
    const { pasid } = w.ctx.bindSva(dev, w.proc);
    w.proc.munmap(buf + P, P);
    expect(dmaRead(w, DEV_A, buf, 2, pasid)).toEqual(pattern(3, 0, 2));
    expect(dmaFault(w, DEV_A, buf + P, false, pasid)).toBe('page-request');
    expect(w.hw.responses.at(-1)).toEqual([16, pasid, expect.any(Number) as number, IOMMUFD_PAGE_RESP_INVALID]);
  });

  it('§1.5 bindSva of a process of another system is EINVAL', () => {
    const w = world();
    const foreign = world().proc;
    const dev = w.ctx.bindDevice(DEV_A);
    expectNoChange(w, () => w.ctx.bindSva(dev, foreign), 'EINVAL', { argument: 'process' });
  });
});
