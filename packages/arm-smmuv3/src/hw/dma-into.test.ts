import { describe, expect, it } from 'vitest';
import type { DmaFault } from '@ioasid/uapi';
import { harness } from '../test/hw-harness.js';
import { encodeS1Leaf } from '../spec/pgtable.js';
import { F_TRANSLATION } from '../spec/events.js';
import type { SmmuDmaRequest } from './smmu-v3.js';

const VA = 0x12345000;
const PA = 0x40000000;
/** The second page of VA maps to a PA that is not next to the first (a transfer in two pieces). */
const PA2 = 0x40003000;
/** VA + 3 pages maps here: a frame nothing ever wrote. */
const UNWRITTEN = 0x50000000;

/**
 * STE 1 → CD (ASID 5) → 4K stage-1 table: VA → PA, VA + 4K → PA2 and VA + 12K → UNWRITTEN, RW
 * user pages; VA + 8K is not mapped.
 */
function setup(cd: object = {}) {
  const h = harness();
  const cdAddr = h.alloc(64);
  const root = h.alloc(4096);
  h.writeCd(cdAddr, { V: 1, AA64: 1, T0SZ: 16, TG0: 0, IPS: 5, EPD1: 1, R: 1, A: 1, ASID: 5, TTB0: root, ...cd });
  h.writeSte(1, { V: 1, Config: 5, S1ContextPtr: cdAddr });
  h.map(root, VA, encodeS1Leaf({ pa: PA, page: true, af: true, ng: true, ap: 0b01 }));
  h.map(root, VA + 4096, encodeS1Leaf({ pa: PA2, page: true, af: true, ng: true, ap: 0b01 }));
  h.map(root, VA + 3 * 4096, encodeS1Leaf({ pa: UNWRITTEN, page: true, af: true, ng: true, ap: 0b01 }));
  const bytes = new Uint8Array(4096);
  for (let i = 0; i < 4096; i++) bytes[i] = (i * 7 + 1) & 0xff;
  h.memory.write(BigInt(PA), bytes);
  h.memory.write(BigInt(PA2), bytes.map((b) => b ^ 0xff));
  return { h, bytes };
}

/** A buffer full of 0xee: a byte the model did not write shows. */
const dirty = (n: number) => new Uint8Array(n).fill(0xee);

