import { describe, expect, it } from 'vitest';
import { createPaprSystem, PaprHypervisor } from './index.js';

describe('README example', () => {
  it('runs as written', () => {
    const system = createPaprSystem({ devices: ['0000:00:02.0'] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x10000n);
    proc.write(buf, Uint8Array.of(1, 2, 3));
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    const dev = ctx.bindDevice('0000:00:02.0');
    // default memory 2^40 → DDW of 2^40 bytes (64 KiB pages, 2^24 TCEs) at 2^59
    expect(ctx.getInfo(dev).iovaRanges).toEqual([
      { start: 0n, last: 0x7fffffffn },
      { start: 1n << 59n, last: (1n << 59n) + (1n << 40n) - 1n },
    ]);
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x10000n });
    ctx.attach(dev, ioas);
    expect(system.device('0000:00:02.0').dma({ iova: 0x100000n, size: 3, write: false })).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3) });
    expect(system.hardware).toBeInstanceOf(PaprHypervisor);
    const hv = system.hardware as PaprHypervisor;
    const [win] = hv.liobns('0000:00:02.0');
    expect(hv.hcall(0x20, BigInt(win!.liobn), 0x0n, 0x5000n | 3n)).toEqual({ ret: 0, values: [] });
  });
});
