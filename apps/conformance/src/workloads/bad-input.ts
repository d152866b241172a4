/** Workload 10: bad input on every operation — each gets its errno and changes nothing. */

import { U64_MAX } from '@ioasid/uapi';
import { data, errno, ok, type Workload } from '../workload.js';
import { DEV1, DEVICES, attachedDevice } from './env.js';

export const badInput: Workload = {
  id: 'bad-input',
  title: '10. Bad input',
  summary: 'Every operation given bad arguments returns its iommufd errno, and afterwards the mappings, pins and DMA results are exactly as before.',
  devices: DEVICES,
  run(t) {
    const a = attachedDevice(t, DEV1, 3);
    if (a === undefined) return;
    const { ctx, ioas, dev, iova, proc, buf, info } = a;
    const pins = proc.pinCount();
    const vaddr = proc.mmap(0x1000n);
    t.step('map into an unknown IOAS: ENOENT', errno('ENOENT'), () => ctx.mapDma(0x7fff, { iova: 0x200000n, vaddr, length: 0x1000n }));
    t.step('map of length 0: EINVAL', errno('EINVAL'), () => ctx.mapDma(ioas, { iova: 0x200000n, vaddr, length: 0n }));
    t.step('map with iova ≥ 2^64−1: EOVERFLOW', errno('EOVERFLOW'), () => ctx.mapDma(ioas, { iova: U64_MAX, vaddr, length: 0x1000n }));
    t.step('map neither readable nor writable: EINVAL', errno('EINVAL'), () => ctx.mapDma(ioas, { iova: 0x200000n, vaddr, length: 0x1000n, read: false, write: false }));
    t.step('map at an unaligned IOVA: EINVAL', errno('EINVAL'), () => ctx.mapDma(ioas, { iova: iova + 0x10800n, vaddr, length: 0x1000n }));
    t.step('map of memory the process never mapped: EFAULT', errno('EFAULT'), () => ctx.mapDma(ioas, { iova: iova + 0x20000n, vaddr: 0x10000n, length: 0x1000n }));
    t.step('unmap of length 0: EINVAL', errno('EINVAL'), () => ctx.unmapDma(ioas, { iova, length: 0n }));
    t.step('unmap whose end wraps: EOVERFLOW', errno('EOVERFLOW'), () => ctx.unmapDma(ioas, { iova: U64_MAX - 0x10n, length: 0x1000n }));
    t.step('unmap of nothing: ENOENT', errno('ENOENT'), () => ctx.unmapDma(ioas, { iova: iova + 0x100000n, length: 0x1000n }));
    t.step('unmap that splits a mapping: ENOENT', errno('ENOENT'), () => ctx.unmapDma(ioas, { iova: iova + 0x1000n, length: 0x1000n }));
    t.step('destroy an IOAS in use: EBUSY', errno('EBUSY'), () => {
      ctx.destroy(ioas);
    });
    t.step('destroy id 0: ENOENT', errno('ENOENT'), () => {
      ctx.destroy(0);
    });
    t.step('bind a malformed device name: EINVAL', errno('EINVAL'), () => ctx.bindDevice('00:02.0'));
    t.step('bind a device that does not exist: ENOENT', errno('ENOENT'), () => ctx.bindDevice('0000:09:00.0'));
    t.step('bind a device already bound: EBUSY', errno('EBUSY'), () => ctx.bindDevice(DEV1));
    t.step(
      'attach with PASID 2^20: EINVAL (or EOPNOTSUPP without PASIDs)',
      info.pasidBits === 0 ? errno('EOPNOTSUPP', info.unsupported['pasid'] ?? 'no PASIDs') : errno('EINVAL'),
      () => ctx.attach(dev, ioas, { pasid: 1 << 20 }),
    );
    t.step('attach to an object that is neither IOAS nor HWPT: EINVAL', errno('EINVAL'), () => ctx.attach(dev, dev));
    t.step('allocHwpt with vendor data over an IOAS: EINVAL', errno('EINVAL'), () =>
      ctx.allocHwpt(dev, { parent: ioas, data: { type: 'vtd_s1', flags: 0, pgtblAddr: 0n, addrWidth: 48 } }),
    );
    t.step('allocHwpt over an unknown parent: ENOENT', errno('ENOENT'), () => ctx.allocHwpt(dev, { parent: 0x7ffe }));
    t.step('invalidate a HWPT that does not exist: ENOENT', errno('ENOENT'), () => ctx.invalidateHwpt(0x7ffd, []));
    t.step('respond to a fault queue that does not exist: ENOENT', errno('ENOENT'), () => {
      ctx.respondPageFault(0x7ffc, { cookie: 1, code: 0 });
    });
    t.step('ALLOW_IOVAS with overlapping ranges: EINVAL', errno('EINVAL'), () => {
      ctx.allowIovas(ioas, [{ start: 0x100000n, last: 0x1fffffn }, { start: 0x180000n, last: 0x2fffffn }]);
    });
    t.check('no failed call pinned or unpinned anything', proc.pinCount() === pins, `pinCount ${proc.pinCount()} (was ${pins})`);
    t.dma('the mapping is intact', DEV1, { iova, size: 8, write: false }, data(proc.read(buf, 8)));
    t.step('the whole mapping still unmaps in one call', ok(), () => ctx.unmapDma(ioas, { iova, length: 0x10000n }));
    ctx.close();
  },
};
