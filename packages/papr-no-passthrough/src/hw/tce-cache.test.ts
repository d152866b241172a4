import { describe, expect, it } from 'vitest';
import { PhysicalMemory } from '@ioasid/core';
import { PaprHypervisor } from './hypervisor.js';
import { H_PUT_TCE, H_PUT_TCE_INDIRECT, H_STUFF_TCE, H_SUCCESS } from '../spec/hcall.js';
import { PAPR_DMA_ERR_INVALID_TCE, PAPR_DMA_ERR_WRITE_PROTECTED } from '../spec/dma-error.js';

const DEV = '0000:00:02.0';
const CFG = 0x1000;
const BHI = 0x08000000;
const BLO = 0x20000000;

function setup(tceCacheEntries?: number) {
  const memory = new PhysicalMemory({ size: 1n << 36n });
  const hv = new PaprHypervisor({ memory, devices: [DEV], ...(tceCacheEntries === undefined ? {} : { tceCacheEntries }) });
  const win = hv.liobns(DEV)[0]!;
  return { memory, hv, liobn: BigInt(win.liobn), table: win.table };
}

const read = (hv: PaprHypervisor, iova: bigint, size = 1) => hv.dma({ device: DEV, iova, size, write: false });

/** Recovers a frozen PE by a slot reset (the TCE tables survive it). */
function thaw(hv: PaprHypervisor): void {
  hv.rtas('ibm,set-slot-reset', [CFG, BHI, BLO, 1]);
  hv.rtas('ibm,set-slot-reset', [CFG, BHI, BLO, 0]);
}