describe('dmaInto: the non-allocating DMA entry point', () => {
  it('reads the same bytes as dma() into the caller\'s buffer, at every small size and offset', () => {
    const { h } = setup();
    for (const off of [0, 1, 3, 4, 4092, 4093, 4095, 4096 + 5]) {
      for (let size = 0; size <= 20; size++) {
        const req: SmmuDmaRequest = { streamId: 1, iova: BigInt(VA + off), size, write: false };
        const into = dirty(size + 3);
        expect(h.hw.dmaInto(req, into)).toBeUndefined();
        const r = h.hw.dma(req);
        expect(r.ok).toBe(true);
        if (r.ok) {
          expect(into.subarray(0, size)).toEqual(r.data);
          expect(r.data).toHaveLength(size);
        }
        expect(into.subarray(size)).toEqual(dirty(3)); // nothing past the read
      }
    }
  });

  it('a read across two pages (two translations) lands whole; so does a large one', () => {
    const { h, bytes } = setup();
    const into = dirty(4096);
    expect(h.hw.dmaInto({ streamId: 1, iova: BigInt(VA + 2048), size: 4096, write: false }, into)).toBeUndefined();
    expect(into.subarray(0, 2048)).toEqual(bytes.subarray(2048));
    expect(into.subarray(2048)).toEqual(bytes.subarray(0, 2048).map((b) => b ^ 0xff));
  });

  it('a frame never written reads as zeros (not the buffer\'s old bytes)', () => {
    const { h } = setup();
    const into = dirty(8);
    expect(h.hw.dmaInto({ streamId: 1, iova: BigInt(VA + 3 * 4096 + 8), size: 8, write: false }, into)).toBeUndefined();
    expect(into).toEqual(new Uint8Array(8));
  });

  it('writes take req.data and leave `into` alone', () => {
    const { h } = setup();
    const into = dirty(4);
    expect(h.hw.dmaInto({ streamId: 1, iova: BigInt(VA + 4094), size: 0, write: true, data: Uint8Array.of(1, 2, 3, 4) }, into)).toBeUndefined();
    expect(into).toEqual(dirty(4));
    expect(h.memory.read(BigInt(PA + 4094), 2)).toEqual(Uint8Array.of(1, 2));
    expect(h.memory.read(BigInt(PA2), 2)).toEqual(Uint8Array.of(3, 4));
  });

  it('a fault is the same record dma() returns, and no byte of the buffer moves', () => {
    const a = setup();
    const b = setup();
    const req: SmmuDmaRequest = { streamId: 1, iova: BigInt(VA + 4096 * 2), size: 4, write: false };
    const into = dirty(4);
    const f = a.h.hw.dmaInto(req, into);
    const r = b.h.hw.dma(req);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(f).toEqual(r.fault);
    expect(f?.code).toBe(F_TRANSLATION);
    expect(into).toEqual(dirty(4));
    expect(a.h.events()).toEqual(b.h.events());
  });

  it('a read whose second page faults moves no byte (every page translates first)', () => {
    const { h } = setup();
    const into = dirty(8192);
    const f = h.hw.dmaInto({ streamId: 1, iova: BigInt(VA + 4096 + 100), size: 8000, write: false }, into);
    expect(f?.class).toBe('translation');
    expect(f?.iova).toBe(BigInt(VA + 8192));
    expect(into).toEqual(dirty(8192));
  });

  it('CD.A=0 (RAZ/WI): a terminated read fills the caller\'s buffer with zeros, also across pages', () => {
    const { h, bytes } = setup({ A: 0 });
    const one = dirty(4);
    expect(h.hw.dmaInto({ streamId: 1, iova: 0x9000n, size: 4, write: false }, one)).toBeUndefined();
    expect(one).toEqual(new Uint8Array(4));
    // The first page translates, the second terminates: its bytes are zero.
    const two = dirty(8192);
    expect(h.hw.dmaInto({ streamId: 1, iova: BigInt(VA + 4096 + 4000), size: 8000, write: false }, two)).toBeUndefined();
    expect(two.subarray(0, 96)).toEqual(bytes.subarray(4000).map((b) => b ^ 0xff));
    expect(two.subarray(96, 8000)).toEqual(new Uint8Array(8000 - 96));
    expect(two.subarray(8000)).toEqual(dirty(192));
  });

  it('a buffer shorter than the read is a RangeError before anything is issued', () => {
    const { h } = setup();
    expect(() => h.hw.dmaInto({ streamId: 1, iova: 0x9000n, size: 4, write: false }, new Uint8Array(3))).toThrow(RangeError);
    expect(h.events()).toEqual([]); // the unmapped IOVA was never translated
  });

  it('sizes as core counts them: a negative or non-numeric size reads nothing, a fraction rounds down', () => {
    const { h, bytes } = setup();
    const none = dirty(2);
    for (const size of [-1, Number.NaN, 0.5]) {
      expect(h.hw.dmaInto({ streamId: 1, iova: BigInt(VA), size, write: false }, none)).toBeUndefined();
      expect(h.hw.dma({ streamId: 1, iova: BigInt(VA), size, write: false })).toEqual({ ok: true, data: new Uint8Array(0) });
    }
    expect(none).toEqual(dirty(2));
    expect(h.hw.dma({ streamId: 1, iova: BigInt(VA), size: 2.9, write: false })).toEqual({ ok: true, data: bytes.subarray(0, 2) });
  });

  it('the input address is taken modulo 2^64, and a fault reports it so', () => {
    const { h, bytes } = setup();
    const wrapped = (1n << 64n) + BigInt(VA);
    expect(h.hw.dma({ streamId: 1, iova: wrapped, size: 2, write: false })).toEqual({ ok: true, data: bytes.subarray(0, 2) });
    const f: DmaFault | undefined = h.hw.dmaInto({ streamId: 1, iova: -1n, size: 1, write: false }, dirty(1));
    expect(f?.iova).toBe((1n << 64n) - 1n); // TTB1 half with EPD1 set
    const high = h.hw.dmaInto({ streamId: 1, iova: 1n << 60n, size: 1, write: false }, dirty(1));
    expect(high?.iova).toBe(1n << 60n);
  });

  it('endpointDmaInto: the platform request, with its PASID as the SubstreamID', () => {
    const { h, bytes } = setup();
    const into = dirty(3);
    expect(h.hw.endpointDmaInto(1, { iova: BigInt(VA + 1), size: 3, write: false }, false, into)).toBeUndefined();
    expect(into).toEqual(bytes.subarray(1, 4));
    expect(h.hw.endpointDma(1, { iova: BigInt(VA + 1), size: 3, write: false }, false)).toEqual({ ok: true, data: bytes.subarray(1, 4) });
    // The STE has no CD table: a SubstreamID is C_BAD_SUBSTREAMID.
    expect(h.hw.endpointDmaInto(1, { iova: BigInt(VA), size: 1, write: false, pasid: 3 }, false, dirty(1))?.name).toBe('C_BAD_SUBSTREAMID');
  });
});
