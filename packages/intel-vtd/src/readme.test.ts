import { describe, expect, it } from 'vitest';
import { U64_MAX } from '@ioasid/uapi';
import { createVtdSystem } from './index.js';
import { vtdNestingGuest } from './guest.js';

describe('README example', () => {
  it('runs as written', () => {
    const system = createVtdSystem({ devices: ['0000:00:02.0'] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x10000n);
    proc.write(buf, Uint8Array.of(1, 2, 3));
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x10000n });
    ctx.attach(ctx.bindDevice('0000:00:02.0'), ioas);
    expect(system.device('0000:00:02.0').dma({ iova: 0x100000n, size: 3, write: false })).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3) });
    const f = system.device('0000:00:02.0').dma({ iova: 0x900000n, size: 1, write: false });
    expect(!f.ok && f.fault.code).toBe(0x71);
  });
});

describe('vtdNestingGuest', () => {
  it('builds a guest table the hardware walks, and its invalidation entries make changes visible', () => {
    const system = createVtdSystem({ devices: ['0000:00:02.0'], memorySize: 1n << 36n });
    const proc = system.createProcess();
    const G = 0x4000_0000n;
    const mem = proc.mmap(0x40000n);
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: G, vaddr: mem, length: 0x40000n });
    let next = 0n;
    const guestMem = {
      read64: (gpa: bigint) => new DataView(proc.read(mem + gpa - G, 8).buffer).getBigUint64(0, true),
      write64: (gpa: bigint, v: bigint) => {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setBigUint64(0, v, true);
        proc.write(mem + gpa - G, b);
      },
      alloc: () => {
        const gpa = G + next;
        next += 0x1000n;
        proc.write(mem + gpa - G, new Uint8Array(4096));
        return gpa;
      },
    };
    const s1 = vtdNestingGuest.create(guestMem);
    const page1 = guestMem.alloc();
    const page2 = guestMem.alloc();
    proc.write(mem + page1 - G, Uint8Array.of(0x11));
    proc.write(mem + page2 - G, Uint8Array.of(0x22));
    s1.map(0x7000n, page1, true);
    const dev = ctx.bindDevice('0000:00:02.0');
    const parent = ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } });
    const nested = ctx.allocHwpt(dev, { parent, data: s1.data });
    ctx.attach(dev, nested);
    const read = () => system.device('0000:00:02.0').dma({ iova: 0x7000n, size: 1, write: false });
    expect(read()).toEqual({ ok: true, data: Uint8Array.of(0x11) });
    s1.map(0x7000n, page2, true);
    expect(read()).toEqual({ ok: true, data: Uint8Array.of(0x11) }); // stale
    ctx.invalidateHwpt(nested, s1.invalidateRange(0x7000n, 1n));
    expect(read()).toEqual({ ok: true, data: Uint8Array.of(0x22) });
    s1.unmap(0x7000n);
    expect(s1.invalidateAll()).toEqual([{ type: 'vtd_s1', addr: 0n, npages: U64_MAX, flags: 0 }]);
    ctx.invalidateHwpt(nested, s1.invalidateAll());
    const r = read();
    expect(!r.ok && r.fault.code).toBe(0x71);
  });
});
