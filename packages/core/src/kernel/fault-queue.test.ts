import { describe, expect, it } from 'vitest';
import {
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  PAGE_SIZE,
  type EndpointDescriptor,
} from '@ioasid/uapi';
import { DEV_A, buffer, dmaRead, expectErrno, expectNoChange, pattern, world } from '../test/harness.js';
import { FaultQueue } from './fault-queue.js';

const P = PAGE_SIZE;
const RID_A = 0x10; // 0000:00:02.0 → bus 0, devfn (2 << 3) | 0

/** A device attached (RID and PASID 3) to an IOPF-capable HWPT whose IOAS maps one page at 0x10000. */
function iopf(devices: Parameters<typeof world>[0] = [DEV_A]) {
  const w = world(devices);
  const buf = buffer(w.proc, 2, 33);
  const ioas = w.ctx.allocIoas();
  w.ctx.mapDma(ioas, { iova: 0x10000n, vaddr: buf, length: P });
  const dev = w.ctx.bindDevice(DEV_A);
  const q = w.ctx.allocFaultQueue();
  const hwpt = w.ctx.allocHwpt(dev, { parent: ioas, faultQueue: q, flags: { pasid: true } });
  w.ctx.attach(dev, hwpt);
  w.ctx.attach(dev, hwpt, { pasid: 3 });
  return { ...w, buf, ioas, dev, q, hwpt };
}

describe('§2.6 fault queue and page response', () => {
  it('§2.6 a recoverable fault on the RID is read as an iommu_hwpt_pgfault record: dev_id, no PASID_VALID, perm, page-aligned addr, cookie', () => {
    const w = iopf();
    const r = w.system.device(DEV_A).dma({ iova: 0x20123n, size: 4, write: false });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.fault.class).toBe('page-request');
    const [f, ...rest] = w.ctx.readFaults(w.q);
    expect(rest).toEqual([]);
    expect(f).toEqual({
      flags: IOMMU_PGFAULT_FLAGS_LAST_PAGE, devId: w.dev, pasid: 0, grpid: expect.any(Number) as number,
      perm: IOMMU_PGFAULT_PERM_READ, addr: 0x20000n, length: 4096, cookie: expect.any(Number) as number,
    });
    // read() consumes: the next read is empty, the group still waits for its response
    expect(w.ctx.readFaults(w.q)).toEqual([]);
    expect(w.hw.responses).toEqual([]);
  });

  it('§2.6 a fault on a PASID carries PASID_VALID and the PASID; a write asks for WRITE permission', () => {
    const w = iopf();
    w.system.device(DEV_A).dma({ iova: 0x30000n, size: 0, write: true, data: Uint8Array.of(1), pasid: 3 });
    const [f] = w.ctx.readFaults(w.q);
    expect(f).toMatchObject({
      flags: IOMMU_PGFAULT_FLAGS_PASID_VALID | IOMMU_PGFAULT_FLAGS_LAST_PAGE, pasid: 3, perm: IOMMU_PGFAULT_PERM_WRITE, addr: 0x30000n,
    });
  });

  it('§2.6 write(page_response) with the cookie completes the group at the hardware with the code given; the cookie is then gone (EINVAL)', () => {
    const w = iopf();
    w.system.device(DEV_A).dma({ iova: 0x20000n, size: 4, write: false, pasid: 3 });
    w.system.device(DEV_A).dma({ iova: 0x21000n, size: 4, write: false });
    const [f1, f2] = w.ctx.readFaults(w.q);
    expect(f1!.cookie).not.toBe(f2!.cookie);
    w.ctx.respondPageFault(w.q, { cookie: f2!.cookie, code: IOMMUFD_PAGE_RESP_INVALID });
    w.ctx.respondPageFault(w.q, { cookie: f1!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS });
    expect(w.hw.responses).toEqual([
      [RID_A, undefined, f2!.grpid, IOMMUFD_PAGE_RESP_INVALID],
      [RID_A, 3, f1!.grpid, IOMMUFD_PAGE_RESP_SUCCESS],
    ]);
    expectNoChange(w, () => { w.ctx.respondPageFault(w.q, { cookie: f1!.cookie, code: 0 }); }, 'EINVAL', { argument: 'cookie' });
  });

  it('§2.6 page_response errors: an unknown cookie or a code that is neither SUCCESS nor INVALID is EINVAL and the group keeps waiting', () => {
    const w = iopf();
    w.system.device(DEV_A).dma({ iova: 0x20000n, size: 4, write: false });
    const [f] = w.ctx.readFaults(w.q);
    expectNoChange(w, () => { w.ctx.respondPageFault(w.q, { cookie: f!.cookie + 100, code: 0 }); }, 'EINVAL', { argument: 'cookie' });
    expectNoChange(w, () => { w.ctx.respondPageFault(w.q, { cookie: f!.cookie, code: 2 }); }, 'EINVAL', { argument: 'code' });
    expectNoChange(w, () => { w.ctx.respondPageFault(999, { cookie: f!.cookie, code: 0 }); }, 'ENOENT', { argument: 'queue' });
    expect(w.hw.responses).toEqual([]);
    w.ctx.respondPageFault(w.q, { cookie: f!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS });
    expect(w.hw.responses).toHaveLength(1);
  });

  it('§2.6 after the fault is fixed (the IOVA mapped) and answered, the retried DMA succeeds', () => {
    const w = iopf();
    w.system.device(DEV_A).dma({ iova: 0x20000n, size: 4, write: false });
    const [f] = w.ctx.readFaults(w.q);
    w.ctx.mapDma(w.ioas, { iova: f!.addr, vaddr: w.buf + P, length: P });
    w.ctx.respondPageFault(w.q, { cookie: f!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS });
    expect(dmaRead(w, DEV_A, 0x20000n, 4)).toEqual(pattern(33, 4096, 4));
  });

  it('§2.6 groups still pending when their queue is destroyed, or the context closed, are answered INVALID', () => {
    const w = iopf();
    w.system.device(DEV_A).dma({ iova: 0x20000n, size: 4, write: false });
    w.system.device(DEV_A).dma({ iova: 0x20000n, size: 4, write: false, pasid: 3 });
    const grps = w.ctx.readFaults(w.q).map((f) => f.grpid);
    w.ctx.close();
    expect(w.hw.responses).toEqual([
      [RID_A, undefined, grps[0], IOMMUFD_PAGE_RESP_INVALID],
      [RID_A, 3, grps[1], IOMMUFD_PAGE_RESP_INVALID],
    ]);
    const w2 = iopf();
    w2.system.device(DEV_A).dma({ iova: 0x20000n, size: 4, write: false });
    w2.ctx.detach(w2.dev);
    w2.ctx.detach(w2.dev, { pasid: 3 });
    w2.ctx.destroy(w2.hwpt);
    w2.ctx.destroy(w2.q);
    expect(w2.hw.responses.map((r) => r[3])).toEqual([IOMMUFD_PAGE_RESP_INVALID]);
  });

  it('contract: allocFaultQueue and readFaults work even where nothing can fault; unknown queue ids are ENOENT', () => {
    const w = world([DEV_A], { info: () => ({ iopf: false }) });
    const q = w.ctx.allocFaultQueue();
    expect(w.ctx.readFaults(q)).toEqual([]);
    expectErrno(() => w.ctx.readFaults(999), 'ENOENT', 'queue');
    expectErrno(() => w.ctx.readFaults(w.ctx.allocIoas()), 'ENOENT', 'queue');
  });

  it('§2.6/§1.5 an mdev\'s fault is reported with its virtual PASID, and answered on the wire PASID of the parent', () => {
    const w = world([{ name: DEV_A, mdevs: 1 }]);
    const ioas = w.ctx.allocIoas();
    const m = w.ctx.bindDevice(`${DEV_A}/mdev0`);
    const q = w.ctx.allocFaultQueue();
    const hwpt = w.ctx.allocHwpt(m, { parent: ioas, faultQueue: q, flags: { pasid: true } });
    w.ctx.attach(m, hwpt, { pasid: 1 });
    w.system.device(`${DEV_A}/mdev0`).dma({ iova: 0x40000n, size: 4, write: false, pasid: 1 });
    const [f] = w.ctx.readFaults(q);
    expect(f).toMatchObject({ devId: m, pasid: 1, flags: IOMMU_PGFAULT_FLAGS_PASID_VALID | IOMMU_PGFAULT_FLAGS_LAST_PAGE, addr: 0x40000n });
    const wire = Number([...w.hw.attached.keys()][0]!.split('/')[1]);
    expect(wire).not.toBe(1);
    w.ctx.respondPageFault(q, { cookie: f!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS });
    expect(w.hw.responses).toEqual([[RID_A, wire, f!.grpid, IOMMUFD_PAGE_RESP_SUCCESS]]);
  });
});

