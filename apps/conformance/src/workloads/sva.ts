/** Workload 6: SVA — a process address space bound to a PASID, CPU page-table changes, I/O page faults. */

import { IOMMUFD_PAGE_RESP_SUCCESS } from '@ioasid/uapi';
import { data, errno, fault, ok, type Workload } from '../workload.js';
import { DEV1, DEVICES, pattern, pickIova } from './env.js';

export const sva: Workload = {
  id: 'sva',
  title: '6. Shared virtual addressing and I/O page faults',
  summary: 'The IOMMU walks the CPU page table of a process bound to a PASID; a CPU page-table change reaches DMA through the invalidation the driver issues; recoverable faults are read from a fault queue and answered.',
  devices: DEVICES,
  run(t) {
    const proc = t.system.createProcess();
    const ctx = t.system.open(proc);
    const dev = t.step('bind the device', ok(), () => ctx.bindDevice(DEV1));
    if (dev === undefined) return;
    const info = ctx.getInfo(dev);
    const app = t.system.createProcess();
    const buf = app.mmap(0x4000n);
    app.write(buf, pattern(16, 0x66));
    if (!info.sva) {
      t.step('bind a process (SVA)', errno('EOPNOTSUPP', info.unsupported['sva'] ?? `${info.backend} has no SVA`), () => ctx.bindSva(dev, app));
    } else {
      const bound = t.step('bind a process (SVA)', ok(), () => ctx.bindSva(dev, app));
      if (bound !== undefined) {
        t.dma('DMA at a process virtual address on its PASID', DEV1, { iova: buf, size: 16, write: false, pasid: bound.pasid }, data(pattern(16, 0x66)));
        t.dma('DMA write lands in the process', DEV1, { iova: buf + 0x1000n, size: 0, write: true, data: pattern(4, 9), pasid: bound.pasid }, ok());
        t.check('the process sees the device write', app.read(buf + 0x1000n, 4).every((b, i) => b === pattern(4, 9)[i]));
        app.munmap(buf + 0x2000n, 0x1000n);
        t.dma('after munmap (CPU page-table change + IOTLB invalidation) DMA there faults', DEV1, { iova: buf + 0x2000n, size: 4, write: false, pasid: bound.pasid }, fault(['page-request', 'translation']));
        t.step('unbind the process', ok(), () => {
          ctx.unbindSva(dev, bound.pasid);
        });
        t.dma('after unbind the PASID is blocked', DEV1, { iova: buf, size: 4, write: false, pasid: bound.pasid }, fault(['blocked', 'translation', 'bad-config']));
      }
    }
    const queue = t.step('allocate a fault queue', ok(), () => ctx.allocFaultQueue());
    if (queue === undefined) return;
    const ioas = ctx.allocIoas();
    const hwpt = t.step(
      'allocate a HWPT that reports I/O page faults to the queue',
      info.iopf ? ok() : errno('EOPNOTSUPP', info.unsupported['iopf'] ?? `${info.backend} has no recoverable I/O page faults`),
      () => ctx.allocHwpt(dev, { parent: ioas, faultQueue: queue, flags: { pasid: info.pasidBits > 0 } }),
    );
    t.step('reading an empty fault queue returns nothing', ok(), () => {
      if (ctx.readFaults(queue).length !== 0) throw new Error('unexpected faults');
    });
    if (hwpt === undefined) {
      ctx.close();
      return;
    }
    if (t.step('attach the device to the IOPF-capable HWPT', ok(), () => ctx.attach(dev, hwpt)) === undefined) return;
    const iova = pickIova(ctx.iovaRanges(ioas).ranges, 0x1000n)!;
    t.dma('DMA to a page not yet mapped raises a page request', DEV1, { iova, size: 4, write: false }, fault('page-request'));
    const faults = ctx.readFaults(queue);
    t.check('the fault queue holds the page request', faults.length === 1 && faults[0]!.addr === iova, `${faults.length} faults`);
    const b2 = proc.mmap(0x1000n);
    proc.write(b2, pattern(4, 0x70));
    t.step('the handler maps the page', ok(), () => ctx.mapDma(ioas, { iova, vaddr: b2, length: 0x1000n }));
    if (faults[0] !== undefined) {
      t.step('respond SUCCESS to the page request group', ok(), () => {
        ctx.respondPageFault(queue, { cookie: faults[0]!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS });
      });
    }
    t.dma('the retried DMA reads the new page', DEV1, { iova, size: 4, write: false }, data(pattern(4, 0x70)));
    t.step('a response with an unknown cookie is EINVAL', errno('EINVAL'), () => {
      ctx.respondPageFault(queue, { cookie: 0x7fffffff, code: 0 });
    });
    ctx.close();
  },
};
