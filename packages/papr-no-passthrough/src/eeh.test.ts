import { describe, expect, it } from 'vitest';
import {
  VFIO_EEH_PE_CONFIGURE,
  VFIO_EEH_PE_DISABLE,
  VFIO_EEH_PE_ENABLE,
  VFIO_EEH_PE_GET_STATE,
  VFIO_EEH_PE_INJECT_ERR,
  VFIO_EEH_PE_RESET_DEACTIVATE,
  VFIO_EEH_PE_RESET_FUNDAMENTAL,
  VFIO_EEH_PE_RESET_HOT,
  VFIO_EEH_PE_STATE_NORMAL,
  VFIO_EEH_PE_STATE_RESET,
  VFIO_EEH_PE_STATE_STOPPED,
  VFIO_EEH_PE_STATE_STOPPED_DMA,
  VFIO_EEH_PE_UNFREEZE_DMA,
  VFIO_EEH_PE_UNFREEZE_IO,
  isIoasidError,
} from '@ioasid/uapi';
import { createPaprSystem } from './system.js';
import type { PaprHypervisor } from './hw/hypervisor.js';

const DEV = '0000:00:02.0';
const DEV2 = '0000:00:03.0';

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isIoasidError(e)) return e.errno;
    throw e;
  }
  return undefined;
}

/** A device attached to an IOAS with one page mapped at 0x100000 (inside the default window). */
function attached() {
  const system = createPaprSystem({ devices: [DEV, DEV2] });
  const hv = system.hardware as PaprHypervisor;
  const proc = system.createProcess();
  const buf = proc.mmap(0x1000n);
  proc.write(buf, Uint8Array.of(5, 6, 7, 8));
  const ctx = system.open(proc);
  const ioas = ctx.allocIoas();
  ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x1000n });
  const dev = ctx.bindDevice(DEV);
  ctx.attach(dev, ioas);
  const read = () => system.device(DEV).dma({ iova: 0x100000n, size: 4, write: false });
  /** A DMA into a page the window does not map: a DMA error, the PE freezes (state 2). */
  const freeze = () => system.device(DEV).dma({ iova: 0x200000n, size: 4, write: false });
  return { system, hv, ctx, dev, read, freeze };
}

describe('VFIO_EEH_PE_OP through RTAS (PAPR EEH recovery)', () => {
  it('a frozen PE reads as STOPPED; thaw MMIO → STOPPED_DMA, thaw DMA → NORMAL, and DMA works again', () => {
    const { ctx, dev, hv, read, freeze } = attached();
    expect(ctx.eehPeOp(dev, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_NORMAL);
    expect(freeze().ok).toBe(false);
    expect(ctx.eehPeOp(dev, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_STOPPED);
    const frozen = read();
    expect(!frozen.ok && frozen.fault.class).toBe('frozen');
    // LoPAR: DMA can be thawed only after MMIO (state 2 has no "thaw DMA" transition)
    expect(errnoOf(() => ctx.eehPeOp(dev, VFIO_EEH_PE_UNFREEZE_DMA))).toBe('EINVAL');
    expect(ctx.eehPeOp(dev, VFIO_EEH_PE_UNFREEZE_IO)).toBe(0);
    expect(ctx.eehPeOp(dev, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_STOPPED_DMA);
    expect(read().ok).toBe(false); // DMA still stopped
    expect(ctx.eehPeOp(dev, VFIO_EEH_PE_UNFREEZE_DMA)).toBe(0);
    expect(hv.peState(DEV)).toBe(0);
    expect(read()).toEqual({ ok: true, data: Uint8Array.of(5, 6, 7, 8) });
  });

  it('a reset (hot or fundamental) clears the freeze once deasserted; configure follows; the TCEs survive', () => {
    const { ctx, dev, read, freeze } = attached();
    for (const assert of [VFIO_EEH_PE_RESET_HOT, VFIO_EEH_PE_RESET_FUNDAMENTAL]) {
      freeze();
      expect(ctx.eehPeOp(dev, assert)).toBe(0);
      expect(ctx.eehPeOp(dev, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_RESET);
      expect(ctx.eehPeOp(dev, VFIO_EEH_PE_RESET_DEACTIVATE)).toBe(0);
      expect(ctx.eehPeOp(dev, VFIO_EEH_PE_CONFIGURE)).toBe(0);
      expect(ctx.eehPeOp(dev, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_NORMAL);
      expect(read()).toEqual({ ok: true, data: Uint8Array.of(5, 6, 7, 8) });
    }
  });

  it('the op is per PE: another PE stays as it is; enable and disable answer 0', () => {
    const { system, ctx, dev, freeze } = attached();
    const other = ctx.bindDevice(DEV2);
    freeze();
    expect(ctx.eehPeOp(other, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_NORMAL);
    expect(ctx.eehPeOp(dev, VFIO_EEH_PE_DISABLE)).toBe(0);
    expect(ctx.eehPeOp(dev, VFIO_EEH_PE_ENABLE)).toBe(0);
    expect(system.device(DEV2).dma({ iova: 0x100000n, size: 4, write: false }).ok).toBe(false); // unattached: its own freeze
    expect(ctx.eehPeOp(dev, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_STOPPED);
  });

  it('error injection needs a vfio_eeh_pe_err the op does not carry: EOPNOTSUPP, with the reason in hw_info', () => {
    const { ctx, dev } = attached();
    expect(errnoOf(() => ctx.eehPeOp(dev, VFIO_EEH_PE_INJECT_ERR))).toBe('EOPNOTSUPP');
    expect(ctx.getInfo(dev).unsupported['eehInject']).toMatch(/vfio_eeh_pe_err/);
  });
});
