import { PhysicalMemory } from '@ioasid/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtioIommuDevice } from './device.js';
import { Iotlb } from './iotlb.js';
import { MapCache } from './map-cache.js';
import { EP, EXT, attach, attachTable, detach, map, status, unmap } from './request-bytes.test-util.js';

/** ATTACH_TABLE with an LPAE stage-1 table at `ttbr0` (T0SZ 16). */
const attachLpae = (domain: number, ttbr0: bigint) => attachTable({ domain, flags: 0, format: 1, ttbr0 });
/** Writes a 4-level LPAE table for va → pa (tables at base, base+4K, …). */
function lpae(memory: PhysicalMemory, base: number, va: bigint, pa: bigint): void {
  const idx = [39n, 30n, 21n, 12n].map((s) => (va >> s) & 511n);
  for (let l = 0; l < 3; l++) memory.write64(BigInt(base + l * 4096) + idx[l]! * 8n, BigInt(base + (l + 1) * 4096) | 3n);
  memory.write64(BigInt(base + 3 * 4096) + idx[3]! * 8n, pa | 0x743n);
}

function dev(profile: 'strict' | 'qemu' = 'strict', features?: bigint) {
  const memory = new PhysicalMemory({ size: 1n << 32n });
  return { memory, d: new VirtioIommuDevice({ memory, endpoints: [EP], profile, ...(features === undefined ? {} : { features }) }) };
}

const read = (d: VirtioIommuDevice, iova: bigint, size = 1) => {
  const r = d.dma({ endpoint: EP, iova, size, write: false });
  return r.ok ? Array.from(r.data) : r.fault.class;
};

describe('Iotlb (typed arrays, oldest evicted first)', () => {
  /** The reference: the insertion-ordered Map the cache replaced. */
  class MapIotlb {
    readonly map = new Map<number, number>();
    constructor(readonly capacity: number) {}
    lookup(ctx: number, vpn: number) {
      return this.map.get(ctx * 2 ** 36 + vpn) ?? -1;
    }
    insert(ctx: number, vpn: number, value: number) {
      if (this.capacity <= 0) return;
      if (this.map.size >= this.capacity) this.map.delete(this.map.keys().next().value!);
      this.map.set(ctx * 2 ** 36 + vpn, value);
    }
    invalidateContext(ctx: number) {
      for (const k of this.map.keys()) if (Math.floor(k / 2 ** 36) === ctx) this.map.delete(k);
    }
    invalidateRange(ctx: number, vpn: number, count: number) {
      for (const k of this.map.keys()) {
        const v = k - ctx * 2 ** 36;
        if (Math.floor(k / 2 ** 36) === ctx && v >= vpn && v < vpn + count) this.map.delete(k);
      }
    }
  }
  const vpn = fc.oneof(fc.nat({ max: 40 }), fc.integer({ min: 2 ** 36 - 20, max: 2 ** 36 - 1 }));
  const op = fc.oneof(
    { weight: 5, arbitrary: fc.record({ t: fc.constant('access' as const), ctx: fc.integer({ min: 1, max: 4 }), vpn, value: fc.nat({ max: 2 ** 40 }) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('ctx' as const), ctx: fc.integer({ min: 1, max: 4 }) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('range' as const), ctx: fc.integer({ min: 1, max: 4 }), vpn, count: fc.integer({ min: 1, max: 64 }) }) },
    { weight: 1, arbitrary: fc.constant({ t: 'clear' as const }) },
  );
  it('holds, evicts and drops exactly what an insertion-ordered Map of `capacity` entries does', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 24 }), fc.array(op, { maxLength: 300 }), (capacity, ops) => {
        const t = new Iotlb(capacity);
        const r = new MapIotlb(capacity);
        for (const o of ops) {
          if (o.t === 'access') {
            const got = t.lookup(o.ctx, o.vpn);
            expect(got).toBe(r.lookup(o.ctx, o.vpn));
            if (got < 0) {
              t.insert(o.ctx, o.vpn, o.value);
              r.insert(o.ctx, o.vpn, o.value);
            }
          } else if (o.t === 'ctx') {
            t.invalidateContext(o.ctx);
            r.invalidateContext(o.ctx);
          } else if (o.t === 'range') {
            t.invalidateRange(o.ctx, o.vpn, o.count);
            r.invalidateRange(o.ctx, o.vpn, o.count);
          } else {
            t.clear();
            r.map.clear();
          }
          expect(t.size).toBe(r.map.size);
        }
        for (const k of r.map.keys()) expect(t.lookup(Math.floor(k / 2 ** 36), k % 2 ** 36)).toBe(r.map.get(k));
      }),
      { seed: 0x10b, numRuns: 300 },
    );
  });
});