describe('the PHB TCE cache', () => {
  for (const entries of [512, 1, 0]) {
    it(`stays coherent with every TCE hcall (${entries} entries)`, () => {
      const { memory, hv, liobn } = setup(entries);
      memory.write(0x10000n, Uint8Array.of(1));
      memory.write(0x20000n, Uint8Array.of(2));
      memory.write(0x30000n, Uint8Array.of(3));
      // H_PUT_TCE over a cached entry: the next DMA sees the new page
      expect(hv.hcall(H_PUT_TCE, liobn, 0x5000n, 0x10000n | 3n).ret).toBe(H_SUCCESS);
      expect(read(hv, 0x5000n)).toEqual({ ok: true, data: Uint8Array.of(1) });
      expect(hv.hcall(H_PUT_TCE, liobn, 0x5000n, 0x20000n | 3n).ret).toBe(H_SUCCESS);
      expect(read(hv, 0x5000n)).toEqual({ ok: true, data: Uint8Array.of(2) });
      // H_PUT_TCE_INDIRECT over cached entries
      memory.write(0x40000n, Uint8Array.of(0, 0, 0, 0, 0, 0x03, 0, 0x03));
      expect(hv.hcall(H_PUT_TCE_INDIRECT, liobn, 0x5000n, 0x40000n, 1n).ret).toBe(H_SUCCESS);
      expect(read(hv, 0x5000n)).toEqual({ ok: true, data: Uint8Array.of(3) });
      // a read-only TCE replaces a read/write one: a write through it now freezes the PE
      expect(hv.hcall(H_PUT_TCE, liobn, 0x5000n, 0x30000n | 1n).ret).toBe(H_SUCCESS);
      const w = hv.dma({ device: DEV, iova: 0x5000n, size: 0, write: true, data: Uint8Array.of(9) });
      expect(w.ok).toBe(false);
      if (!w.ok) expect(w.fault.code).toBe(PAPR_DMA_ERR_WRITE_PROTECTED);
      thaw(hv);
      // H_STUFF_TCE clearing it: the next DMA faults on the page-fault TCE
      expect(read(hv, 0x5000n).ok).toBe(true);
      expect(hv.hcall(H_STUFF_TCE, liobn, 0x4000n, 0n, 4n).ret).toBe(H_SUCCESS);
      const r = read(hv, 0x5000n);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.fault.code).toBe(PAPR_DMA_ERR_INVALID_TCE);
      expect(memory.read(0x30000n, 1)).toEqual(Uint8Array.of(3));
    });
  }

  it('entries that share a cache slot evict each other and still translate', () => {
    const { memory, hv, liobn } = setup(2);
    for (let i = 0n; i < 8n; i++) {
      memory.write(0x100000n + i * 0x1000n, Uint8Array.of(Number(i) + 1));
      hv.hcall(H_PUT_TCE, liobn, i * 0x1000n, (0x100000n + i * 0x1000n) | 1n);
    }
    for (let round = 0; round < 2; round++) {
      for (let i = 0n; i < 8n; i++) expect(read(hv, i * 0x1000n)).toEqual({ ok: true, data: Uint8Array.of(Number(i) + 1) });
    }
    // a DMA across pages 2..4 gathers from three TCEs
    expect(read(hv, 0x2fffn, 0x1002).ok).toBe(true);
  });

  it('keeps a TCE that was changed behind the hypervisor until flushCaches', () => {
    const { memory, hv, liobn, table } = setup();
    memory.write(0x10000n, Uint8Array.of(1));
    memory.write(0x20000n, Uint8Array.of(2));
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 3n);
    expect(read(hv, 0n)).toEqual({ ok: true, data: Uint8Array.of(1) });
    // store TCE 0 = 0x20000 | rw straight into the table's memory, as no hcall does
    memory.write(table, Uint8Array.of(0, 0, 0, 0, 0, 0x02, 0, 0x03));
    expect(read(hv, 0n)).toEqual({ ok: true, data: Uint8Array.of(1) }); // the cached TCE
    hv.flushCaches();
    expect(read(hv, 0n)).toEqual({ ok: true, data: Uint8Array.of(2) }); // fetched again
  });

  it('every flush empties the cache, through the wrap of its epochs', () => {
    const { memory, hv, liobn, table } = setup(4);
    memory.write(0x10000n, Uint8Array.of(1));
    memory.write(0x20000n, Uint8Array.of(2));
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 1n);
    for (let i = 0; i < 2 ** 11 + 5; i++) {
      const page = i % 2 === 0 ? 1 : 2; // real page 0x10000 or 0x20000, which hold 1 and 2
      memory.write(table, Uint8Array.of(0, 0, 0, 0, 0, page, 0, 0x01)); // behind the hypervisor
      hv.flushCaches();
      expect(read(hv, 0n)).toEqual({ ok: true, data: Uint8Array.of(page) });
    }
  });

  it('flushCaches empties every window and a DMA after it translates as before', () => {
    const { memory, hv, liobn } = setup();
    const c = hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 32]);
    const ddw = BigInt(c.outputs[0]!);
    memory.write(0x120000n, Uint8Array.of(7, 8));
    hv.hcall(H_PUT_TCE, liobn, 0x1000n, 0x120000n | 1n);
    hv.hcall(H_PUT_TCE, ddw, 1n << 59n, 0x120000n | 1n);
    for (let i = 0; i < 3; i++) {
      expect(read(hv, 0x1001n)).toEqual({ ok: true, data: Uint8Array.of(8) });
      expect(read(hv, (1n << 59n) + 1n)).toEqual({ ok: true, data: Uint8Array.of(8) });
      hv.flushCaches();
    }
  });

  it('a stale cached TCE that a DMA cannot use is fetched again before the PE is frozen', () => {
    const { memory, hv, liobn, table } = setup();
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 1n); // read-only
    expect(read(hv, 0n).ok).toBe(true);
    memory.write(table, Uint8Array.of(0, 0, 0, 0, 0, 0x01, 0, 0x03)); // read/write behind the hypervisor
    // the cache says read-only, the table read/write: the write goes by the table
    expect(hv.dma({ device: DEV, iova: 0n, size: 0, write: true, data: Uint8Array.of(5) }).ok).toBe(true);
    expect(memory.read(0x10000n, 1)).toEqual(Uint8Array.of(5));
    expect(hv.peState(DEV)).toBe(0);
  });

  it('refuses a cache size that is not 0 or a power of two', () => {
    const memory = new PhysicalMemory({ size: 1n << 36n });
    for (const bad of [3, -1, 1.5, 2 ** 21]) {
      expect(() => new PaprHypervisor({ memory, devices: [DEV], tceCacheEntries: bad })).toThrow(/TCE cache size/);
    }
  });
});
