/** Workload 7: PAPR's missing passthrough — DMA before any attach, on every backend. */

import { VFIO_EEH_PE_GET_STATE, VFIO_EEH_PE_STATE_STOPPED, VFIO_EEH_PE_UNFREEZE_DMA, VFIO_EEH_PE_UNFREEZE_IO } from '@ioasid/uapi';
import { data, errno, fault, ok, type Workload } from '../workload.js';
import { DEV1, DEV2, DEVICES, blockedFault, pattern, pickIova, probeFreeze } from './env.js';

export const noPassthrough: Workload = {
  id: 'no-passthrough',
  title: "7. PAPR's missing passthrough",
  summary: 'What a device can do before it is attached: on PAPR nothing (no passthrough, no DMA until attached to a DMA window); elsewhere an unbound device may be blocked or pass through, a bound but unattached one is blocked; where a DMA error freezes the device (PAPR EEH), the VMM recovers it with VFIO_EEH_PE_OP.',
  devices: DEVICES,
  run(t) {
    const proc = t.system.createProcess();
    const ctx = t.system.open(proc);
    const d2 = t.step('bind device 2', ok(), () => ctx.bindDevice(DEV2));
    if (d2 === undefined) return;
    const info = ctx.getInfo(d2);
    t.check(
      'hw_info predicts the passthrough capability',
      typeof info.passthrough === 'boolean',
      info.passthrough ? 'identity domain available' : (info.unsupported['passthrough'] ?? 'no identity domain'),
    );
    const early = probeFreeze(info);
    t.dma(
      'DMA from an unbound device before any attach faults',
      DEV1,
      { iova: 0x1000n, size: 4, write: false },
      fault(['blocked', 'translation', 'bad-config', 'frozen'], info.passthrough ? undefined : (info.unsupported['passthrough'] ?? 'no passthrough')),
    );
    t.dma('DMA from a bound, unattached device is blocked', DEV2, { iova: 0x1000n, size: 4, write: false }, blockedFault(info));
    const ioas = ctx.allocIoas();
    t.step('attach the device to an IOAS', ok(), () => ctx.attach(d2, ioas));
    const iova = pickIova(ctx.iovaRanges(ioas).ranges, 0x1000n)!;
    const buf = proc.mmap(0x1000n);
    proc.write(buf, pattern(4, 0x77));
    t.step('map a page', ok(), () => ctx.mapDma(ioas, { iova, vaddr: buf, length: 0x1000n }));
    t.dma(
      'once attached and mapped, DMA works',
      DEV2,
      { iova, size: 4, write: false },
      early === undefined ? data(pattern(4, 0x77)) : fault('frozen', early),
    );
    // EEH recovery (VFIO_EEH_PE_OP), where a DMA error freezes the device
    if (info.dmaFaultFreezes === true) {
      t.step('read the PE state: STOPPED (MMIO and DMA frozen)', ok(), () => {
        if (ctx.eehPeOp(d2, VFIO_EEH_PE_GET_STATE) !== VFIO_EEH_PE_STATE_STOPPED) throw new Error('the PE is not in the stopped state');
      });
      t.step('thawing DMA before MMIO is refused (LoPAR: no such transition from state 2)', errno('EINVAL'), () => ctx.eehPeOp(d2, VFIO_EEH_PE_UNFREEZE_DMA));
      t.step('thaw MMIO, then DMA', ok(), () => {
        ctx.eehPeOp(d2, VFIO_EEH_PE_UNFREEZE_IO);
        ctx.eehPeOp(d2, VFIO_EEH_PE_UNFREEZE_DMA);
      });
      t.dma('after EEH recovery DMA works', DEV2, { iova, size: 4, write: false }, data(pattern(4, 0x77)));
    } else {
      t.step('EEH operations (VFIO_EEH_PE_OP)', errno('EOPNOTSUPP', info.unsupported['eeh'] ?? `${info.backend} has no EEH: a DMA error does not freeze the device`), () =>
        ctx.eehPeOp(d2, VFIO_EEH_PE_GET_STATE),
      );
    }
    ctx.close();
  },
};
