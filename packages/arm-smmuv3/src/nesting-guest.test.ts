import { describe, expect, it } from 'vitest';
import type { GuestMemory, Process } from '@ioasid/uapi';
import { createSmmuV3System } from './system.js';
import { smmuV3NestingGuest, smmuV3NestingGuestWith } from './guest/nesting-guest.js';

const DEV = '0000:00:02.0';
const GPA = 0x4000_0000n; // guest RAM at this IPA (the nest parent's IOVA)
const RAM = 0x40_0000n;

/** Guest memory over the VMM process's buffer that backs guest RAM. */
function guestMemory(proc: Process, buf: bigint): GuestMemory {
  let next = GPA + 0x10000n; // the first 16 pages are data pages
  return {
    read64(gpa) {
      const b = proc.read(buf + (gpa - GPA), 8);
      return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
    },
    write64(gpa, v) {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, v, true);
      proc.write(buf + (gpa - GPA), b);
    },
    alloc() {
      const at = next;
      next += 0x1000n;
      proc.write(buf + (at - GPA), new Uint8Array(0x1000));
      return at;
    },
  };
}

function setup(guest = smmuV3NestingGuest, idr?: { idr3: number }) {
  const system = createSmmuV3System({ devices: [DEV], ...(idr === undefined ? {} : { idr }) });
  const proc = system.createProcess();
  const ram = proc.mmap(RAM);
  const ctx = system.open(proc);
  const ioas = ctx.allocIoas();
  ctx.mapDma(ioas, { iova: GPA, vaddr: ram, length: RAM });
  const dev = ctx.bindDevice(DEV);
  const parent = ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } });
  // Data pages A (GPA + 0x1000) and B (GPA + 0x2000).
  proc.write(ram + 0x1000n, Uint8Array.of(0xa1, 0xa2));
  proc.write(ram + 0x2000n, Uint8Array.of(0xb1, 0xb2));
  const s1 = guest.create(guestMemory(proc, ram));
  const ep = system.device(DEV);
  return { system, proc, ram, ctx, dev, parent, s1, ep };
}

const read = (ep: { dma: (r: { iova: bigint; size: number; write: boolean }) => unknown }, iova: bigint) => ep.dma({ iova, size: 2, write: false });

describe('smmuV3NestingGuest on the model (nested STE over a stage-2 parent)', () => {
  it('DMA reads the guest page; a rewritten entry stays stale until the guest invalidates the range', () => {
    const { ctx, dev, parent, s1, ep } = setup();
    const giova = 0x10000n;
    s1.map(giova, GPA + 0x1000n, true);
    const nested = ctx.allocHwpt(dev, { parent, data: s1.data });
    ctx.attach(dev, nested);
    expect(read(ep, giova)).toEqual({ ok: true, data: Uint8Array.of(0xa1, 0xa2) });
    s1.unmap(giova);
    s1.map(giova, GPA + 0x2000n, true);
    expect(read(ep, giova)).toEqual({ ok: true, data: Uint8Array.of(0xa1, 0xa2) }); // stale TLB entry
    expect(ctx.invalidateHwpt(nested, s1.invalidateRange(giova, 0x1000n))).toBe(1);
    expect(read(ep, giova)).toEqual({ ok: true, data: Uint8Array.of(0xb1, 0xb2) });
    // An unmapped guest IOVA is a stage-1 translation fault.
    const r = ep.dma({ iova: giova + 0x100000n, size: 4, write: false });
    expect(r.ok ? '' : `${r.fault.name} S2=${String(r.fault.record['S2'])}`).toBe('F_TRANSLATION S2=0');
    ctx.close();
  });

  it('invalidateAll drops the whole ASID; a read-only entry refuses writes at stage 1', () => {
    const { ctx, dev, parent, s1, ep } = setup();
    s1.map(0x10000n, GPA + 0x1000n, true);
    s1.map(0x11000n, GPA + 0x2000n, false);
    const nested = ctx.allocHwpt(dev, { parent, data: s1.data });
    ctx.attach(dev, nested);
    expect(read(ep, 0x10000n)).toMatchObject({ ok: true });
    expect(read(ep, 0x11000n)).toEqual({ ok: true, data: Uint8Array.of(0xb1, 0xb2) });
    const w = ep.dma({ iova: 0x11000n, size: 0, write: true, data: Uint8Array.of(1) });
    expect(w.ok ? '' : `${w.fault.name} S2=${String(w.fault.record['S2'])}`).toBe('F_PERMISSION S2=0');
    s1.unmap(0x10000n);
    s1.unmap(0x11000n);
    expect(read(ep, 0x10000n)).toMatchObject({ ok: true });
    expect(read(ep, 0x11000n)).toMatchObject({ ok: true });
    expect(ctx.invalidateHwpt(nested, s1.invalidateAll())).toBe(1);
    for (const iova of [0x10000n, 0x11000n]) {
      const r = read(ep, iova) as { ok: boolean; fault?: { name: string } };
      expect(r.fault?.name).toBe('F_TRANSLATION');
    }
    ctx.close();
  });

  it('range TLBIs (IDR3.RIL) and CMD_CFGI_CD_ALL from a guest that knows its StreamID are accepted and take effect', () => {
    const { ctx, dev, parent, s1, ep } = setup(smmuV3NestingGuestWith({ asid: 3, rangeInvalidation: true, streamId: 0x10 }));
    s1.map(0x10000n, GPA + 0x1000n, true);
    s1.map(0x12000n, GPA + 0x1000n, true);
    const nested = ctx.allocHwpt(dev, { parent, data: s1.data });
    ctx.attach(dev, nested);
    expect(read(ep, 0x10000n)).toMatchObject({ ok: true });
    expect(read(ep, 0x12000n)).toMatchObject({ ok: true });
    s1.map(0x10000n, GPA + 0x2000n, true);
    s1.map(0x12000n, GPA + 0x2000n, true);
    // One range command covers the three pages 0x10000-0x12fff.
    const entries = s1.invalidateRange(0x10000n, 0x3000n);
    expect(entries).toHaveLength(1);
    expect(ctx.invalidateHwpt(nested, entries)).toBe(1);
    expect(read(ep, 0x10000n)).toEqual({ ok: true, data: Uint8Array.of(0xb1, 0xb2) });
    expect(read(ep, 0x12000n)).toEqual({ ok: true, data: Uint8Array.of(0xb1, 0xb2) });
    expect(ctx.invalidateHwpt(nested, s1.invalidateAll())).toBe(2);
  });
});
