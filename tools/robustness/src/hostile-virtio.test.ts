/**
 * Hostile input to the virtio-iommu device model, driven directly through its request queue
 * (never through the driver): short buffers, unknown types, reserved fields set, bad flags,
 * misaligned and inverted ranges, unknown endpoints and domains, random byte soup — mixed with
 * DMA. The device must answer each request as the virtio-iommu specification says (the strict
 * profile's status for each rule, re-derived here), never throw, stay within a step budget,
 * and never write memory except a DMA write's payload where its mapping points.
 */

import {
  PROFILES,
  VIRTIO_IOMMU_F_X_IOASID,
  VIRTIO_IOMMU_X_FORMAT_ARM_LPAE_S1,
  VIRTIO_IOMMU_X_FORMAT_SMMUV3_CD,
  VirtioIommuDevice,
  encodeAttachTable,
  featureBit,
} from '@ioasid/virtio-iommu';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fcParams, runs } from './config.js';
import { count } from './stats.js';
import { WatchedMemory } from './watched-memory.js';
import { saveStatsAfterAll } from '../test/save-stats.js';

saveStatsAfterAll('hostile-virtio');

const ID = 'virtio-iommu (device model)';
const U64_MAX = (1n << 64n) - 1n;
// virtio spec 5.13: request types, sizes of the device-readable part, status codes
const T = { ATTACH: 1, DETACH: 2, MAP: 3, UNMAP: 4, PROBE: 5 } as const;
const SIZE: Record<number, number> = { 1: 20, 2: 20, 3: 36, 4: 28, 5: 72 };
const S = { OK: 0, IOERR: 1, UNSUPP: 2, DEVERR: 3, INVAL: 4, RANGE: 5, NOENT: 6, FAULT: 7, NOMEM: 8 } as const;
const MAP_F_READ = 1;
const MAP_F_WRITE = 2;
const ATTACH_F_BYPASS = 1;
const MSI = { start: 0xfee00000n, end: 0xfeefffffn };
const ENDPOINTS = [0x10, 0x11, 0x18] as const;
const MEM = 1n << 32n;
const BUDGET = 200_000;

