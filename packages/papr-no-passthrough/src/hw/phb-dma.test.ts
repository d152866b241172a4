import { describe, expect, it } from 'vitest';
import { PhysicalMemory } from '@ioasid/core';
import { PaprHypervisor } from './hypervisor.js';
import { H_PUT_TCE, H_SUCCESS } from '../spec/hcall.js';
import {
  PAPR_DMA_ERR_INVALID_TCE,
  PAPR_DMA_ERR_NO_WINDOW,
  PAPR_DMA_ERR_READ_PROTECTED,
  PAPR_DMA_ERR_WRITE_PROTECTED,
} from '../spec/dma-error.js';

const DEV = '0000:00:02.0';
const OTHER = '0000:00:03.0';
const CFG = 0x1000;
const BHI = 0x08000000;
const BLO = 0x20000000;

function setup() {
  const memory = new PhysicalMemory({ size: 1n << 36n });
  const hv = new PaprHypervisor({ memory, devices: [DEV, OTHER] });
  const liobn = BigInt(hv.liobns(DEV)[0]!.liobn);
  return { memory, hv, liobn };
}

describe('DMA translation through the default window', () => {
  it('reads and writes through a read/write TCE, with the page offset', () => {
    const { memory, hv, liobn } = setup();
    memory.write(0x345678n, Uint8Array.of(9, 8, 7));
    // IOBA 0x2000 → TCE index 2 → real page 0x345000
    expect(hv.hcall(H_PUT_TCE, liobn, 0x2000n, 0x345000n | 3n).ret).toBe(H_SUCCESS);
    expect(hv.dma({ device: DEV, iova: 0x2678n, size: 3, write: false })).toEqual({ ok: true, data: Uint8Array.of(9, 8, 7) });
    expect(hv.dma({ device: DEV, iova: 0x2ffen, size: 2, write: true, data: Uint8Array.of(1, 2) }).ok).toBe(true);
    expect(memory.read(0x345ffen, 2)).toEqual(Uint8Array.of(1, 2));
  });

  it('crosses TCE pages that map non-contiguous real pages', () => {
    const { memory, hv, liobn } = setup();
    hv.hcall(H_PUT_TCE, liobn, 0x0n, 0x10000n | 3n);
    hv.hcall(H_PUT_TCE, liobn, 0x1000n, 0x50000n | 3n);
    memory.write(0x10ffen, Uint8Array.of(1, 2));
    memory.write(0x50000n, Uint8Array.of(3, 4));
    expect(hv.dma({ device: DEV, iova: 0xffen, size: 4, write: false })).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3, 4) });
  });

  it('a DMA through the DDW at 2^59 translates with 64 KiB pages', () => {
    const { memory, hv } = setup();
    const r = hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 32]);
    const liobn = BigInt(r.outputs[0]!);
    // IOBA 2^59 + 0x30000 → index 3, real page 0x120000 (64 KiB aligned)
    expect(hv.hcall(H_PUT_TCE, liobn, (1n << 59n) + 0x30000n, 0x120000n | 1n).ret).toBe(H_SUCCESS);
    memory.write(0x12abcdn, Uint8Array.of(0x5a));
    expect(hv.dma({ device: DEV, iova: (1n << 59n) + 0x3abcdn, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x5a) });
  });
});