describe('MAP/UNMAP translation cache', () => {
  it('caches a page on first use; UNMAP drops it before completing; the domain ID reused is a new domain', () => {
    const { d, memory } = dev();
    memory.write(0x5000n, Uint8Array.of(0x11));
    memory.write(0x7000n, Uint8Array.of(0x22));
    d.request(attach(1));
    d.request(map(1, 0x100000n, 0x100fffn, 0x5000n));
    expect(d.mapCache.size).toBe(0);
    expect(read(d, 0x100000n)).toEqual([0x11]);
    expect(d.mapCache.size).toBe(1);
    expect(read(d, 0x100000n)).toEqual([0x11]);
    expect(status(d.request(unmap(1, 0x100000n, 0x100fffn)))).toBe(0);
    expect(d.mapCache.size).toBe(0);
    expect(read(d, 0x100000n)).toBe('translation');
    d.request(map(1, 0x100000n, 0x100fffn, 0x7000n));
    expect(read(d, 0x100000n)).toEqual([0x22]);
    // The last endpoint leaves: domain 1 goes with its mappings; a new domain 1 starts empty.
    expect(status(d.request(detach(1)))).toBe(0);
    d.request(attach(1));
    expect(read(d, 0x100000n)).toBe('translation');
  });

  it('an IOVA outside [0, 2^64) is an address-size fault, even when its value modulo 2^64 is cached', () => {
    const { d } = dev();
    d.request(attach(1));
    d.request(map(1, 0x100000n, 0x100fffn, 0x5000n));
    expect(read(d, 0x100000n)).toEqual([0]);
    expect(read(d, (1n << 64n) + 0x100000n)).toBe('address-size');
    expect(read(d, 0x100000n - (1n << 64n))).toBe('address-size');
    expect(read(d, -1n)).toBe('address-size');
    expect(read(d, 0x100000n)).toEqual([0]);
  });

  it('a read-only mapping stays read-only from the cache', () => {
    const { d } = dev();
    d.request(attach(1));
    d.request(map(1, 0x100000n, 0x100fffn, 0x5000n, 1));
    expect(read(d, 0x100000n)).toEqual([0]);
    const w = d.dma({ endpoint: EP, iova: 0x100000n, size: 0, write: true, data: Uint8Array.of(1) });
    expect(w.ok ? '' : w.fault.class).toBe('permission');
  });

  it('pages two unaligned mappings share (QEMU) and RESV_MEM pages are never cached', () => {
    const { d, memory } = dev('qemu');
    memory.write(0x5000n, Uint8Array.of(0xaa));
    memory.write(0x9800n, Uint8Array.of(0xbb));
    d.request(attach(1));
    expect(status(d.request(map(1, 0x100000n, 0x1007ffn, 0x5000n)))).toBe(0);
    expect(status(d.request(map(1, 0x100800n, 0x100fffn, 0x9800n)))).toBe(0);
    for (let k = 0; k < 3; k++) {
      expect(read(d, 0x100000n)).toEqual([0xaa]);
      expect(read(d, 0x100800n)).toEqual([0xbb]);
    }
    expect(d.mapCache.size).toBe(0);
    // QEMU takes a mapping over the MSI window; DMA writes there stay interrupt messages.
    expect(status(d.request(map(1, 0xfee00000n, 0xfee00fffn, 0x6000n)))).toBe(0);
    for (let k = 0; k < 3; k++) expect(d.dma({ endpoint: EP, iova: 0xfee00000n, size: 0, write: true, data: Uint8Array.of(1) }).ok).toBe(true);
    expect(d.msiWrites).toBe(3);
    expect(d.mapCache.size).toBe(0);
  });

  it('a DMA across pages and an UNMAP of a range wider than the cache', () => {
    const memory = new PhysicalMemory({ size: 1n << 32n });
    const d = new VirtioIommuDevice({ memory, endpoints: [EP], mapCacheEntries: 4 });
    d.request(attach(1));
    d.request(map(1, 0x100000n, 0x10ffffn, 0x200000n));
    memory.write(0x200ffen, Uint8Array.of(1, 2, 3, 4));
    expect(read(d, 0x100ffen, 4)).toEqual([1, 2, 3, 4]);
    for (let p = 0n; p < 16n; p++) expect(read(d, 0x100800n + p * 0x1000n)).toEqual([0]);
    expect(d.mapCache.size).toBe(4);
    expect(status(d.request(unmap(1, 0x100000n, 0x10ffffn)))).toBe(0);
    expect(d.mapCache.size).toBe(0);
    expect(read(d, 0x10f000n)).toBe('translation');
    expect(() => new MapCache(3)).toThrow(RangeError);
  });
});