function le(b: Uint8Array, off: number, v: bigint, bytes: number): void {
  for (let i = 0; i < bytes; i++) b[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

/** A request in structured form (before any byte-level damage). */
type Req =
  | { readonly t: 'attach'; readonly domain: number; readonly ep: number; readonly flags: number; readonly reserved: number }
  | { readonly t: 'detach'; readonly domain: number; readonly ep: number; readonly reserved: number }
  | { readonly t: 'map'; readonly domain: number; readonly start: bigint; readonly end: bigint; readonly phys: bigint; readonly flags: number }
  | { readonly t: 'unmap'; readonly domain: number; readonly start: bigint; readonly end: bigint; readonly reserved: number }
  | { readonly t: 'probe'; readonly ep: number; readonly reserved: number; readonly wlen: number };

function encode(r: Req): Uint8Array {
  switch (r.t) {
    case 'attach': {
      const b = new Uint8Array(20);
      b[0] = T.ATTACH;
      le(b, 4, BigInt(r.domain), 4);
      le(b, 8, BigInt(r.ep), 4);
      le(b, 12, BigInt(r.flags), 4);
      le(b, 16, BigInt(r.reserved), 4);
      return b;
    }
    case 'detach': {
      const b = new Uint8Array(20);
      b[0] = T.DETACH;
      le(b, 4, BigInt(r.domain), 4);
      le(b, 8, BigInt(r.ep), 4);
      le(b, 12, BigInt(r.reserved), 4); // reserved[8]: the device MUST ignore it
      return b;
    }
    case 'map': {
      const b = new Uint8Array(36);
      b[0] = T.MAP;
      le(b, 4, BigInt(r.domain), 4);
      le(b, 8, r.start, 8);
      le(b, 16, r.end, 8);
      le(b, 24, r.phys, 8);
      le(b, 32, BigInt(r.flags), 4);
      return b;
    }
    case 'unmap': {
      const b = new Uint8Array(28);
      b[0] = T.UNMAP;
      le(b, 4, BigInt(r.domain), 4);
      le(b, 8, r.start, 8);
      le(b, 16, r.end, 8);
      le(b, 24, BigInt(r.reserved), 4);
      return b;
    }
    case 'probe': {
      const b = new Uint8Array(72);
      b[0] = T.PROBE;
      le(b, 4, BigInt(r.ep), 4);
      le(b, 8, BigInt(r.reserved), 4); // reserved[64]: ignored
      return b;
    }
  }
}

// ---------------------------------------------------------------------------- the reference

interface RefMapping {
  readonly start: bigint;
  readonly end: bigint;
  readonly phys: bigint;
  readonly flags: number;
}
interface RefDomain {
  readonly bypass: boolean;
  readonly mappings: RefMapping[];
  eps: number;
}

/**
 * What a strict virtio-iommu device holds, from the spec's rules: endpoints attach to domains
 * (created on first ATTACH, gone with their mappings when the last endpoint leaves), MAP/UNMAP
 * on the domain's mappings. Returns the status each request must get.
 */
class Reference {
  readonly domains = new Map<number, RefDomain>();
  readonly attached = new Map<number, number>();

  status(r: Req): number {
    switch (r.t) {
      case 'attach': {
        // reserved ≠ 0 and unknown flags: INVAL (MUST); unknown endpoint: NOENT; domain outside domain_range: RANGE
        if (r.reserved !== 0 || (r.flags & ~ATTACH_F_BYPASS) !== 0) return S.INVAL;
        if (!(ENDPOINTS as readonly number[]).includes(r.ep)) return S.NOENT;
        if (r.domain > 0xffff) return S.RANGE;
        const bypass = (r.flags & ATTACH_F_BYPASS) !== 0;
        const d = this.domains.get(r.domain);
        if (d !== undefined && d.bypass !== bypass) return S.INVAL; // SHOULD: the flag disagrees with the domain
        const target = d ?? { bypass, mappings: [], eps: 0 };
        this.domains.set(r.domain, target);
        const old = this.attached.get(r.ep);
        if (old !== r.domain) {
          target.eps++;
          this.attached.set(r.ep, r.domain);
          if (old !== undefined) this.leave(old);
        }
        return S.OK;
      }
      case 'detach': {
        if (!(ENDPOINTS as readonly number[]).includes(r.ep)) return S.NOENT;
        if (!this.domains.has(r.domain) || this.attached.get(r.ep) !== r.domain) return S.INVAL;
        this.attached.delete(r.ep);
        this.leave(r.domain);
        return S.OK;
      }
      case 'map': {
        if ((r.flags & ~(MAP_F_READ | MAP_F_WRITE)) !== 0) return S.INVAL;
        const d = this.domains.get(r.domain);
        if (d === undefined) return S.NOENT;
        if (d.bypass) return S.INVAL;
        if (r.start % 0x1000n !== 0n || r.phys % 0x1000n !== 0n || ((r.end + 1n) & U64_MAX) % 0x1000n !== 0n) return S.RANGE;
        if (r.end < r.start) return S.RANGE;
        if (r.phys + (r.end - r.start) > U64_MAX) return S.RANGE;
        if (r.start <= MSI.end && r.end >= MSI.start) return S.INVAL;
        if (d.mappings.some((m) => m.start <= r.end && r.start <= m.end)) return S.INVAL;
        d.mappings.push({ start: r.start, end: r.end, phys: r.phys, flags: r.flags });
        return S.OK;
      }
      case 'unmap': {
        if (r.reserved !== 0) return S.INVAL;
        const d = this.domains.get(r.domain);
        if (d === undefined) return S.NOENT;
        if (d.bypass) return S.INVAL;
        if (r.end < r.start) return S.RANGE;
        const hit = d.mappings.filter((m) => m.start <= r.end && r.start <= m.end);
        if (hit.some((m) => m.start < r.start || m.end > r.end)) return S.RANGE; // would split a mapping
        for (const m of hit) d.mappings.splice(d.mappings.indexOf(m), 1);
        return S.OK;
      }
      case 'probe':
        if (!(ENDPOINTS as readonly number[]).includes(r.ep)) return S.NOENT;
        return r.wlen - 4 < 512 ? S.INVAL : S.OK;
    }
  }

  private leave(domain: number): void {
    const d = this.domains.get(domain)!;
    if (--d.eps === 0) this.domains.delete(domain); // the last endpoint left: the domain and its mappings are gone
  }

  /** Where a DMA of endpoint `ep` at `iova` lands: a physical address, 'msi', or undefined (fault). */
  translate(ep: number, iova: bigint, write: boolean): bigint | 'msi' | undefined {
    if (iova >= MSI.start && iova <= MSI.end) return 'msi';
    const id = this.attached.get(ep);
    if (id === undefined) return undefined; // strict: bypass = 0, an unattached endpoint faults
    const d = this.domains.get(id)!;
    if (d.bypass) return iova;
    const m = d.mappings.find((x) => x.start <= iova && iova <= x.end);
    if (m === undefined) return undefined;
    if ((m.flags & (write ? MAP_F_WRITE : MAP_F_READ)) === 0) return undefined;
    return m.phys + (iova - m.start);
  }
}

// ---------------------------------------------------------------------------- arbitraries

const w = <A>(good: fc.Arbitrary<A>, bad: fc.Arbitrary<A>) => fc.oneof({ weight: 6, arbitrary: good }, { weight: 1, arbitrary: bad });
const addr = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt({ min: 0x100n, max: 0x140n }).map((p) => p * 0x1000n) },
  { weight: 2, arbitrary: fc.constantFrom(0n, 0x1000n, 0xfedff000n, 0xfee00000n, 0xfef00000n, U64_MAX - 0xfffn, 1n << 48n) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: U64_MAX }) },
);
const len = w(fc.bigInt({ min: 1n, max: 8n }).map((k) => k * 0x1000n - 1n), fc.oneof(fc.constantFrom(0n, 0x1000n, U64_MAX), fc.bigInt({ min: 0n, max: 0x100000n })));
const phys = w(
  fc.bigInt({ min: 0x200n, max: 0x3f0n }).map((p) => p * 0x1000n),
  fc.oneof(fc.constantFrom(MEM - 0x1000n, MEM, 0x7000n, 0x200800n), fc.bigInt({ min: 0n, max: U64_MAX })),
);
const domain = w(fc.integer({ min: 0, max: 3 }), fc.constantFrom(0xffff, 0x10000, 0xffffffff));
const ep = w(fc.constantFrom(...ENDPOINTS), fc.integer({ min: 0, max: 0xffffffff }));
const smallOr = (v: fc.Arbitrary<number>) => fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: v });