describe('FaultQueue (page request groups)', () => {
  const ep: EndpointDescriptor = {
    name: DEV_A, segment: 0, bus: 0, devfn: 0x10, rid: 0x10, kind: 'pf', parent: undefined, pasid: true, pri: true,
  };
  const req = (grpid: number, addr: bigint, last: boolean, pasid?: number) => ({
    endpoint: ep, pasid, addr, perm: IOMMU_PGFAULT_PERM_READ, grpid, last,
  });

  it('§2.6 the requests of one group share a cookie; only the last carries LAST_PAGE; another group gets another cookie', () => {
    const q = new FaultQueue(1);
    q.push(5, req(2, 0x1000n, false, 4), 4);
    q.push(5, req(2, 0x2000n, true, 4), 4);
    q.push(5, req(3, 0x3000n, true, 4), 4);
    const [a, b, c] = q.read();
    expect(a!.cookie).toBe(b!.cookie);
    expect(c!.cookie).not.toBe(a!.cookie);
    expect([a!.flags, b!.flags]).toEqual([IOMMU_PGFAULT_FLAGS_PASID_VALID, IOMMU_PGFAULT_FLAGS_PASID_VALID | IOMMU_PGFAULT_FLAGS_LAST_PAGE]);
    expect(q.pending()).toHaveLength(2);
  });

  it('§2.6/§1.5 a group of an mdev (user PASID ≠ wire PASID) is still one group, answered on the wire PASID', () => {
    const q = new FaultQueue(1);
    q.push(5, req(2, 0x1000n, false, 42), 1); // wire PASID 42 is the mdev's vPASID 1
    q.push(5, req(2, 0x2000n, true, 42), 1);
    const [a, b] = q.read();
    expect(a!.pasid).toBe(1);
    expect(b!.cookie).toBe(a!.cookie);
    expect(q.take(a!.cookie)).toEqual({ endpoint: ep, pasid: 42, grpid: 2 });
    expect(q.pending()).toEqual([]);
  });
});
