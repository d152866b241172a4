/** Workload 8: a domain with an anonymous NO-PASID context plus PASID contexts (virtio-iommu's picture). */

import { data, errno, ok, type Workload } from '../workload.js';
import { DEV1, DEVICES, pattern, pickIova } from './env.js';
import { PAGE_A, nestedSetup } from './nesting-env.js';

export const domainContexts: Workload = {
  id: 'domain-contexts',
  title: '8. NO-PASID context plus PASID contexts',
  summary: "The seed's virtio-iommu picture on every backend: the RID's own context managed with MAP/UNMAP, beside PASID contexts — one over another IOAS, one over a guest-managed stage 1.",
  devices: DEVICES,
  run(t) {
    const proc = t.system.createProcess();
    const ctx = t.system.open(proc);
    const dev = t.step('bind the device', ok(), () => ctx.bindDevice(DEV1));
    if (dev === undefined) return;
    const info = ctx.getInfo(dev);
    const rid = ctx.allocIoas();
    const other = ctx.allocIoas();
    t.step('attach the NO-PASID (RID) context to IOAS 1', ok(), () => ctx.attach(dev, rid));
    const iova = pickIova(ctx.iovaRanges(rid).ranges, 0x1000n)!;
    const b1 = proc.mmap(0x1000n);
    const b2 = proc.mmap(0x1000n);
    proc.write(b1, pattern(8, 0x81));
    proc.write(b2, pattern(8, 0x82));
    t.step('MAP in the NO-PASID context', ok(), () => ctx.mapDma(rid, { iova, vaddr: b1, length: 0x1000n }));
    const noPasid = info.pasidBits === 0 ? (info.unsupported['pasid'] ?? `${info.backend} has no PASIDs`) : undefined;
    const pc = t.step('attach PASID 5 to IOAS 2', noPasid === undefined ? ok() : errno('EOPNOTSUPP', noPasid), () => ctx.attach(dev, other, { pasid: 5 }));
    t.dma('DMA without PASID uses the NO-PASID context', DEV1, { iova, size: 8, write: false }, data(pattern(8, 0x81)));
    if (pc !== undefined) {
      t.step('MAP in the PASID 5 context at the same IOVA', ok(), () => ctx.mapDma(other, { iova, vaddr: b2, length: 0x1000n }));
      t.dma('DMA with PASID 5 uses its own context', DEV1, { iova, size: 8, write: false, pasid: 5 }, data(pattern(8, 0x82)));
    }
    ctx.close();
    if (noPasid !== undefined) return;
    // A guest-managed table on a PASID, beside the RID's context.
    const n = nestedSetup(t, DEV1);
    if (n === undefined) return;
    const wholeTable = n.stage1.data.type === 'arm_smmuv3';
    const r = t.step(
      'attach the nested (guest stage-1) HWPT to PASID 9 as well',
      wholeTable ? errno('EINVAL', 'SMMUv3 nesting hands the guest the whole CD table: its PASIDs live inside that table, not in host attachments') : ok(),
      () => n.ctx.attach(n.dev, n.nested, { pasid: 9 }),
    );
    if (r !== undefined) t.dma('DMA with PASID 9 walks the guest stage 1', DEV1, { iova: n.giova, size: 16, write: false, pasid: 9 }, data(PAGE_A));
    n.ctx.close();
  },
};
