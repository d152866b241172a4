/** Workload 4: hardware nesting — a user-managed stage 1 over a kernel-managed stage 2. */

import { data, errno, ok, type Workload } from '../workload.js';
import { DEV1, DEVICES } from './env.js';
import { PAGE_A, nestedSetup } from './nesting-env.js';

export const hardwareNesting: Workload = {
  id: 'hardware-nesting',
  title: '4. Hardware nesting',
  summary: 'The guest owns the stage-1 table (VT-d first stage, SMMUv3 CD table, virtio-iommu attached table) in its memory; the IOMMU walks it through the kernel-managed stage 2; user invalidation keeps it coherent; MAP/UNMAP on the user-managed table fails.',
  devices: DEVICES,
  run(t) {
    const n = nestedSetup(t, DEV1);
    if (n === undefined) return;
    const { ctx, nested, parent, stage1, giova } = n;
    t.dma('DMA at a guest IOVA reads guest page A through both stages', DEV1, { iova: giova, size: 16, write: false }, data(PAGE_A));
    t.dma('a guest IOVA the stage 1 does not map faults', DEV1, { iova: giova + 0x100000n, size: 4, write: false }, { kind: 'fault', classes: ['translation', 'bad-config'] });
    t.step('MAP_DMA on the user-managed (nested) table fails', errno('ENOENT'), () =>
      ctx.mapDma(nested, { iova: 0x200000n, vaddr: n.proc.mmap(0x1000n), length: 0x1000n }),
    );
    t.step('UNMAP_DMA on the user-managed table fails', errno('ENOENT'), () => ctx.unmapDma(nested, { iova: giova, length: 0x1000n }));
    t.step('user invalidation of a range', ok(), () => ctx.invalidateHwpt(nested, stage1.invalidateRange(giova, 0x1000n)));
    t.step('invalidation of a kernel-managed (paging) HWPT is EINVAL', errno('EINVAL'), () => ctx.invalidateHwpt(parent, stage1.invalidateAll()));
    t.step('destroying the nest parent while a nested HWPT uses it is EBUSY', errno('EBUSY'), () => {
      ctx.destroy(parent);
    });
    t.step('a nested HWPT on a nested HWPT is EINVAL', errno('EINVAL'), () => ctx.allocHwpt(n.dev, { parent: nested, data: stage1.data }));
    ctx.close();
  },
};
