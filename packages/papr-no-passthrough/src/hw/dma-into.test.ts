import { describe, expect, it } from 'vitest';
import { PhysicalMemory } from '@ioasid/core';
import type { DmaRequest } from '@ioasid/uapi';
import { PaprHypervisor } from './hypervisor.js';
import { H_PUT_TCE, H_STUFF_TCE, H_SUCCESS } from '../spec/hcall.js';
import { PAPR_DMA_ERR_INVALID_TCE, PAPR_DMA_ERR_MEMORY, PAPR_DMA_ERR_NO_WINDOW } from '../spec/dma-error.js';

const DEV = '0000:00:02.0';
const SIBLING = '0000:00:02.1'; // same PE as DEV
const OTHER = '0000:00:03.0'; // a PE of its own
const CFG = 0x1000;
const BHI = 0x08000000;
const BLO = 0x20000000;

function setup(tceCacheEntries?: number) {
  const memory = new PhysicalMemory({ size: 1n << 36n });
  const hv = new PaprHypervisor({
    memory,
    pes: [{ devices: [DEV, SIBLING] }],
    devices: [OTHER],
    ...(tceCacheEntries === undefined ? {} : { tceCacheEntries }),
  });
  const liobn = BigInt(hv.liobns(DEV)[0]!.liobn);
  const otherLiobn = BigInt(hv.liobns(OTHER)[0]!.liobn);
  return { memory, hv, liobn, otherLiobn, table: hv.liobns(DEV)[0]!.table };
}

const rd = (iova: bigint, size: number): DmaRequest => ({ iova, size, write: false });

/** Recovers a frozen PE by a slot reset (the TCE tables survive it). */
function thaw(hv: PaprHypervisor): void {
  hv.rtas('ibm,set-slot-reset', [CFG, BHI, BLO, 1]);
  hv.rtas('ibm,set-slot-reset', [CFG, BHI, BLO, 0]);
}

