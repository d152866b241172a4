/** Workload 2: multiple IOASes without nesting — two devices, two IOASes, moving a device. */

import { data, ok, type Workload } from '../workload.js';
import { DEV1, DEV2, DEVICES, blockedFault, pattern, pickIova } from './env.js';

export const multipleIoas: Workload = {
  id: 'multiple-ioas',
  title: '2. Multiple IOASes without nesting',
  summary: 'Two devices in two IOASes mapping different memory at the same IOVA; a device moved from one IOAS to the other by a replacing attach; a detached device is blocked.',
  devices: DEVICES,
  run(t) {
    const proc = t.system.createProcess();
    const ctx = t.system.open(proc);
    const a = ctx.allocIoas();
    const b = ctx.allocIoas();
    const d1 = t.step('bind device 1', ok(), () => ctx.bindDevice(DEV1));
    const d2 = t.step('bind device 2', ok(), () => ctx.bindDevice(DEV2));
    if (d1 === undefined || d2 === undefined) return;
    const info = ctx.getInfo(d1);
    if (t.step('attach device 1 to IOAS A', ok(), () => ctx.attach(d1, a)) === undefined) return;
    if (t.step('attach device 2 to IOAS B', ok(), () => ctx.attach(d2, b)) === undefined) return;
    const iova = pickIova(ctx.iovaRanges(a).ranges, 0x1000n);
    if (iova === undefined) return;
    const bufA = proc.mmap(0x1000n);
    const bufB = proc.mmap(0x1000n);
    proc.write(bufA, pattern(8, 0xa0));
    proc.write(bufB, pattern(8, 0xb0));
    t.step('map buffer A in IOAS A', ok(), () => ctx.mapDma(a, { iova, vaddr: bufA, length: 0x1000n }));
    t.step('map buffer B in IOAS B at the same IOVA', ok(), () => ctx.mapDma(b, { iova, vaddr: bufB, length: 0x1000n }));
    t.dma('device 1 reads IOAS A', DEV1, { iova, size: 8, write: false }, data(pattern(8, 0xa0)));
    t.dma('device 2 reads IOAS B', DEV2, { iova, size: 8, write: false }, data(pattern(8, 0xb0)));
    const moved = t.step('attach device 2 to IOAS A replaces its attachment', ok(), () => ctx.attach(d2, a));
    if (moved !== undefined) t.dma('device 2 now reads IOAS A', DEV2, { iova, size: 8, write: false }, data(pattern(8, 0xa0)));
    t.step('IOAS B can be destroyed once nothing uses it', ok(), () => {
      ctx.unmapDma(b, { iova: 0n, length: (1n << 64n) - 1n });
      ctx.destroy(b);
    });
    t.step('detach device 1', ok(), () => {
      ctx.detach(d1);
    });
    t.dma('a detached device is blocked', DEV1, { iova, size: 8, write: false }, blockedFault(info));
    ctx.close();
  },
};
