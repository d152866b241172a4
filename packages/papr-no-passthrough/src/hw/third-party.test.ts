import { describe, expect, it } from 'vitest';
import { PhysicalMemory } from '@ioasid/core';
import { PaprHypervisor } from './hypervisor.js';

// A third party's guest driver: it knows LoPAR's numbers, not this package's code.
const H_SUCCESS = 0;
const H_STUFF_TCE = 0x138;
const H_PUT_TCE_INDIRECT = 0x13c;

describe('a third party drives the hypervisor by hcalls and RTAS alone', () => {
  it('reads the device tree, creates a DDW, maps by an indirect list, DMAs, clears, freezes, recovers', () => {
    const memory = new PhysicalMemory({ size: 1n << 33n });
    const hv = new PaprHypervisor({ memory, devices: ['0000:01:00.0'] });
    const [pe] = hv.deviceTree().pes;
    // config_addr of 01:00.0 = (1 << 16) | (0 << 8)
    expect(pe!.configAddr).toBe(0x10000);
    const buidHi = Number(hv.buid >> 32n);
    const buidLo = Number(hv.buid & 0xffffffffn);

    // DDW: query (page mask 0x03 → 64 KiB is the largest), create a 1 GiB window of 64 KiB pages
    const q = hv.rtas('ibm,query-pe-dma-window', [pe!.configAddr, buidHi, buidLo]);
    expect(q.status).toBe(0);
    expect(q.outputs[2]! & 0x2).toBe(0x2);
    const c = hv.rtas('ibm,create-pe-dma-window', [pe!.configAddr, buidHi, buidLo, 16, 30]);
    expect(c.status).toBe(0);
    const liobn = BigInt(c.outputs[0]!);
    const start = (BigInt(c.outputs[1]!) << 32n) | BigInt(c.outputs[2]!);
    expect(start).toBe(1n << 59n);

    // two 64 KiB pages at real 0x200000 and 0x300000, read/write, in a big-endian list page at 0x10000
    const list = 0x10000n;
    const tces = [0x200000n | 3n, 0x300000n | 3n];
    tces.forEach((t, i) => {
      const bytes = Uint8Array.from({ length: 8 }, (_, k) => Number((t >> BigInt(56 - 8 * k)) & 0xffn));
      memory.write(list + BigInt(8 * i), bytes);
    });
    expect(hv.hcall(H_PUT_TCE_INDIRECT, liobn, start, list, 2n).ret).toBe(H_SUCCESS);

    // the device writes across the two IOMMU pages: the end of page 0 → real 0x20fffe, page 1 → 0x300000
    const dev = '0000:01:00.0';
    expect(hv.dma({ device: dev, iova: start + 0xfffen, size: 0, write: true, data: Uint8Array.of(1, 2, 3, 4) }).ok).toBe(true);
    expect(memory.read(0x20fffen, 2)).toEqual(Uint8Array.of(1, 2));
    expect(memory.read(0x300000n, 2)).toEqual(Uint8Array.of(3, 4));

    // clear both, and the next DMA freezes the PE
    expect(hv.hcall(H_STUFF_TCE, liobn, start, 0n, 2n).ret).toBe(H_SUCCESS);
    expect(hv.dma({ device: dev, iova: start, size: 1, write: false }).ok).toBe(false);
    expect(hv.rtas('ibm,read-slot-reset-state2', [pe!.configAddr, buidHi, buidLo]).outputs).toEqual([2, 1, 0]);

    // EEH recovery by reset
    expect(hv.rtas('ibm,set-slot-reset', [pe!.configAddr, buidHi, buidLo, 1]).status).toBe(0);
    expect(hv.rtas('ibm,set-slot-reset', [pe!.configAddr, buidHi, buidLo, 0]).status).toBe(0);
    expect(hv.rtas('ibm,read-slot-reset-state2', [pe!.configAddr, buidHi, buidLo]).outputs[0]).toBe(0);

    // remove the DDW: only the default window remains
    expect(hv.rtas('ibm,remove-pe-dma-window', [Number(liobn)]).status).toBe(0);
    expect(hv.liobns(dev).map((w) => w.start)).toEqual([0n]);
  });
});