describe('PaprHypervisor.dmaInto: the non-allocating DMA', () => {
  it('reads into the caller\'s buffer what dma() returns, and touches nothing past the read', () => {
    const { memory, hv, liobn } = setup();
    const bytes = Uint8Array.from({ length: 0x3000 }, (_, i) => (i * 7 + 3) & 0xff);
    memory.write(0x40000n, bytes);
    memory.write(0x90000n, bytes);
    hv.hcall(H_PUT_TCE, liobn, 0x1000n, 0x40000n | 1n);
    hv.hcall(H_PUT_TCE, liobn, 0x2000n, 0x90000n | 1n); // not contiguous with page 1 in memory
    // aligned word, unaligned small reads, a read crossing a word, a big read, one crossing two TCEs
    const cases: [bigint, number][] = [[0x1000n, 4], [0x1001n, 3], [0x1ffdn, 3], [0x1003n, 2], [0x1000n, 64], [0x1010n, 65], [0x1000n, 0x1000], [0x1ffen, 4], [0x1800n, 0x1000]];
    for (const [iova, size] of cases) {
      const into = new Uint8Array(size + 3).fill(0xee);
      expect(hv.dmaInto(DEV, rd(iova, size), into)).toBeUndefined();
      const r = hv.dma({ device: DEV, iova, size, write: false });
      expect(r.ok).toBe(true);
      if (r.ok) expect(into.subarray(0, size)).toEqual(r.data);
      expect([...into.subarray(size)]).toEqual([0xee, 0xee, 0xee]);
    }
    // the second page through its own TCE (0x90000), the first through 0x40000
    const into = new Uint8Array(4);
    hv.dmaInto(DEV, rd(0x1ffen, 4), into);
    expect(into).toEqual(Uint8Array.of(bytes[0xffe]!, bytes[0xfff]!, bytes[0]!, bytes[1]!));
  });

  it('a DMA across more pages than the segment scratch holds reads and writes every page in order', () => {
    const { memory, hv, liobn } = setup();
    const pages = 40;
    // IOMMU page p → real frame 0x40000000 + (pages − 1 − p) · 8 KiB: descending, not contiguous
    const frame = (p: number) => 0x40000000n + BigInt((pages - 1 - p) * 0x2000);
    for (let p = 0; p < pages; p++) {
      expect(hv.hcall(H_PUT_TCE, liobn, BigInt(p) * 0x1000n, frame(p) | 3n).ret).toBe(H_SUCCESS);
      memory.write(frame(p), new Uint8Array(0x1000).fill(p + 1));
    }
    const size = pages * 0x1000 - 0x100;
    const into = new Uint8Array(size);
    expect(hv.dmaInto(DEV, rd(0x80n, size), into)).toBeUndefined();
    for (let i = 0; i < size; i++) {
      if (into[i] !== Math.floor((0x80 + i) / 0x1000) + 1) throw new Error(`byte ${i}: ${into[i]}`);
    }
    const data = Uint8Array.from({ length: size }, (_, i) => (i * 13) & 0xff);
    expect(hv.dmaInto(DEV, { iova: 0x80n, size: 0, write: true, data }, new Uint8Array(0))).toBeUndefined();
    for (let p = 0; p < pages; p++) {
      const from = Math.max(0, p * 0x1000 - 0x80);
      const to = Math.min(size, (p + 1) * 0x1000 - 0x80);
      const at = frame(p) + (p === 0 ? 0x80n : 0n);
      expect(memory.read(at, to - from)).toEqual(data.subarray(from, to));
    }
  });

  it('a page never written reads as zeros', () => {
    const { hv, liobn } = setup();
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x7000n | 1n);
    const into = new Uint8Array(8).fill(0xff);
    expect(hv.dmaInto(DEV, rd(0x10n, 8), into)).toBeUndefined();
    expect(into).toEqual(new Uint8Array(8));
  });

  it('writes take request.data; a failed write moves nothing; faults equal dma()\'s', () => {
    const { memory, hv, liobn } = setup();
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 3n);
    expect(hv.dmaInto(DEV, { iova: 0x10n, size: 0, write: true, data: Uint8Array.of(1, 2, 3) }, new Uint8Array(0))).toBeUndefined();
    expect(memory.read(0x10010n, 3)).toEqual(Uint8Array.of(1, 2, 3));
    const f = hv.dmaInto(DEV, { iova: 0xffen, size: 0, write: true, data: Uint8Array.of(7, 7, 7, 7) }, new Uint8Array(0));
    expect(f).toMatchObject({ class: 'translation', code: PAPR_DMA_ERR_INVALID_TCE, iova: 0x1000n });
    expect(memory.read(0x10ffen, 2)).toEqual(Uint8Array.of(0, 0));
    thaw(hv);
    const g = hv.dmaInto(DEV, rd(0x5000n, 4), new Uint8Array(4));
    thaw(hv);
    const r = hv.dma({ device: DEV, iova: 0x5000n, size: 4, write: false });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.fault).toEqual(g);
  });

  it('a buffer shorter than the read: the DMA is translated (and faults as the PHB would) but moves no byte', () => {
    const { hv, liobn } = setup();
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 1n);
    const into = new Uint8Array(2).fill(0xaa);
    expect(hv.dmaInto(DEV, rd(0n, 4), into)).toMatchObject({ class: 'bad-config' });
    expect(hv.dmaInto(DEV, rd(0xffcn, 8), into)).toMatchObject({ class: 'translation', code: PAPR_DMA_ERR_INVALID_TCE });
    expect(into).toEqual(Uint8Array.of(0xaa, 0xaa));
    expect(hv.peState(DEV)).toBe(2);
  });

  it('a read too long for any buffer through dma() is translated and faults instead of throwing', () => {
    const { hv } = setup();
    expect(() => hv.dma({ device: DEV, iova: 0n, size: 2 ** 40, write: false })).not.toThrow();
    const r = hv.dma({ device: DEV, iova: 0n, size: 2 ** 40, write: false });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.fault.class).toBe('frozen'); // the first froze the PE on TCE 0
    expect(hv.freezes(DEV)[0]!.code).toBe(PAPR_DMA_ERR_INVALID_TCE);
  });

  it('a TCE pointing past memory is an external abort', () => {
    const { memory, hv, table } = setup();
    // H_PUT_TCE refuses such a TCE: store 2^36 | read straight into the table (big-endian)
    memory.write(table, Uint8Array.of(0, 0, 0, 0x10, 0, 0, 0, 0x01));
    expect(hv.dmaInto(DEV, rd(0n, 4), new Uint8Array(4))).toMatchObject({ class: 'external-abort', code: PAPR_DMA_ERR_MEMORY });
  });
});

