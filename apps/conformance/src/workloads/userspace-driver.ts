/** Workload 1: a userspace driver — one IOAS, map, attach, DMA reads and writes, unmap, faults. */

import { data, errno, fault, ok, type Workload } from '../workload.js';
import { DEV1, DEVICES, attachedDevice, pattern, unmappedFault } from './env.js';

export const userspaceDriver: Workload = {
  id: 'userspace-driver',
  title: '1. A userspace driver',
  summary: 'One IOAS, MAP_DMA, attach, DMA reads and writes through the IOMMU, UNMAP_DMA, and the faults that follow.',
  devices: DEVICES,
  run(t) {
    const a = attachedDevice(t, DEV1, 11);
    if (a === undefined) return;
    const { ctx, ioas, iova, proc, buf, info } = a;
    t.dma('DMA read of mapped memory returns what the process wrote', DEV1, { iova, size: 16, write: false }, data(a.data.slice(0, 16)));
    const payload = pattern(32, 200);
    t.dma('DMA write to mapped memory', DEV1, { iova: iova + 0x1000n, size: 0, write: true, data: payload }, ok());
    t.check('the process sees the device write', proc.read(buf + 0x1000n, 32).every((b, i) => b === payload[i]));
    t.check('MAP pinned the 16 pages', proc.pinCount() === 16, `pinCount ${proc.pinCount()}`);
    const ro = proc.mmap(0x1000n);
    const roIova = t.step('map a read-only page', ok(), () => ctx.mapDma(ioas, { vaddr: ro, length: 0x1000n, read: true, write: false }));
    t.step('map over an existing mapping is EEXIST', errno('EEXIST'), () => ctx.mapDma(ioas, { iova, vaddr: ro, length: 0x1000n }));
    t.step('unmap that would split a mapping is ENOENT', errno('ENOENT'), () => ctx.unmapDma(ioas, { iova, length: 0x1000n }));
    t.step('unmap the 64 KiB mapping returns its length', ok(), () => {
      const n = ctx.unmapDma(ioas, { iova, length: 0x10000n });
      if (n !== 0x10000n) throw new Error(`unmapped ${n} bytes`);
    });
    t.check('unmap unpinned the pages', proc.pinCount() === (roIova === undefined ? 0 : 1), `pinCount ${proc.pinCount()}`);
    // Faults last: on PAPR the first DMA fault freezes the PE.
    if (roIova !== undefined) {
      t.dma('DMA write to a read-only mapping faults', DEV1, { iova: roIova, size: 0, write: true, data: Uint8Array.of(1) }, fault('permission'));
    }
    const after = info.dmaFaultFreezes === true ? fault(['frozen', 'translation'], 'the PE is frozen after the first fault (EEH)') : unmappedFault(info);
    t.dma('DMA read of the unmapped range faults', DEV1, { iova, size: 4, write: false }, after);
    ctx.close();
    t.check('close released every pin', proc.pinCount() === 0, `pinCount ${proc.pinCount()}`);
  },
};
