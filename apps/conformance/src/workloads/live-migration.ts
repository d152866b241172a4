/** Workload 12: live migration pre-copy — dirty tracking in rounds. */

import { errno, ok, type Workload } from '../workload.js';
import { DEV1, DEVICES, pickIova } from './env.js';

const PAGES = 64;

export const liveMigration: Workload = {
  id: 'live-migration',
  title: '12. Live migration pre-copy (dirty tracking)',
  summary: 'A HWPT allocated with dirty tracking; the device writes in rounds; each round the VMM reads and clears the dirty bitmap, which must report every page written since the last read and only those.',
  devices: DEVICES,
  run(t) {
    const proc = t.system.createProcess();
    const ctx = t.system.open(proc);
    const dev = t.step('bind the device', ok(), () => ctx.bindDevice(DEV1));
    if (dev === undefined) return;
    const info = ctx.getInfo(dev);
    const ioas = ctx.allocIoas();
    const hwpt = t.step(
      'allocate a HWPT with dirty tracking',
      info.dirtyTracking ? ok() : errno('EOPNOTSUPP', info.unsupported['dirtyTracking'] ?? `${info.backend} cannot track dirty pages`),
      () => ctx.allocHwpt(dev, { parent: ioas, flags: { dirtyTracking: true } }),
    );
    if (hwpt === undefined) {
      ctx.close();
      return;
    }
    if (t.step('attach the device to it', ok(), () => ctx.attach(dev, hwpt)) === undefined) return;
    const length = BigInt(PAGES * 4096);
    const iova = pickIova(ctx.iovaRanges(ioas).ranges, length, 0x200000n)!;
    const buf = proc.mmap(length);
    t.step(`map ${PAGES} pages`, ok(), () => ctx.mapDma(ioas, { iova, vaddr: buf, length }));
    t.step('enable dirty tracking', ok(), () => {
      ctx.setDirtyTracking(hwpt, true);
    });
    const read = (noClear = false) => ctx.readDirtyBitmap(hwpt, { iova, length, pageSize: 4096n, noClear });
    const bits = (bm: Uint8Array) => {
      const set: number[] = [];
      for (let n = 0; n < PAGES; n++) if (((bm[n >> 3] ?? 0) >> (n & 7)) & 1) set.push(n);
      return set;
    };
    const first = t.step('the first read reports nothing written', ok(), () => bits(read()));
    t.check('no page is dirty before the device writes', first !== undefined && first.length === 0, `dirty: ${String(first)}`);
    const rounds = [[0, 5, 63], [5, 6, 7, 40], [1]];
    for (const [r, pages] of rounds.entries()) {
      for (const p of pages) {
        t.dma(`round ${r + 1}: device writes page ${p}`, DEV1, { iova: iova + BigInt(p * 4096) + 8n, size: 0, write: true, data: Uint8Array.of(r + 1) }, ok());
      }
      t.dma(`round ${r + 1}: device reads page 20 (reads do not dirty)`, DEV1, { iova: iova + 20n * 4096n, size: 4, write: false }, { kind: 'data', data: new Uint8Array(4) });
      const peek = read(true);
      const got = bits(read());
      t.check(`round ${r + 1}: the bitmap reports exactly the pages written`, JSON.stringify(got) === JSON.stringify(pages) && JSON.stringify(bits(peek)) === JSON.stringify(pages), `dirty: [${got.join(',')}], expected [${pages.join(',')}]`);
    }
    const again = bits(read());
    t.check('after the last read-and-clear nothing is dirty', again.length === 0, `dirty: [${again.join(',')}]`);
    t.step('a bitmap read of a range not fully mapped is EINVAL', errno('EINVAL'), () => ctx.readDirtyBitmap(hwpt, { iova, length: length + 0x1000n, pageSize: 4096n }));
    t.step('a bitmap read with a page size that is not a power of two is EINVAL', errno('EINVAL'), () => ctx.readDirtyBitmap(hwpt, { iova, length, pageSize: 3000n }));
    t.step('a bitmap read at an IOVA not aligned to the page size is EINVAL', errno('EINVAL'), () => ctx.readDirtyBitmap(hwpt, { iova: iova + 0x1000n, length: 0x2000n, pageSize: 0x2000n }));
    ctx.close();
  },
};
