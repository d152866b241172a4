import { describe, expect, it } from 'vitest';
import { isIoasidError } from '@ioasid/uapi';
import { createPaprSystem } from './system.js';
import type { PaprHypervisor } from './hw/hypervisor.js';

const DEV = '0000:00:02.0';
const PAGE = 0x1000n;

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isIoasidError(e)) return e.errno;
    throw e;
  }
  return undefined;
}

describe('PaprDomain bookkeeping at scale', () => {
  it('thousands of maps and unmaps (the unmapped IOVAs swept from its index) keep exactly the live mappings', () => {
    const system = createPaprSystem({ devices: [DEV], memorySize: 1n << 32n });
    const hv = system.hardware as PaprHypervisor;
    const proc = system.createProcess();
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    const dev = ctx.bindDevice(DEV);
    const n = 3000;
    const buf = proc.mmap(BigInt(n) * PAGE);
    for (let i = 0; i < n; i++) proc.write(buf + BigInt(i) * PAGE, Uint8Array.of(i & 0xff, i >> 8));
    const iova = (i: number) => 0x100000n + BigInt(i) * 2n * PAGE;
    ctx.attach(dev, ioas); // the domain exists from here on: every map and unmap below reaches it
    for (let i = 0; i < n; i++) ctx.mapDma(ioas, { iova: iova(i), vaddr: buf + BigInt(i) * PAGE, length: PAGE });
    // unmap all but every tenth: more than enough unmapped IOVAs to sweep the index
    for (let i = 0; i < n; i++) if (i % 10 !== 0) ctx.unmapDma(ioas, { iova: iova(i), length: PAGE });
    // the same IOVA mapped and unmapped again and again
    for (let k = 0; k < 2000; k++) {
      ctx.mapDma(ioas, { iova: iova(1), vaddr: buf, length: PAGE });
      ctx.unmapDma(ioas, { iova: iova(1), length: PAGE });
    }
    // re-map a few unmapped IOVAs; an overlap with a live one is still EEXIST
    for (const i of [3, 1001, 2999]) ctx.mapDma(ioas, { iova: iova(i), vaddr: buf + BigInt(i) * PAGE, length: PAGE });
    expect(errnoOf(() => ctx.mapDma(ioas, { iova: iova(20), vaddr: buf, length: PAGE }))).toBe('EEXIST');
    const live = (i: number) => i % 10 === 0 || i === 3 || i === 1001 || i === 2999;
    const ep = system.device(DEV);
    const check = () => {
      for (let i = 0; i < n; i++) {
        if (live(i)) expect(ep.dma({ iova: iova(i), size: 2, write: false })).toEqual({ ok: true, data: Uint8Array.of(i & 0xff, i >> 8) });
      }
    };
    check();
    // detach clears the tables; attaching again programs them from the domain's index
    ctx.detach(dev);
    expect(ep.dma({ iova: iova(0), size: 1, write: false }).ok).toBe(false);
    hv.rtas('ibm,set-slot-reset', [hv.configAddr(DEV), 0x08000000, 0x20000000, 1]);
    hv.rtas('ibm,set-slot-reset', [hv.configAddr(DEV), 0x08000000, 0x20000000, 0]);
    ctx.attach(dev, ioas);
    check();
    expect(ep.dma({ iova: iova(5), size: 1, write: false }).ok).toBe(false);
    expect(hv.peState(DEV)).toBe(2);
    ctx.close();
    expect(proc.pinCount()).toBe(0);
  });
});
