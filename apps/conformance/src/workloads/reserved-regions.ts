/** Workload 9: reserved regions and IOVA ranges (MSI windows, PAPR windows, virtio RESV_MEM). */

import { errno, ok, type Workload } from '../workload.js';
import { DEV1, DEVICES } from './env.js';

export const reservedRegions: Workload = {
  id: 'reserved-regions',
  title: '9. Reserved regions and IOVA ranges',
  summary: "IOVA_RANGES after attach excludes the device's reserved regions and follows its apertures (PAPR: exactly its DMA windows); maps into reserved space fail; ALLOW_IOVAS pins down usable windows and auto-IOVA stays inside them.",
  devices: DEVICES,
  run(t) {
    const proc = t.system.createProcess();
    const ctx = t.system.open(proc);
    const ioas = ctx.allocIoas();
    const fresh = ctx.iovaRanges(ioas);
    t.check('a fresh IOAS spans the whole 64-bit space', fresh.ranges.length === 1 && fresh.ranges[0]!.start === 0n && fresh.ranges[0]!.last === (1n << 64n) - 1n);
    const dev = t.step('bind the device', ok(), () => ctx.bindDevice(DEV1));
    if (dev === undefined) return;
    const info = ctx.getInfo(dev);
    t.step('attach', ok(), () => ctx.attach(dev, ioas));
    const { ranges } = ctx.iovaRanges(ioas);
    const inside = (a: bigint, b: bigint) => ranges.some((r) => r.start <= a && b <= r.last);
    t.check('every usable range lies inside an aperture of hw_info', ranges.every((r) => info.iovaRanges.some((w) => w.start <= r.start && r.last <= w.last)));
    t.check('no reserved region is usable', info.reservedRegions.every((r) => !ranges.some((u) => u.start <= r.last && r.start <= u.last)));
    const buf = proc.mmap(0x1000n);
    const msi = info.reservedRegions[0];
    if (msi === undefined) t.note('map into a reserved region', `${info.backend} reports no reserved region inside its apertures`);
    else {
      t.step(`a fixed map inside the reserved region 0x${msi.start.toString(16)} (${msi.kind}) is EINVAL`, errno('EINVAL'), () =>
        ctx.mapDma(ioas, { iova: msi.start & ~0xfffn, vaddr: buf, length: 0x1000n }),
      );
      t.step('ALLOW_IOVAS over a reserved region is EADDRINUSE', errno('EADDRINUSE'), () => {
        ctx.allowIovas(ioas, [{ start: msi.start, last: msi.last }]);
      });
    }
    const gap = ranges.find((r) => !(r.start <= 0n && 0n <= r.last) || r.last > 0x10000n);
    const beyond = info.iovaRanges.reduce((m, r) => (r.last > m ? r.last : m), 0n);
    if (beyond < (1n << 64n) - 0x2000n) {
      t.step('a fixed map beyond every aperture is EINVAL', errno('EINVAL'), () => ctx.mapDma(ioas, { iova: (beyond + 0x1000n) & ~0xfffn, vaddr: buf, length: 0x1000n }));
    }
    if (gap !== undefined) {
      const start = gap.start < 0x100000n ? 0x100000n : (gap.start + 0xfffn) & ~0xfffn;
      const window = { start, last: start + 0xfffffn };
      if (inside(window.start, window.last)) {
        t.step('ALLOW_IOVAS a 1 MiB window', ok(), () => {
          ctx.allowIovas(ioas, [window]);
        });
        const got = t.step('an auto-IOVA map', ok(), () => ctx.mapDma(ioas, { vaddr: buf, length: 0x1000n }));
        t.check('auto IOVA lies inside the allowed window', got !== undefined && got >= window.start && got <= window.last);
      }
    }
    t.step('ALLOW_IOVAS with start ≥ last is EINVAL', errno('EINVAL'), () => {
      ctx.allowIovas(ioas, [{ start: 0x5000n, last: 0x5000n }]);
    });
    ctx.close();
  },
};
