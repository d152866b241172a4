import { describe, expect, it } from 'vitest';
import { PhysicalMemory } from '@ioasid/core';
import { PaprHypervisor } from './hypervisor.js';
import { H_PUT_TCE, H_SUCCESS } from '../spec/hcall.js';

const DEV = '0000:00:02.0';
// config_addr of 00:02.0: bus 0, devfn 2 << 3 = 0x10 → 0x10 << 8 = 0x1000
const CFG = 0x1000;
// BUID 0x800000020000000 → hi 0x08000000, lo 0x20000000
const BHI = 0x08000000;
const BLO = 0x20000000;

function setup(pe: { pageSizeMask?: number; ddw?: boolean; resetExtension?: boolean; largestBlock?: number } = {}) {
  const memory = new PhysicalMemory({ size: 1n << 36n });
  const hv = new PaprHypervisor({ memory, pes: [{ devices: [DEV], ...pe }] });
  return { memory, hv };
}

describe('ibm,query-pe-dma-window', () => {
  it('5-output form: windows available, largest block, page-size mask, migration mask', () => {
    const { hv } = setup();
    // one of the two windows is in use by the default window → 1 available
    expect(hv.rtas('ibm,query-pe-dma-window', [CFG, BHI, BLO])).toEqual({
      status: 0,
      outputs: [1, 0x80000000, 0x03, 0],
    });
  });

  it('6-output form splits the largest block into hi/lo', () => {
    const { hv } = setup({ largestBlock: 2 ** 33 });
    // 2^33 = hi 2, lo 0
    expect(hv.rtas('ibm,query-pe-dma-window', [CFG, BHI, BLO], 6)).toEqual({ status: 0, outputs: [1, 2, 0, 0x03, 0] });
  });

  it('wrong BUID, unknown config_addr or a PE without DDW is a parameter error (−3)', () => {
    expect(setup().hv.rtas('ibm,query-pe-dma-window', [CFG, BHI, BLO + 1]).status).toBe(-3);
    expect(setup().hv.rtas('ibm,query-pe-dma-window', [0x2000, BHI, BLO]).status).toBe(-3);
    expect(setup({ ddw: false }).hv.rtas('ibm,query-pe-dma-window', [CFG, BHI, BLO]).status).toBe(-3);
  });
});

describe('ibm,create-pe-dma-window', () => {
  it('creates a window at 1 << 59 with the LIOBN of window slot 1', () => {
    const { hv } = setup();
    // page shift 16 (64 KiB, mask bit 0x02), window shift 30 (1 GiB) → 2^14 TCEs
    const r = hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 30]);
    // 1 << 59 = hi 0x08000000, lo 0
    expect(r).toEqual({ status: 0, outputs: [0x80000001, 0x08000000, 0] });
    const wins = hv.liobns(DEV);
    expect(wins.map((w) => [w.liobn, w.start, w.size, w.pageShift])).toEqual([
      [0x80000000, 0n, 0x80000000n, 12],
      [0x80000001, 1n << 59n, 1n << 30n, 16],
    ]);
    expect(hv.rtas('ibm,query-pe-dma-window', [CFG, BHI, BLO]).outputs[0]).toBe(0);
  });

  it('rejects a page shift not in the mask, 0–11, a window smaller than a page, too many TCEs (−3)', () => {
    const { hv } = setup();
    expect(hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 24, 30]).status).toBe(-3); // 16 MiB not offered
    expect(hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 11, 30]).status).toBe(-3);
    expect(hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 15]).status).toBe(-3);
    const small = setup({ largestBlock: 1024 });
    // 2^(30−16) = 16384 TCEs > 1024
    expect(small.hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 30]).status).toBe(-3);
    expect(small.hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 26]).status).toBe(0);
  });

  it('a third window is a hardware error (−1), as in QEMU', () => {
    const { hv } = setup();
    expect(hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 12, 30]).status).toBe(0);
    expect(hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 12, 30]).status).toBe(-1);
  });
});

describe('ibm,remove-pe-dma-window and ibm,reset-pe-dma-windows', () => {
  it('removes a DDW; an unknown LIOBN is −3', () => {
    const { hv } = setup();
    hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 30]);
    expect(hv.rtas('ibm,remove-pe-dma-window', [0x80000001]).status).toBe(0);
    expect(hv.liobns(DEV).map((w) => w.liobn)).toEqual([0x80000000]);
    expect(hv.rtas('ibm,remove-pe-dma-window', [0x80000001]).status).toBe(-3);
  });

  it('after removing the default, a new window goes to 0; removing it restores the default', () => {
    const { hv, memory } = setup();
    const def = hv.liobns(DEV)[0]!;
    expect(hv.rtas('ibm,remove-pe-dma-window', [def.liobn]).status).toBe(0);
    expect(hv.liobns(DEV)).toEqual([]);
    const r = hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 32]);
    expect(r.outputs).toEqual([0x80000000, 0, 0]); // slot 0 again, start 0
    expect(hv.hcall(H_PUT_TCE, BigInt(r.outputs[0]!), 0x10000n, 0x10000n | 3n).ret).toBe(H_SUCCESS);
    expect(hv.rtas('ibm,remove-pe-dma-window', [0x80000000]).status).toBe(0);
    const back = hv.liobns(DEV);
    expect(back.map((w) => [w.liobn, w.start, w.size, w.pageShift])).toEqual([[0x80000000, 0n, 0x80000000n, 12]]);
    // the restored default window is clear
    expect(memory.read64(back[0]!.table + 8n)).toBe(0n);
  });

  it('reset removes every DDW and restores the default window (both names)', () => {
    const { hv } = setup();
    hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 30]);
    expect(hv.rtas('ibm,reset-pe-dma-windows', [CFG, BHI, BLO]).status).toBe(0);
    expect(hv.liobns(DEV).map((w) => w.liobn)).toEqual([0x80000000]);
    hv.rtas('ibm,remove-pe-dma-window', [0x80000000]);
    expect(hv.rtas('ibm,reset-pe-dma-window', [CFG, BHI, BLO]).status).toBe(0);
    expect(hv.liobns(DEV).map((w) => w.liobn)).toEqual([0x80000000]);
    expect(setup({ resetExtension: false }).hv.rtas('ibm,reset-pe-dma-windows', [CFG, BHI, BLO]).status).toBe(-3);
  });

  it('device tree describes the default window and the DDW extensions', () => {
    const { hv } = setup();
    expect(hv.deviceTree()).toEqual({
      buid: 0x800000020000000n,
      pes: [
        {
          configAddr: CFG,
          devices: [DEV],
          dmaWindow: { liobn: 0x80000000, busAddress: 0n, size: 0x80000000n, pageShift: 12 },
          ddwApplicable: true,
          ddwExtensions: [2, 1, 1],
        },
      ],
    });
  });

  it('an unknown RTAS service answers −1', () => {
    expect(setup().hv.rtas('ibm,nothing', []).status).toBe(-1);
  });
});