describe('the PHB never uses a stale resolution of a function, PE state or window', () => {
  it('the last function\'s PE: a freeze caused by a sibling function refuses the next DMA at once', () => {
    const { memory, hv, liobn } = setup();
    memory.write(0x10000n, Uint8Array.of(5));
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 1n);
    const into = new Uint8Array(1);
    expect(hv.dmaInto(DEV, rd(0n, 1), into)).toBeUndefined();
    expect(hv.dmaInto(SIBLING, rd(0x9000n, 1), into)?.code).toBe(PAPR_DMA_ERR_INVALID_TCE); // freezes the shared PE
    expect(hv.dmaInto(DEV, rd(0n, 1), into)).toMatchObject({ class: 'frozen', code: 2 });
    thaw(hv);
    expect(hv.dmaInto(DEV, rd(0n, 1), into)).toBeUndefined();
    expect(into[0]).toBe(5);
  });

  it('alternating functions of different PEs each use their own PE\'s window and state', () => {
    const { memory, hv, liobn, otherLiobn } = setup();
    memory.write(0x10000n, Uint8Array.of(1));
    memory.write(0x20000n, Uint8Array.of(2));
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 1n);
    hv.hcall(H_PUT_TCE, otherLiobn, 0n, 0x20000n | 1n);
    const into = new Uint8Array(1);
    for (let i = 0; i < 3; i++) {
      expect(hv.dmaInto(DEV, rd(0n, 1), into)).toBeUndefined();
      expect(into[0]).toBe(1);
      expect(hv.dmaInto(OTHER, rd(0n, 1), into)).toBeUndefined();
      expect(into[0]).toBe(2);
      expect(hv.dmaInto(SIBLING, rd(0n, 1), into)).toBeUndefined();
      expect(into[0]).toBe(1);
    }
    hv.dmaInto(OTHER, rd(0x1_0000_0000n, 1), into); // freezes OTHER's PE only
    expect(hv.dmaInto(DEV, rd(0n, 1), into)).toBeUndefined();
    expect(hv.dmaInto(OTHER, rd(0n, 1), into)?.class).toBe('frozen');
    // an unknown function after a known one is refused, and the known one still works
    expect(hv.dmaInto('0000:00:09.0', rd(0n, 1), into)?.class).toBe('blocked');
    expect(hv.dmaInto(DEV, rd(0n, 1), into)).toBeUndefined();
  });

  it('a window removed or reset stops translating at the next DMA, though its TCE was cached', () => {
    const { memory, hv } = setup();
    const c = hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 32]);
    const ddw = BigInt(c.outputs[0]!);
    memory.write(0x120000n, Uint8Array.of(9));
    hv.hcall(H_PUT_TCE, ddw, 1n << 59n, 0x120000n | 1n);
    const into = new Uint8Array(1);
    expect(hv.dmaInto(DEV, rd(1n << 59n, 1), into)).toBeUndefined(); // cached now
    expect(into[0]).toBe(9);
    hv.hcall(H_STUFF_TCE, ddw, 1n << 59n, 0n, 1n);
    expect(hv.rtas('ibm,remove-pe-dma-window', [Number(ddw)]).status).toBe(0);
    expect(hv.dmaInto(DEV, rd(1n << 59n, 1), into)).toMatchObject({ class: 'translation', code: PAPR_DMA_ERR_NO_WINDOW });
    thaw(hv);
    // a new DDW with the TCE again, then ibm,reset-pe-dma-windows removes it
    const c2 = hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 32]);
    hv.hcall(H_PUT_TCE, BigInt(c2.outputs[0]!), 1n << 59n, 0x120000n | 1n);
    expect(hv.dmaInto(DEV, rd(1n << 59n, 1), into)).toBeUndefined();
    expect(hv.rtas('ibm,reset-pe-dma-windows', [CFG, BHI, BLO]).status).toBe(0);
    expect(hv.dmaInto(DEV, rd(1n << 59n, 1), into)?.code).toBe(PAPR_DMA_ERR_NO_WINDOW);
  });
});