describe('flushCaches', () => {
  it('empties the MAP/UNMAP cache and the stage-1 TLB, stale entries included; translations are walked again', () => {
    const { d, memory } = dev('strict', EXT);
    d.request(attach(1));
    d.request(map(1, 0x100000n, 0x100fffn, 0x5000n));
    memory.write(0x5000n, Uint8Array.of(0x33));
    expect(read(d, 0x100000n)).toEqual([0x33]);
    expect(d.mapCache.size).toBe(1);
    d.flushCaches();
    expect(d.mapCache.size).toBe(0);
    expect(read(d, 0x100000n)).toEqual([0x33]);
    // Stage 1: the guest changes its table without INVALIDATE; the stale entry serves until the flush.
    const t = dev('strict', EXT);
    lpae(t.memory, 0x20000, 0x4000_0000n, 0x9000n);
    t.memory.write(0x9000n, Uint8Array.of(0xa1));
    t.memory.write(0xa000n, Uint8Array.of(0xb2));
    expect(status(t.d.request(attachLpae(1, 0x20000n)))).toBe(0);
    expect(read(t.d, 0x4000_0000n)).toEqual([0xa1]);
    lpae(t.memory, 0x20000, 0x4000_0000n, 0xa000n);
    expect(read(t.d, 0x4000_0000n)).toEqual([0xa1]);
    expect(t.d.iotlb.size).toBe(1);
    t.d.flushCaches();
    expect(t.d.iotlb.size).toBe(0);
    expect(read(t.d, 0x4000_0000n)).toEqual([0xb2]);
  });

  it('reports the bytes of the mapping records it holds', () => {
    const { d } = dev();
    d.request(attach(1));
    expect(d.mappingStats()).toEqual({ mappings: 0, bytes: 0 });
    for (let i = 0n; i < 300n; i++) d.request(map(1, 0x100000n + i * 0x2000n, 0x100fffn + i * 0x2000n, i * 0x1000n));
    const s = d.mappingStats();
    expect(s.mappings).toBe(300);
    expect(s.bytes).toBe(2 * 256 * 28); // two chunks of 256 seven-word records
  });
});