describe('EEH freeze and recovery', () => {
  it('a DMA outside every window freezes the PE (state 2) and records it; the next DMA is class frozen', () => {
    const { memory, hv, liobn } = setup();
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 3n);
    memory.write(0x10000n, Uint8Array.of(42));
    const r = hv.dma({ device: DEV, iova: 0x1_0000_0000n, size: 4, write: false }); // 4 GiB: beyond the 2 GiB window
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.fault.class).toBe('translation');
    expect(r.fault.code).toBe(PAPR_DMA_ERR_NO_WINDOW);
    expect(r.fault.record).toMatchObject({ peState: 2, configAddr: CFG, frozen: true });
    expect(hv.peState(DEV)).toBe(2);
    expect(hv.freezes(DEV)).toHaveLength(1);
    expect(hv.freezes(DEV)[0]).toMatchObject({ code: PAPR_DMA_ERR_NO_WINDOW, iova: 0x1_0000_0000n, device: DEV, write: false });
    const again = hv.dma({ device: DEV, iova: 0n, size: 1, write: false });
    expect(again.ok).toBe(false);
    if (!again.ok) expect([again.fault.class, again.fault.code]).toEqual(['frozen', 2]);
    // another PE is not affected
    expect(hv.peState(OTHER)).toBe(0);
    expect(hv.rtas('ibm,read-slot-reset-state2', [CFG, BHI, BLO])).toEqual({ status: 0, outputs: [2, 1, 0] });
  });

  it('thaw MMIO (2 → 4), thaw DMA (4 → 0) restore DMA', () => {
    const { memory, hv, liobn } = setup();
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 3n);
    memory.write(0x10000n, Uint8Array.of(42));
    hv.dma({ device: DEV, iova: 0x5000n, size: 1, write: false }); // TCE 00 → freeze
    expect(hv.freezes(DEV)[0]!.code).toBe(PAPR_DMA_ERR_INVALID_TCE);
    expect(hv.rtas('ibm,set-eeh-option', [CFG, BHI, BLO, 3]).status).toBe(-3); // DMA thaw before MMIO thaw
    expect(hv.rtas('ibm,set-eeh-option', [CFG, BHI, BLO, 2]).status).toBe(0);
    expect(hv.rtas('ibm,read-slot-reset-state2', [CFG, BHI, BLO]).outputs[0]).toBe(4);
    const stillDma = hv.dma({ device: DEV, iova: 0n, size: 1, write: false });
    if (!stillDma.ok) expect([stillDma.fault.class, stillDma.fault.code]).toEqual(['frozen', 4]);
    expect(stillDma.ok).toBe(false);
    expect(hv.rtas('ibm,set-eeh-option', [CFG, BHI, BLO, 3]).status).toBe(0);
    expect(hv.peState(DEV)).toBe(0);
    expect(hv.dma({ device: DEV, iova: 0n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(42) });
  });

  it('MMIO of a frozen PE: loads return all ones, stores are dropped; thaw MMIO (state 4) restores MMIO', () => {
    const { hv } = setup();
    expect(hv.mmioStore(DEV, 0x10, 0x1234)).toBe(true);
    expect(hv.mmioLoad(DEV, 0x10)).toBe(0x1234);
    hv.dma({ device: DEV, iova: 0x3_0000_0000n, size: 1, write: false }); // outside every window → freeze
    expect(hv.mmioLoad(DEV, 0x10)).toBe(0xffffffff);
    expect(hv.mmioStore(DEV, 0x10, 0x5678)).toBe(false);
    expect(hv.mmioLoad(OTHER, 0x10)).toBe(0); // the other PE's MMIO works
    hv.rtas('ibm,set-eeh-option', [CFG, BHI, BLO, 2]); // thaw MMIO: state 4
    expect(hv.mmioLoad(DEV, 0x10)).toBe(0x1234);
    expect(hv.dma({ device: DEV, iova: 0n, size: 1, write: false }).ok).toBe(false);
  });

  it('slot reset: activate → 1, deactivate → 0; fundamental reset too; TCEs survive', () => {
    const { memory, hv, liobn } = setup();
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 1n);
    memory.write(0x10000n, Uint8Array.of(7));
    hv.dma({ device: DEV, iova: 0n, size: 1, write: true, data: Uint8Array.of(1) }); // write through read-only
    expect(hv.freezes(DEV)[0]!.code).toBe(PAPR_DMA_ERR_WRITE_PROTECTED);
    expect(memory.read(0x10000n, 1)).toEqual(Uint8Array.of(7)); // nothing written
    expect(hv.rtas('ibm,set-slot-reset', [CFG, BHI, BLO, 1]).status).toBe(0);
    expect(hv.peState(DEV)).toBe(1);
    expect(hv.rtas('ibm,set-slot-reset', [CFG, BHI, BLO, 0]).status).toBe(0);
    expect(hv.peState(DEV)).toBe(0);
    expect(hv.rtas('ibm,set-slot-reset', [CFG, BHI, BLO, 3]).status).toBe(0);
    expect(hv.peState(DEV)).toBe(1);
    hv.rtas('ibm,set-slot-reset', [CFG, BHI, BLO, 0]);
    expect(hv.dma({ device: DEV, iova: 0n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(7) });
    expect(hv.rtas('ibm,set-slot-reset', [CFG, BHI, BLO, 2]).status).toBe(-3);
    expect(hv.rtas('ibm,set-eeh-option', [CFG, BHI, BLO, 9]).status).toBe(-3);
  });

  it('a read through a write-only TCE is a permission fault that freezes; a failed multi-page DMA moves nothing', () => {
    const { memory, hv, liobn } = setup();
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 3n);
    hv.hcall(H_PUT_TCE, liobn, 0x1000n, 0x11000n | 2n);
    const r = hv.dma({ device: DEV, iova: 0x1000n, size: 1, write: false });
    if (!r.ok) expect([r.fault.class, r.fault.code, r.fault.iova]).toEqual(['permission', PAPR_DMA_ERR_READ_PROTECTED, 0x1000n]);
    expect(r.ok).toBe(false);
    hv.rtas('ibm,set-slot-reset', [CFG, BHI, BLO, 1]);
    hv.rtas('ibm,set-slot-reset', [CFG, BHI, BLO, 0]);
    // write spanning page 0 (rw) and page 2 (no TCE): nothing lands in page 0
    const w = hv.dma({ device: DEV, iova: 0xffen, size: 0, write: true, data: Uint8Array.of(1, 2, 3, 4) });
    expect(w.ok).toBe(true); // pages 0 and 1 (write allowed on both)
    const w2 = hv.dma({ device: DEV, iova: 0x1ffen, size: 0, write: true, data: Uint8Array.of(5, 6, 7, 8) });
    expect(w2.ok).toBe(false);
    if (!w2.ok) expect(w2.fault.iova).toBe(0x2000n); // the first byte of page 2
    // the first write put 1,2 at the end of page 0 (0x10ffe) and 3,4 at the start of page 1 (0x11000)
    expect(memory.read(0x10ffen, 2)).toEqual(Uint8Array.of(1, 2));
    expect(memory.read(0x11000n, 2)).toEqual(Uint8Array.of(3, 4));
    // the failed one would have put 5,6 at 0x11ffe: still zero
    expect(memory.read(0x11ffen, 2)).toEqual(Uint8Array.of(0, 0));
  });

  it('a PASID-prefixed DMA is refused without a freeze; an unknown device is blocked', () => {
    const { hv } = setup();
    const r = hv.dma({ device: DEV, iova: 0n, size: 1, write: false, pasid: 1 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.fault.class).toBe('blocked');
    expect(hv.peState(DEV)).toBe(0);
    const u = hv.dma({ device: '0000:00:09.0', iova: 0n, size: 1, write: false });
    if (!u.ok) expect(u.fault.class).toBe('blocked');
    expect(u.ok).toBe(false);
  });
});