const reqArb: fc.Arbitrary<Req> = fc.oneof(
  fc.record({ t: fc.constant('attach' as const), domain, ep, flags: smallOr(fc.oneof(fc.constant(ATTACH_F_BYPASS), fc.integer({ min: 0, max: 0xffffffff }))), reserved: smallOr(fc.integer({ min: 1, max: 0xffffffff })) }),
  fc.record({ t: fc.constant('detach' as const), domain, ep, reserved: fc.integer({ min: 0, max: 0xffffffff }) }),
  fc.tuple(domain, addr, len, phys, w(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 0xffffffff }))).map(
    ([d, s, l, p, f]) => ({ t: 'map' as const, domain: d, start: s, end: (s + l) & U64_MAX, phys: p, flags: f }),
  ),
  fc.tuple(domain, addr, len, smallOr(fc.integer({ min: 1, max: 0xffffffff }))).map(([d, s, l, r]) => ({ t: 'unmap' as const, domain: d, start: s, end: (s + l) & U64_MAX, reserved: r })),
  fc.record({ t: fc.constant('probe' as const), ep, reserved: fc.integer({ min: 0, max: 0xffffffff }), wlen: fc.constantFrom(516, 600, 100, 4) }),
);

/** A DMA to check against the reference. */
interface Dma {
  readonly ep: number;
  readonly iova: bigint;
  readonly write: boolean;
  readonly size: number;
}
const dmaArb: fc.Arbitrary<Dma> = fc.record({
  ep: fc.constantFrom(...ENDPOINTS),
  iova: fc.oneof(addr, fc.bigInt({ min: 0x100n, max: 0x140n }).map((p) => p * 0x1000n + 0xff8n)),
  write: fc.boolean(),
  size: fc.constantFrom(1, 8, 16),
});

type Step = { readonly kind: 'req'; readonly req: Req } | { readonly kind: 'dma'; readonly dma: Dma };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: reqArb.map((req) => ({ kind: 'req' as const, req })) },
  { weight: 2, arbitrary: dmaArb.map((dma) => ({ kind: 'dma' as const, dma })) },
);

function device(features?: bigint) {
  const mem = WatchedMemory.create(MEM);
  // data pages the mappings point at: a recognisable pattern
  for (let p = 0x200000; p < 0x400000; p += 0x1000) mem.inner.write32At(p, p ^ 0x5a5a5a5a);
  const dev = new VirtioIommuDevice({ memory: mem, endpoints: [...ENDPOINTS], ...(features === undefined ? {} : { features }) });
  expect(dev.negotiate(dev.features)).toBe(true);
  return { mem, dev };
}