describe('dmaInto (the non-allocating DMA)', () => {
  const JUNK = 0xee;
  const buffer = (n: number) => new Uint8Array(n).fill(JUNK);

  it('reads exactly what dma() returns into the caller\'s buffer, at every offset and size, cached or not', () => {
    const { d, memory } = dev();
    d.request(attach(1));
    d.request(map(1, 0x100000n, 0x102fffn, 0x5000n));
    const bytes = Uint8Array.from({ length: 0x3000 }, (_, i) => (i * 7 + 3) & 0xff);
    memory.write(0x5000n, bytes);
    for (const size of [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 64, 0x1001]) {
      for (const off of [0, 1, 2, 3, 4, 0xffc, 0xffd, 0x1ffe]) {
        const iova = 0x100000n + BigInt(off);
        const want = d.dma({ endpoint: EP, iova, size, write: false });
        expect(want.ok).toBe(true);
        if (!want.ok) continue;
        expect(Array.from(want.data)).toEqual(Array.from(bytes.subarray(off, off + size)));
        for (const flush of [false, true]) {
          if (flush) d.flushCaches();
          const into = buffer(size + 2);
          expect(d.dmaInto(EP, { iova, size, write: false }, into)).toBeUndefined();
          expect(Array.from(into.subarray(0, size))).toEqual(Array.from(want.data));
          expect(Array.from(into.subarray(size))).toEqual([JUNK, JUNK]); // nothing past the read
        }
      }
    }
  });

  it('reads zeros from a frame never written, and floors a fractional size as dma() does', () => {
    const { d } = dev();
    d.request(attach(1));
    d.request(map(1, 0x100000n, 0x100fffn, 0x5000n));
    const into = buffer(8);
    expect(d.dmaInto(EP, { iova: 0x100002n, size: 4, write: false }, into)).toBeUndefined();
    expect(d.dmaInto(EP, { iova: 0x100002n, size: 4, write: false }, into)).toBeUndefined(); // cached now
    expect(Array.from(into)).toEqual([0, 0, 0, 0, JUNK, JUNK, JUNK, JUNK]);
    const r = d.dma({ endpoint: EP, iova: 0x100000n, size: 2.5, write: false });
    expect(r.ok && r.data.length).toBe(2);
  });

  it('a fault returns the same record as dma(), builds it only then, and leaves the buffer and memory untouched', () => {
    const { d, memory } = dev();
    d.request(attach(1));
    d.request(map(1, 0x100000n, 0x100fffn, 0x5000n, 1));
    memory.write(0x5000n, Uint8Array.of(9, 9, 9, 9));
    const into = buffer(4);
    const unmapped = d.dmaInto(EP, { iova: 0x200000n, size: 4, write: false }, into);
    const viaDma = d.dma({ endpoint: EP, iova: 0x200000n, size: 4, write: false });
    expect(viaDma.ok).toBe(false);
    if (!viaDma.ok) expect(unmapped).toEqual(viaDma.fault);
    expect(unmapped?.class).toBe('translation');
    // A read that crosses into an unmapped page faults before any byte moves.
    expect(d.dmaInto(EP, { iova: 0x100ffen, size: 4, write: false }, into)?.class).toBe('translation');
    expect(Array.from(into)).toEqual([JUNK, JUNK, JUNK, JUNK]);
    // A write to a read-only mapping: a permission fault, memory unchanged.
    expect(d.dmaInto(EP, { iova: 0x100000n, size: 0, write: true, data: Uint8Array.of(1, 2) }, new Uint8Array(0))?.class).toBe('permission');
    expect(Array.from(memory.read(0x5000n, 4))).toEqual([9, 9, 9, 9]);
    expect(d.dmaInto(EP, { iova: 0n, size: 1, write: false }, into)?.class).toBe('translation');
    expect(d.dmaInto(0x4242, { iova: 0x100000n, size: 1, write: false }, into)?.class).toBe('blocked');
  });

  it('writes take req.data and leave the buffer alone; a read of an MSI doorbell reads zeros', () => {
    const { d, memory } = dev('qemu');
    d.request(attach(1));
    d.request(map(1, 0x100000n, 0x100fffn, 0x5000n));
    const into = buffer(4);
    expect(d.dmaInto(EP, { iova: 0x100001n, size: 0, write: true, data: Uint8Array.of(1, 2, 3) }, into)).toBeUndefined();
    expect(Array.from(memory.read(0x5000n, 5))).toEqual([0, 1, 2, 3, 0]);
    expect(Array.from(into)).toEqual([JUNK, JUNK, JUNK, JUNK]);
    d.request(map(1, 0xfee00000n, 0xfee00fffn, 0x6000n));
    memory.write(0x6000n, Uint8Array.of(5, 5, 5, 5));
    expect(d.dmaInto(EP, { iova: 0xfee00000n, size: 4, write: false }, into)).toBeUndefined();
    expect(Array.from(into)).toEqual([0, 0, 0, 0]);
  });

  it('an empty DMA succeeds without touching anything; a buffer shorter than the read is a caller error', () => {
    const { d } = dev();
    expect(d.dmaInto(EP, { iova: 0n, size: 0, write: false }, new Uint8Array(0))).toBeUndefined();
    d.request(attach(1));
    d.request(map(1, 0x100000n, 0x100fffn, 0x5000n));
    expect(() => d.dmaInto(EP, { iova: 0x100000n, size: 4, write: false }, new Uint8Array(3))).toThrow(RangeError);
  });

  it('translates through a guest stage-1 table into the buffer (extension)', () => {
    const t = dev('strict', EXT);
    lpae(t.memory, 0x20000, 0x4000_0000n, 0x9000n);
    t.memory.write(0x9ffcn, Uint8Array.of(1, 2, 3, 4));
    expect(status(t.d.request(attachLpae(1, 0x20000n)))).toBe(0);
    const into = buffer(4);
    for (let k = 0; k < 2; k++) {
      expect(t.d.dmaInto(EP, { iova: 0x4000_0ffcn, size: 4, write: false, priv: true }, into)).toBeUndefined();
      expect(Array.from(into)).toEqual([1, 2, 3, 4]);
    }
  });
});
