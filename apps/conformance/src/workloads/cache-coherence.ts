/** Workload 11: cache coherence — stale translations until the architecture's invalidation. */

import { data, ok, type Workload } from '../workload.js';
import { DEV1, DEV2, DEVICES, attachedDevice, unmappedFault } from './env.js';
import { PAGE_A, PAGE_B, nestedSetup } from './nesting-env.js';

export const cacheCoherence: Workload = {
  id: 'cache-coherence',
  title: '11. Cache coherence',
  summary: 'Kernel-managed tables: the driver invalidates on unmap, so DMA faults at once. User-managed tables: a guest that rewrites its stage 1 without invalidating sees the stale IOTLB entry; after its invalidation the new translation.',
  devices: DEVICES,
  run(t) {
    const a = attachedDevice(t, DEV2, 5);
    if (a !== undefined) {
      t.dma('DMA caches the translation', DEV2, { iova: a.iova, size: 4, write: false }, data(a.data.slice(0, 4)));
      t.step('unmap (the driver invalidates the IOTLB)', ok(), () => a.ctx.unmapDma(a.ioas, { iova: a.iova, length: 0x10000n }));
      t.dma('DMA after unmap faults: no stale entry survives', DEV2, { iova: a.iova, size: 4, write: false }, unmappedFault(a.info));
      a.ctx.close();
    }
    const n = nestedSetup(t, DEV1);
    if (n === undefined) {
      t.note('user-managed stage 1', 'no user-managed tables on this backend: every map and unmap is synchronous, so there is nothing to see stale');
      return;
    }
    t.dma('DMA through the guest stage 1 reads page A (and caches it)', DEV1, { iova: n.giova, size: 16, write: false }, data(PAGE_A));
    n.stage1.unmap(n.giova);
    n.stage1.map(n.giova, n.pageB, true);
    t.dma('after the guest rewrites its entry without invalidating, DMA still reads page A (stale IOTLB)', DEV1, { iova: n.giova, size: 16, write: false }, data(PAGE_A));
    t.step('the guest invalidates the range', ok(), () => n.ctx.invalidateHwpt(n.nested, n.stage1.invalidateRange(n.giova, 0x1000n)));
    t.dma('after invalidation DMA reads page B', DEV1, { iova: n.giova, size: 16, write: false }, data(PAGE_B));
    n.ctx.close();
  },
};
