/** Workload 3: software nesting — a 'prereg' parent of GPA and a 'rid' child in guest IOVA. */

import { data, errno, ok, type Workload } from '../workload.js';
import { DEV2, DEVICES, pattern, pickIova } from './env.js';

export const softwareNesting: Workload = {
  id: 'software-nesting',
  title: '3. Software nesting (prereg → rid)',
  summary: 'A device-less parent IOAS maps guest RAM at GPA (the prereg level); a child IOAS maps guest IOVA → GPA (the rid level) and the kernel composes both into the device’s table; REGISTER_MEMORY limits what may be mapped.',
  devices: DEVICES,
  run(t) {
    const proc = t.system.createProcess();
    const ctx = t.system.open(proc);
    const ram = proc.mmap(0x100000n); // 1 MiB of guest RAM
    t.step('REGISTER_MEMORY the guest RAM', ok(), () => {
      ctx.registerMemory({ vaddr: ram, length: 0x100000n });
    });
    const outside = proc.mmap(0x1000n);
    const gpa = ctx.allocIoas();
    t.step('a map from outside registered memory is EINVAL', errno('EINVAL'), () => ctx.mapDma(gpa, { iova: 0x200000n, vaddr: outside, length: 0x1000n }));
    t.step('map guest RAM at GPA 0 in the parent', ok(), () => ctx.mapDma(gpa, { iova: 0n, vaddr: ram, length: 0x100000n }));
    proc.write(ram + 0x1000n, pattern(16, 0x31)); // guest page at GPA 0x1000
    const child = t.step('CREATE_NESTING: a child IOAS over the GPA parent', ok(), () => ctx.createNesting(gpa));
    if (child === undefined) return;
    const dev = t.step('bind device 2', ok(), () => ctx.bindDevice(DEV2));
    if (dev === undefined) return;
    if (t.step('attach device 2 to the child', ok(), () => ctx.attach(dev, child)) === undefined) return;
    const giova = pickIova(ctx.iovaRanges(child).ranges, 0x1000n, 0x2000n);
    if (giova === undefined) return;
    t.step('map guest IOVA → GPA 0x1000 in the child (vaddr is a GPA)', ok(), () => ctx.mapDma(child, { iova: giova, vaddr: 0x1000n, length: 0x1000n }));
    t.dma('the device reads the guest page through both levels', DEV2, { iova: giova, size: 16, write: false }, data(pattern(16, 0x31)));
    t.step('a child map of a GPA the parent does not map is ENOENT', errno('ENOENT'), () => ctx.mapDma(child, { iova: giova + 0x1000n, vaddr: 0x400000n, length: 0x1000n }));
    t.step('unmapping parent memory the child uses is EBUSY', errno('EBUSY'), () => ctx.unmapDma(gpa, { iova: 0n, length: 0x100000n }));
    t.step('UNREGISTER_MEMORY of memory still mapped is EBUSY', errno('EBUSY'), () => {
      ctx.unregisterMemory({ vaddr: ram, length: 0x100000n });
    });
    t.check('registered pages are pinned once however many levels map them', proc.pinCount() === 256, `pinCount ${proc.pinCount()}`);
    ctx.close();
    t.check('close released every pin', proc.pinCount() === 0);
  },
};
