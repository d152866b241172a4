import { describe, expect, it } from 'vitest';
import { createSystem } from './system.js';
import { mockBackend } from './test/mock-backend.js';

describe('the foundation example (issue contract) on the reference backend', () => {
  it('maps, attaches, DMAs, unmaps and closes', () => {
    const system = createSystem(mockBackend(), { devices: ['0000:00:02.0'] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x10000n);
    proc.write(buf, Uint8Array.of(1, 2, 3));
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    expect(ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x10000n, read: true, write: true })).toBe(0x100000n);
    const dev = ctx.bindDevice('0000:00:02.0');
    ctx.attach(dev, ioas);
    const r = system.device('0000:00:02.0').dma({ iova: 0x100000n, size: 3, write: false });
    expect(r).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3) });
    expect(ctx.unmapDma(ioas, { iova: 0x100000n, length: 0x10000n })).toBe(0x10000n);
    const after = system.device('0000:00:02.0').dma({ iova: 0x100000n, size: 3, write: false });
    expect(after.ok).toBe(false);
    ctx.close();
    expect(proc.pinCount()).toBe(0);
  });
});

describe('Endpoint.dmaInto: the non-allocating DMA entry point', () => {
  function attached() {
    const system = createSystem(mockBackend(), { devices: [{ name: '0000:00:02.0', mdevs: 1 }] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x2000n);
    proc.write(buf, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x2000n });
    const dev = ctx.bindDevice('0000:00:02.0');
    ctx.attach(dev, ioas);
    const mdev = ctx.bindDevice('0000:00:02.0/mdev0');
    ctx.attach(mdev, ioas, { pasid: 3 });
    return { system, proc, buf, ctx };
  }

  it('a read lands in the caller\'s buffer and returns undefined; the rest of the buffer is untouched', () => {
    const { system } = attached();
    const into = new Uint8Array(8).fill(0xee);
    const req = { iova: 0x100001n, size: 4, write: false };
    expect(system.device('0000:00:02.0').dmaInto(req, into)).toBeUndefined();
    expect(into).toEqual(Uint8Array.of(2, 3, 4, 5, 0xee, 0xee, 0xee, 0xee));
    // the same request object and buffer again (the hot-path pattern) give the same bytes
    into.fill(0);
    expect(system.device('0000:00:02.0').dmaInto(req, into)).toBeUndefined();
    expect(into.subarray(0, 4)).toEqual(Uint8Array.of(2, 3, 4, 5));
  });

  it('a write takes request.data and needs no buffer; a fault is the same record dma() gives', () => {
    const { system, proc, buf } = attached();
    const ep = system.device('0000:00:02.0');
    expect(ep.dmaInto({ iova: 0x101000n, size: 0, write: true, data: Uint8Array.of(9, 9) })).toBeUndefined();
    expect(proc.read(buf + 0x1000n, 2)).toEqual(Uint8Array.of(9, 9));
    const miss = { iova: 0x200000n, size: 4, write: false };
    const f = ep.dmaInto(miss, new Uint8Array(4));
    const r = ep.dma(miss);
    expect(f).toBeDefined();
    expect(r).toEqual({ ok: false, fault: f });
  });

  it('a mediated device\'s dmaInto goes out on its wire PASID; an unattached vPASID is blocked', () => {
    const { system } = attached();
    const m = system.device('0000:00:02.0/mdev0');
    const into = new Uint8Array(2);
    expect(m.dmaInto({ iova: 0x100000n, size: 2, write: false, pasid: 3 }, into)).toBeUndefined();
    expect(into).toEqual(Uint8Array.of(1, 2));
    expect(m.dmaInto({ iova: 0x100000n, size: 2, write: false, pasid: 4 }, into)?.class).toBe('blocked');
  });

  it('a read with no buffer, or one shorter than size, is EINVAL (argument into) and issues nothing', () => {
    const { system } = attached();
    const ep = system.device('0000:00:02.0');
    for (const into of [undefined, new Uint8Array(3)]) {
      let err: unknown;
      try {
        ep.dmaInto({ iova: 0x100000n, size: 4, write: false }, into);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ errno: 'EINVAL', argument: 'into' });
    }
    // a zero-byte read needs no buffer
    expect(ep.dmaInto({ iova: 0x100000n, size: 0, write: false })).toBeUndefined();
  });

  it('dma() of more than 1 GiB is EINVAL (argument size) before anything is issued, not an allocation failure', () => {
    const { system } = attached();
    let err: unknown;
    try {
      system.device('0000:00:02.0').dma({ iova: 0x100000n, size: 2 ** 30 + 1, write: false });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ errno: 'EINVAL', argument: 'size' });
  });
});