/** The status byte of a response (its tail is 4 bytes: status, reserved[3]). */
function statusOf(out: Uint8Array): number | undefined {
  return out.length === 0 ? undefined : out[out.length - 4];
}

describe('virtio-iommu device: hostile requests and DMA (strict profile)', () => {
  it('answers each request as the specification says and translates exactly what the accepted requests mapped', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: runs(40, 80) }), (steps) => {
        const { mem, dev } = device();
        const ref = new Reference();
        const opening: Step[] = [
          ...ENDPOINTS.map((e, i): Step => ({ kind: 'req', req: { t: 'attach', domain: i % 2, ep: e, flags: 0, reserved: 0 } })),
          { kind: 'req', req: { t: 'map', domain: 0, start: 0x100000n, end: 0x103fffn, phys: 0x200000n, flags: 3 } },
          { kind: 'req', req: { t: 'map', domain: 1, start: 0x100000n, end: 0x101fffn, phys: 0x300000n, flags: 1 } },
        ];
        for (const st of [...opening, ...steps]) {
          mem.arm(BUDGET);
          if (st.kind === 'req') {
            const r = st.req;
            const want = ref.status(r);
            mem.writes.length = 0;
            mem.recording = true;
            const out = dev.request(encode(r), r.t === 'probe' ? r.wlen : undefined);
            mem.recording = false;
            count(ID, 'malformed');
            expect(mem.changes(), 'a request wrote memory').toEqual([]);
            expect(statusOf(out), JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))).toBe(want);
            expect(out.subarray(out.length - 3)).toEqual(new Uint8Array(3)); // tail reserved bytes
          } else {
            const d = st.dma;
            const data = new Uint8Array(d.size).fill(0xc3);
            const pages = new Set<bigint>([d.iova & ~0xfffn, (d.iova + BigInt(d.size) - 1n) & ~0xfffn]);
            const where = [...pages].map((p) => ref.translate(d.ep, p, d.write));
            mem.recording = true;
            mem.writes.length = 0;
            const r = dev.dma({ endpoint: d.ep, iova: d.iova, size: d.size, write: d.write, ...(d.write ? { data } : {}) });
            mem.recording = false;
            const wrote = mem.writes;
            if (d.iova + BigInt(d.size) - 1n > U64_MAX) continue;
            const reachable = where.every((w) => w !== undefined && (w === 'msi' || w + 0x1000n <= MEM));
            if (!reachable) {
              expect(r.ok, `DMA ${d.write ? 'write' : 'read'} at 0x${d.iova.toString(16)} from ${d.ep} must fault`).toBe(false);
              expect(wrote, 'a faulting DMA wrote memory').toEqual([]);
              continue;
            }
            if (where.some((w) => w === 'msi')) continue; // doorbell semantics are checked in the uAPI tests
            expect(r.ok, `DMA ${d.write ? 'write' : 'read'} at 0x${d.iova.toString(16)} from ${d.ep}`).toBe(true);
            if (!d.write) {
              expect(wrote, 'a read DMA wrote memory').toEqual([]);
              if (r.ok && pages.size === 1) expect(r.data).toEqual(mem.inner.read(where[0] as bigint + (d.iova & 0xfffn), d.size));
            } else {
              // exactly the payload, where the mapping points
              const total = wrote.reduce((s, w) => s + w.length, 0);
              expect(total).toBe(d.size);
              if (pages.size === 1) expect(wrote.map((w) => BigInt(w.addr))).toEqual([(where[0] as bigint) + (d.iova & 0xfffn)]);
            }
          }
        }
        count(ID, 'sequences');
        count(ID, 'operations', steps.length);
      }),
      fcParams('hostile virtio differential', 60, 3000),
    );
  });

  it('structurally broken requests: short head, short body, unknown type, no room for the tail — unwritten, never a throw', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 100 }),
        fc.integer({ min: 0, max: 700 }),
        fc.constantFrom('soup', 'short-head', 'short-body', 'unknown', 'tiny-tail'),
        (bytes, wlen, shape) => {
          const { mem, dev } = device();
          let req = bytes;
          let expectEmpty = false;
          if (shape === 'short-head') {
            req = bytes.subarray(0, bytes.length % 4);
            expectEmpty = true;
          } else if (shape === 'short-body') {
            const type = 1 + (bytes[0] ?? 0) % 5;
            req = new Uint8Array(Math.max(4, bytes.length % SIZE[type]!));
            req[0] = type;
            expectEmpty = true;
          } else if (shape === 'unknown') {
            req = new Uint8Array(Math.max(8, bytes.length));
            req.set(bytes);
            req[0] = [0, 6, 7, 8, 9, 0x80, 0xff][bytes.length % 7]!;
            expectEmpty = true;
          } else if (shape === 'tiny-tail') {
            const type = 1 + (bytes[0] ?? 0) % 5;
            req = new Uint8Array(SIZE[type]!);
            req[0] = type;
            wlen = wlen % 4;
            expectEmpty = true;
          }
          mem.arm(BUDGET);
          mem.recording = true;
          const out = dev.request(req, wlen);
          count(ID, 'malformed');
          expect(mem.changes()).toEqual([]);
          if (expectEmpty) expect(out.length, `${shape}: the spec leaves the buffer unwritten (used length 0)`).toBe(0);
          if (out.length > 0) {
            expect(out.length).toBe(wlen);
            expect(Object.values(S)).toContain(statusOf(out));
          }
        },
      ),
      fcParams('hostile virtio shapes', 300, 20000),
    );
  });

  it('with the extension: random ATTACH_TABLE / INVALIDATE / PAGE_RESP bytes and random stage-1 tables never throw, hang or write memory', () => {
    const features = PROFILES.strict.features | featureBit(VIRTIO_IOMMU_F_X_IOASID);
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            type: fc.constantFrom(1, 2, 3, 4, 6, 7, 8),
            body: fc.uint8Array({ minLength: 0, maxLength: 80 }),
            root: fc.constantFrom(0x10000n, 0x11000n, MEM - 0x1000n, MEM + 0x1000n, 0n),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.bigInt({ min: 0n, max: (1n << 40n) - 1n })), { minLength: 16, maxLength: 64 }),
        fc.array(dmaArb, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 3 }),
        (reqs, entries, dmas, pasid) => {
          const { mem, dev } = device(features);
          // random "page tables": descriptors at random slots of four table pages, some pointing
          // back at their own table (a loop), some outside memory
          for (const [slot, v] of entries) {
            const table = 0x10000 + (slot >> 9) % 4 * 0x1000;
            const pick = slot & 7;
            const value = pick === 0 ? BigInt(table) | 3n : pick === 1 ? (MEM + 0x1000n) | 3n : pick === 2 ? 0x10000n | 3n : v;
            mem.inner.write64(BigInt(table + (slot & 511) * 8), value);
          }
          // the random tables, attached for real: an LPAE stage 1 for one endpoint, a CD table for another
          const lpae = encodeAttachTable({ domain: 5, endpoint: 0x10, flags: 0, format: VIRTIO_IOMMU_X_FORMAT_ARM_LPAE_S1, lpae: { tcr: 16n, ttbr0: 0x10000n } });
          const cdt = encodeAttachTable({ domain: 6, endpoint: 0x11, flags: 0, format: VIRTIO_IOMMU_X_FORMAT_SMMUV3_CD, cd: { s1dss: 0, s1cdmax: 2, s1contextptr: 0x12000n } });
          for (const b of [lpae, cdt]) {
            mem.arm(BUDGET);
            expect(statusOf(dev.request(b))).toBe(S.OK);
          }
          for (const r of reqs) {
            const b = new Uint8Array(Math.max(4, r.body.length));
            b.set(r.body);
            b[0] = r.type;
            if (r.type === 6 && b.length >= 16) le(b, 8, r.root, 8);
            mem.arm(BUDGET);
            mem.writes.length = 0;
            mem.recording = true;
            const out = dev.request(b);
            mem.recording = false;
            count(ID, 'malformed');
            expect(mem.changes(), 'a request wrote memory').toEqual([]);
            if (out.length > 0) expect(Object.values(S)).toContain(statusOf(out));
          }
          for (const d of dmas) {
            mem.arm(BUDGET);
            mem.recording = true;
            mem.writes.length = 0;
            const r = dev.dma({ endpoint: d.ep, iova: d.iova, size: d.size, write: d.write, ...(pasid === 0 ? {} : { pasid }), ...(d.write ? { data: new Uint8Array(d.size).fill(7) } : {}) });
            mem.recording = false;
            if (!r.ok || !d.write) expect(mem.writes, 'only a successful write DMA writes memory').toEqual([]);
            else expect(mem.writes.reduce((s, w) => s + w.length, 0)).toBe(d.size);
          }
          count(ID, 'sequences');
          count(ID, 'operations', reqs.length + dmas.length);
        },
      ),
      fcParams('hostile virtio extension', 150, 8000),
    );
  });
});
