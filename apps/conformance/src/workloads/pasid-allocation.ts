/** Workload 5: PASID allocation both ways, several PASIDs on one IOAS, and two VMs on mdevs. */

import { data, errno, fault, ok, type Workload } from '../workload.js';
import { DEV1, DEV2, DEVICES, pattern, pickIova } from './env.js';

export const pasidAllocation: Workload = {
  id: 'pasid-allocation',
  title: '5. PASID allocation both ways',
  summary: 'A global PASID asked for with its property (a set of devices, or system-wide for ENQCMD), a per-device PASID chosen at attach, one IOAS behind several PASIDs, and two VMs that both use PASID 1 on mediated devices of one parent (which no other context may drive meanwhile).',
  devices: DEVICES,
  run(t) {
    const proc = t.system.createProcess();
    const ctx = t.system.open(proc);
    const d1 = t.step('bind device 1', ok(), () => ctx.bindDevice(DEV1));
    const d2 = t.step('bind device 2', ok(), () => ctx.bindDevice(DEV2));
    if (d1 === undefined || d2 === undefined) return;
    const info = ctx.getInfo(d1);
    const noPasid = info.pasidBits === 0 ? (info.unsupported['pasid'] ?? `${info.backend} has no PASIDs`) : undefined;
    const global = t.step(
      'allocate a system-wide PASID (ENQCMD)',
      info.globalPasid ? ok() : errno('EOPNOTSUPP', info.unsupported['globalPasid'] ?? noPasid ?? 'no global PASIDs'),
      () => ctx.allocPasid({ global: true }),
    );
    const shared = t.step(
      'allocate a PASID valid on devices 1 and 2',
      noPasid === undefined ? ok() : errno('EOPNOTSUPP', noPasid),
      () => ctx.allocPasid({ devices: [d1, d2] }),
    );
    const ioas = ctx.allocIoas();
    if (noPasid !== undefined) {
      t.step('attach with PASID 1', errno('EOPNOTSUPP', noPasid), () => ctx.attach(d1, ioas, { pasid: 1 }));
      t.step("attach with a kernel-chosen PASID ('auto')", errno('EOPNOTSUPP', noPasid), () => ctx.attach(d1, ioas, { pasid: 'auto' }));
      t.step('bind a mediated device (it needs a PASID of its parent)', errno('EOPNOTSUPP', noPasid), () => ctx.bindDevice(`${DEV1}/mdev0`));
      ctx.close();
      return;
    }
    t.check('the system-wide PASID differs from the per-device one', global === undefined || global !== shared);
    if (shared === undefined) return;
    const r1 = t.step('attach device 1 with the shared PASID', ok(), () => ctx.attach(d1, ioas, { pasid: shared }));
    const auto = t.step("attach device 1 to the same IOAS with a kernel-chosen PASID ('auto')", ok(), () => ctx.attach(d1, ioas, { pasid: 'auto' }));
    if (r1 === undefined || auto === undefined) return;
    t.check('the chosen PASID is a new one', auto.pasid !== undefined && auto.pasid !== shared && auto.pasid !== global);
    t.check('both PASIDs share one HWPT of the IOAS', auto.hwpt === r1.hwpt);
    const iova = pickIova(ctx.iovaRanges(ioas).ranges, 0x1000n)!;
    const buf = proc.mmap(0x1000n);
    proc.write(buf, pattern(8, 0x50));
    t.step('map a page in the IOAS', ok(), () => ctx.mapDma(ioas, { iova, vaddr: buf, length: 0x1000n }));
    t.dma('DMA with the shared PASID', DEV1, { iova, size: 8, write: false, pasid: shared }, data(pattern(8, 0x50)));
    t.dma('DMA with the chosen PASID', DEV1, { iova, size: 8, write: false, pasid: auto.pasid! }, data(pattern(8, 0x50)));
    t.dma('DMA with a PASID nobody attached is blocked', DEV1, { iova, size: 8, write: false, pasid: 0x77 }, fault(['blocked', 'translation', 'bad-config']));
    if (global !== undefined) {
      const other = t.system.open(t.system.createProcess());
      t.step("another context cannot attach this context's system-wide PASID", errno('EBUSY'), () => {
        const dev3 = other.bindDevice('0000:00:02.1');
        other.attach(dev3, other.allocIoas(), { pasid: global });
      });
      other.close();
    }
    t.step('freeing a PASID still attached is EBUSY', errno('EBUSY'), () => {
      ctx.freePasid(shared);
    });
    // Two VMs, each with a mediated device of the same parent, both using PASID 1.
    const vmA = t.system.createProcess();
    const vmB = t.system.createProcess();
    const ca = t.system.open(vmA);
    const cb = t.system.open(vmB);
    // The parent could issue its mdevs' wire PASIDs: while this context drives it, no other
    // context may bind one of its mdevs (DMA ownership of the requester ID).
    t.step('VM A cannot bind mdev0 while another context drives its parent', errno('EBUSY'), () => ca.bindDevice(`${DEV1}/mdev0`));
    ctx.close();
    const ma = t.step('VM A binds mdev0', ok(), () => ca.bindDevice(`${DEV1}/mdev0`));
    const mb = t.step('VM B binds mdev1 of the same parent', ok(), () => cb.bindDevice(`${DEV1}/mdev1`));
    if (ma !== undefined && mb !== undefined) {
      const ia = ca.allocIoas();
      const ib = cb.allocIoas();
      const ba = vmA.mmap(0x1000n);
      const bb = vmB.mmap(0x1000n);
      vmA.write(ba, pattern(8, 0xaa));
      vmB.write(bb, pattern(8, 0xbb));
      t.step('VM A attaches its mdev with PASID 1', ok(), () => ca.attach(ma, ia, { pasid: 1 }));
      t.step('VM B attaches its mdev with PASID 1 too', ok(), () => cb.attach(mb, ib, { pasid: 1 }));
      const vi = pickIova(ca.iovaRanges(ia).ranges, 0x1000n)!;
      ca.mapDma(ia, { iova: vi, vaddr: ba, length: 0x1000n });
      cb.mapDma(ib, { iova: vi, vaddr: bb, length: 0x1000n });
      t.dma("VM A's mdev on PASID 1 reads VM A's memory", `${DEV1}/mdev0`, { iova: vi, size: 8, write: false, pasid: 1 }, data(pattern(8, 0xaa)));
      t.dma("VM B's mdev on PASID 1 reads VM B's memory", `${DEV1}/mdev1`, { iova: vi, size: 8, write: false, pasid: 1 }, data(pattern(8, 0xbb)));
      t.step('VM A cannot bind the parent while VM B holds one of its mdevs', errno('EBUSY'), () => ca.bindDevice(DEV1));
    }
    ca.close();
    cb.close();
  },
};