describe('the PE\'s decode of its last DMA\'s window', () => {
  // data pages far above the TCE tables (a removed window's table frames are reused)
  it('is dropped when a window is created over the same bus addresses in a lower slot', () => {
    const { memory, hv, liobn } = setup();
    memory.write(0x40000000n, Uint8Array.of(1));
    memory.write(0x40010000n, Uint8Array.of(2));
    const first = BigInt(hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 32]).outputs[0]!); // slot 1, at 2^59
    hv.hcall(H_PUT_TCE, first, 1n << 59n, 0x40000000n | 1n);
    const into = new Uint8Array(1);
    expect(hv.dmaInto(DEV, rd(1n << 59n, 1), into)).toBeUndefined(); // decoded: slot 1's window
    expect(into[0]).toBe(1);
    // remove the default window (slot 0): with a window still active, a new one also starts at 2^59
    expect(hv.rtas('ibm,remove-pe-dma-window', [Number(liobn)]).status).toBe(0);
    const second = hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 32]);
    expect(second.outputs.slice(0, 3)).toEqual([Number(liobn), BHI, 0]); // slot 0, at 2^59 too
    hv.hcall(H_PUT_TCE, BigInt(second.outputs[0]!), 1n << 59n, 0x40010000n | 1n);
    // the PHB searches the slots in order: slot 0's window translates now, not the decoded one
    expect(hv.dmaInto(DEV, rd(1n << 59n, 1), into)).toBeUndefined();
    expect(into[0]).toBe(2);
  });

  it('a DMA into another page of the window, or of another window, is decoded again', () => {
    const { memory, hv, liobn } = setup();
    const ddw = BigInt(hv.rtas('ibm,create-pe-dma-window', [CFG, BHI, BLO, 16, 32]).outputs[0]!);
    memory.write(0x40020000n, new Uint8Array(0x1000).fill(1));
    memory.write(0x40030000n, new Uint8Array(0x1000).fill(2));
    memory.write(0x40010000n, new Uint8Array(0x10000).fill(3));
    hv.hcall(H_PUT_TCE, liobn, 0n, 0x40020000n | 1n);
    hv.hcall(H_PUT_TCE, liobn, 0x1000n, 0x40030000n | 1n);
    hv.hcall(H_PUT_TCE, ddw, 1n << 59n, 0x40010000n | 1n);
    const into = new Uint8Array(1);
    const seq: [bigint, number][] = [[0n, 1], [0xfffn, 1], [0x1000n, 2], [0n, 1], [1n << 59n, 3], [0n, 1], [(1n << 59n) + 0xffffn, 3]];
    for (const [iova, want] of seq) {
      expect(hv.dmaInto(DEV, rd(iova, 1), into)).toBeUndefined();
      expect(into[0]).toBe(want);
    }
    // same low word as page 0 of the default window, another high word: outside every window
    expect(hv.dmaInto(DEV, rd(1n << 32n, 1), into)?.code).toBe(PAPR_DMA_ERR_NO_WINDOW);
  });
});

describe('flushTranslationCaches', () => {
  it('empties every window\'s TCE cache, as flushCaches does, and DMAs translate as before', () => {
    for (const flush of ['flushTranslationCaches', 'flushCaches'] as const) {
      const { memory, hv, liobn, otherLiobn, table } = setup();
      memory.write(0x10000n, Uint8Array.of(1));
      memory.write(0x20000n, Uint8Array.of(2));
      hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 1n);
      hv.hcall(H_PUT_TCE, otherLiobn, 0n, 0x10000n | 1n);
      const into = new Uint8Array(1);
      hv.dmaInto(DEV, rd(0n, 1), into);
      hv.dmaInto(OTHER, rd(0n, 1), into);
      // TCE 0 of both tables → 0x20000, behind the hypervisor: the caches keep 0x10000
      memory.write(table, Uint8Array.of(0, 0, 0, 0, 0, 0x02, 0, 0x01));
      memory.write(hv.liobns(OTHER)[0]!.table, Uint8Array.of(0, 0, 0, 0, 0, 0x02, 0, 0x01));
      hv.dmaInto(DEV, rd(0n, 1), into);
      expect(into[0]).toBe(1);
      hv[flush]();
      for (const d of [DEV, OTHER, SIBLING]) {
        expect(hv.dmaInto(d, rd(0n, 1), into)).toBeUndefined();
        expect(into[0]).toBe(2);
      }
    }
  });

  it('is cheap enough to call before every DMA and leaves the PE configuration alone', () => {
    const { memory, hv, liobn } = setup(1);
    expect(hv.hcall(H_PUT_TCE, liobn, 0n, 0x10000n | 1n).ret).toBe(H_SUCCESS);
    memory.write(0x10000n, Uint8Array.of(3));
    const into = new Uint8Array(1);
    for (let i = 0; i < 3000; i++) {
      hv.flushTranslationCaches();
      expect(hv.dmaInto(DEV, rd(0n, 1), into)).toBeUndefined();
    }
    expect(into[0]).toBe(3);
    expect(hv.peState(DEV)).toBe(0);
    expect(hv.liobns(DEV)).toHaveLength(1);
  });
});
