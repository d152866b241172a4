import { describe, expect, it } from 'vitest';
import { isIoasidError, type IoasidContext } from '@ioasid/uapi';
import { createPaprSystem } from './system.js';
import { PaprHypervisor } from './hw/hypervisor.js';
import { H_GET_TCE, H_SUCCESS } from './spec/hcall.js';
import { PAPR_DMA_ERR_INVALID_TCE, PAPR_DMA_ERR_NO_WINDOW } from './spec/dma-error.js';

const DEV = '0000:00:02.0';
const DEV2 = '0000:00:03.0';
// config_addr of 00:02.0 = devfn 0x10 << 8; BUID 0x800000020000000 → cells 0x08000000, 0x20000000
const CFG = 0x1000;
const BHI = 0x08000000;
const BLO = 0x20000000;

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isIoasidError(e)) return e.errno;
    throw e;
  }
  return undefined;
}

describe('createPaprSystem: the foundation example', () => {
  it('runs as written, with the IOVA inside the default 32-bit window', () => {
    const system = createPaprSystem({ devices: [DEV] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x10000n);
    proc.write(buf, Uint8Array.of(1, 2, 3));
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x10000n, read: true, write: true });
    const dev = ctx.bindDevice(DEV);
    ctx.attach(dev, ioas);
    expect(system.device(DEV).dma({ iova: 0x100000n, size: 3, write: false })).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3) });
    ctx.unmapDma(ioas, { iova: 0x100000n, length: 0x10000n });
    ctx.close();
    expect(proc.pinCount()).toBe(0);
  });
});
