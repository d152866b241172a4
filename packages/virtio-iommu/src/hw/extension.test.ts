import { PhysicalMemory } from '@ioasid/core';
import { describe, expect, it } from 'vitest';
import { VirtioIommuDevice } from './device.js';
import { PROFILES } from './profile.js';
import { EP, EXT, attach, attachTable, map, status, u32, u64 } from './request-bytes.test-util.js';

// Extension requests built by hand from src/spec/extension.ts's layouts.
/** INVALIDATE (60 readable bytes): scope @4, flags @6, domain @8, pasid @12, virt_start @24, nr_pages @32, granule @40. */
function invalidate(scope: number, flags: number, domain: number, pasid = 0, start = 0n, pages = 0n, granule = 12): Uint8Array {
  const b = new Uint8Array(60);
  b[0] = 7;
  b[4] = scope;
  b[6] = flags;
  u32(b, 8, domain);
  u32(b, 12, pasid);
  u64(b, 24, start);
  u64(b, 32, pages);
  b[40] = granule;
  return b;
}
/** Writes a 4-level LPAE table for va → pa (tables at base, base+4K, …). */
function lpae(memory: PhysicalMemory, base: number, va: bigint, pa: bigint, leafLow = 0x743n): void {
  const idx = [39n, 30n, 21n, 12n].map((s) => (va >> s) & 511n);
  for (let l = 0; l < 3; l++) memory.write64(BigInt(base + l * 4096) + idx[l]! * 8n, BigInt(base + (l + 1) * 4096) | 3n);
  // leaf: V|page (3), AP[1] (0x40), SH ISH (0x300), AF (0x400) = 0x743
  memory.write64(BigInt(base + 3 * 4096) + idx[3]! * 8n, pa | leafLow);
}

function dev(features = EXT) {
  const memory = new PhysicalMemory({ size: 1n << 32n });
  return { memory, d: new VirtioIommuDevice({ memory, endpoints: [EP], features }) };
}

describe('extension framing', () => {
  it('types 6–8 are unknown (unwritten) without the extension; its ATTACH flags are INVAL', () => {
    const { d } = dev(PROFILES.strict.features);
    expect(d.request(attachTable({ domain: 1, flags: 0, format: 1 })).length).toBe(0);
    expect(status(d.request(attach(1, 1 << 1)))).toBe(4);
  });
});

describe('ATTACH_TABLE', () => {
  it('status matrix', () => {
    const { d } = dev();
    expect(status(d.request(attachTable({ domain: 1, flags: 1 << 7, format: 1 })))).toBe(4); // unknown flag
    expect(status(d.request(attachTable({ domain: 1, flags: 0, format: 9 })))).toBe(2); // unknown format: UNSUPP
    expect(status(d.request(attachTable({ domain: 1, flags: 0, format: 1, tcr: 16n | (1n << 14n) })))).toBe(4); // TG0 64K
    expect(status(d.request(attachTable({ domain: 1, flags: 0, format: 1, tcr: 12n })))).toBe(4); // T0SZ 12
    expect(status(d.request(attachTable({ domain: 1, flags: 1, pasid: 1 << 20, format: 1 })))).toBe(5); // PASID ≥ 2^20
    expect(status(d.request(attachTable({ domain: 1, flags: 2, parent: 9, format: 1 })))).toBe(6); // no parent
    expect(status(d.request(attachTable({ domain: 1, flags: 0, format: 2, cd: [1, 2, 0, 0x10000n] })))).toBe(2); // 2-level CD table
    expect(status(d.request(attachTable({ domain: 1, flags: 0, format: 2, cd: [0, 2, 4, 0x10040n] })))).toBe(4); // 16 CDs = 1 KiB alignment
    expect(status(d.request(attachTable({ domain: 1, flags: 1, pasid: 3, format: 2, cd: [0, 2, 4, 0x10000n] })))).toBe(4); // CD table with F_PASID
    d.request(attach(2));
    expect(status(d.request(attachTable({ domain: 2, flags: 0, format: 1 })))).toBe(4); // NO-PASID table on an anonymous domain
    expect(status(d.request(attachTable({ domain: 2, flags: 1, pasid: 4, format: 1, ttbr0: 0x20000n })))).toBe(0); // PASID context beside it
  });
  it('walks the table for the NO-PASID context and keeps a stale TLB entry until INVALIDATE VA', () => {
    const { d, memory } = dev();
    lpae(memory, 0x20000, 0x4000_0000n, 0x9000n);
    memory.write(0x9000n, Uint8Array.of(0xa1));
    memory.write(0xa000n, Uint8Array.of(0xb2));
    expect(status(d.request(attachTable({ domain: 1, flags: 0, format: 1, ttbr0: 0x20000n })))).toBe(0);
    expect(d.dma({ endpoint: EP, iova: 0x4000_0000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0xa1) });
    lpae(memory, 0x20000, 0x4000_0000n, 0xa000n);
    expect(d.dma({ endpoint: EP, iova: 0x4000_0000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0xa1) });
    expect(status(d.request(invalidate(4, 0, 1, 0, 0x4000_0000n, 1n)))).toBe(0);
    expect(d.dma({ endpoint: EP, iova: 0x4000_0000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0xb2) });
    // AP[2] is clear and AP[1] set: writes allowed; a privileged-only page (AP[1]=0) refuses unprivileged DMA
    lpae(memory, 0x20000, 0x4000_1000n, 0xb000n, 0x703n);
    const r = d.dma({ endpoint: EP, iova: 0x4000_1000n, size: 1, write: false });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.fault.class).toBe('permission');
    expect(d.dma({ endpoint: EP, iova: 0x4000_1000n, size: 1, write: false, priv: true }).ok).toBe(true);
  });
  it('a table outside memory is an external abort; AF = 0 an access-flag fault', () => {
    const { d, memory } = dev();
    d.request(attachTable({ domain: 1, flags: 0, format: 1, ttbr0: 1n << 40n }));
    const r = d.dma({ endpoint: EP, iova: 0n, size: 1, write: false });
    expect(r.ok ? '' : r.fault.class).toBe('external-abort');
    lpae(memory, 0x30000, 0x2000n, 0x9000n, 0x343n); // AF clear
    d.request(attachTable({ domain: 2, flags: 0, format: 1, ttbr0: 0x30000n }));
    const a = d.dma({ endpoint: EP, iova: 0x2000n, size: 1, write: false });
    expect(a.ok ? '' : a.fault.record.detail).toBe('stage-1 access flag fault');
  });
  it('nested: table and output addresses go through the parent domain’s mappings', () => {
    const { d, memory } = dev();
    d.request(attach(1)); // parent, anonymous context
    // IPA 0..0xfffff → PA 0x100000..0x1fffff
    expect(status(d.request(map(1, 0n, 0xfffffn, 0x100000n)))).toBe(0);
    const base = 0x100000 + 0x20000; // tables at IPA 0x20000
    const idx = [39n, 30n, 21n, 12n].map((s) => (0x7000n >> s) & 511n);
    for (let l = 0; l < 3; l++) memory.write64(BigInt(base + l * 4096) + idx[l]! * 8n, BigInt(0x20000 + (l + 1) * 4096) | 3n);
    memory.write64(BigInt(base + 3 * 4096) + idx[3]! * 8n, 0x5000n | 0x743n); // IPA 0x5000 → PA 0x105000
    memory.write(0x105000n, Uint8Array.of(0x77));
    expect(status(d.request(attachTable({ domain: 2, flags: 2, parent: 1, format: 1, ttbr0: 0x20000n })))).toBe(0);
    expect(d.dma({ endpoint: EP, iova: 0x7000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x77) });
    // the parent outlives its last endpoint while the child nests in it
    expect(status(d.request(map(1, 0x200000n, 0x200fffn, 0x300000n)))).toBe(0);
  });
  it('CD table: S1DSS=SSID0 serves untagged DMA from CD 0; PASID p from CD p; V=0 is bad config', () => {
    const { d, memory } = dev();
    lpae(memory, 0x40000, 0x1000n, 0x9000n);
    memory.write(0x9000n, Uint8Array.of(0x5c));
    // CD 0 at 0x10000: T0SZ 16 | V (bit 31); AA64 (w1 bit 9); TTB0 = 0x40000
    memory.write32(0x10000n, (16 | (1 << 31)) >>> 0);
    memory.write32(0x10004n, 1 << 9);
    memory.write64(0x10008n, 0x40000n);
    // CD 1 copies CD 0; CD 2 stays invalid
    memory.write(0x10040n, memory.read(0x10000n, 64));
    expect(status(d.request(attachTable({ domain: 1, flags: 0, format: 2, cd: [0, 2, 2, 0x10000n] })))).toBe(0);
    expect(d.dma({ endpoint: EP, iova: 0x1000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x5c) });
    expect(d.dma({ endpoint: EP, pasid: 1, iova: 0x1000n, size: 1, write: false }).ok).toBe(true);
    const bad = d.dma({ endpoint: EP, pasid: 2, iova: 0x1000n, size: 1, write: false });
    expect(bad.ok ? '' : bad.fault.class).toBe('bad-config');
    const out = d.dma({ endpoint: EP, pasid: 4, iova: 0x1000n, size: 1, write: false }); // ≥ 2^S1CDMax
    expect(out.ok ? '' : out.fault.class).toBe('bad-config');
  });
});

describe('INVALIDATE and PAGE_RESP', () => {
  it('INVALIDATE status matrix', () => {
    const { d } = dev();
    expect(status(d.request(invalidate(1, 0, 1)))).toBe(6); // no domain
    d.request(attach(1));
    expect(status(d.request(invalidate(3, 0, 1)))).toBe(4); // unknown scope
    expect(status(d.request(invalidate(1, 1 << 5, 1)))).toBe(4); // unknown flag
    expect(status(d.request(invalidate(2, 0, 1)))).toBe(4); // PASID scope without F_X_PASID
    expect(status(d.request(invalidate(2, 4, 1, 1 << 20)))).toBe(5); // PASID out of range
    d.request(attachTable({ domain: 1, flags: 1, pasid: 5, format: 1, ttbr0: 0x20000n }));
    expect(status(d.request(invalidate(4, 4, 1, 5, 0x1000n, 1n, 13)))).toBe(4); // granule 13
    expect(status(d.request(invalidate(4, 4, 1, 5, 0x1000n, 1n, 21)))).toBe(5); // misaligned to 2 MiB
    expect(status(d.request(invalidate(1, 1, 1)))).toBe(0);
  });
  it('a fault in an IOPF table becomes a page request (PRM bits in address) until PAGE_RESP', () => {
    const { d } = dev();
    d.request(attachTable({ domain: 1, flags: 1 << 2, format: 1, ttbr0: 0x20000n }));
    const r = d.dma({ endpoint: EP, iova: 0x12345678n, size: 1, write: true, data: Uint8Array.of(1) });
    expect(r.ok ? '' : r.fault.class).toBe('page-request');
    const ev = d.takeEvents()[0]!;
    const dv = new DataView(ev.buffer);
    // flags: X_PAGE_REQ (1<<10) | ADDRESS (1<<8) | WRITE (1<<1)
    expect(dv.getUint32(4, true)).toBe((1 << 10) | (1 << 8) | 2);
    // address: page 0x12345000 | PRGI 0 << 3 | L (4) | W (2)
    expect(dv.getBigUint64(16, true)).toBe(0x12345000n | 4n | 2n);
    const resp = (grpid: number, code: number) => {
      const b = new Uint8Array(28);
      b[0] = 8;
      u32(b, 4, EP);
      u32(b, 16, grpid);
      b[20] = code;
      return d.request(b);
    };
    expect(status(resp(0, 3))).toBe(4); // unknown code
    expect(status(resp(5, 0))).toBe(4); // no such group
    expect(status(resp(0, 0))).toBe(0);
    expect(status(resp(0, 0))).toBe(4); // already completed
  });
});

describe('ATTACH F_X_IOPF: page requests from a MAP/UNMAP domain', () => {
  const F_X_IOPF = 1 << 3;
  const pageResp = (grpid: number, code: number) => {
    const b = new Uint8Array(28);
    b[0] = 8;
    u32(b, 4, EP);
    u32(b, 16, grpid);
    b[20] = code;
    return b;
  };
  it('is an unknown flag (INVAL) without the extension, and INVAL with BYPASS, NO_DEFAULT or a mismatching domain', () => {
    expect(status(dev(PROFILES.strict.features).d.request(attach(1, F_X_IOPF)))).toBe(4);
    const { d } = dev();
    expect(status(d.request(attach(1, F_X_IOPF | 1)))).toBe(4); // with BYPASS
    expect(status(d.request(attach(1, F_X_IOPF | (1 << 1))))).toBe(4); // with NO_DEFAULT
    expect(status(d.request(attach(1)))).toBe(0);
    expect(status(d.request(attach(1, F_X_IOPF)))).toBe(4); // domain 1 exists without IOPF
    expect(status(d.request(attach(2, F_X_IOPF)))).toBe(0);
    expect(status(d.request(attach(2)))).toBe(4); // and domain 2 with it
  });
  it('an unmapped IOVA raises a page request; after PAGE_RESP SUCCESS and a MAP the retry reads memory', () => {
    const { d, memory } = dev();
    memory.write(0x9000n, Uint8Array.of(0xc3));
    expect(status(d.request(attach(1, F_X_IOPF)))).toBe(0);
    const r = d.dma({ endpoint: EP, iova: 0x4_0000_2010n, size: 1, write: false });
    expect(r.ok ? '' : r.fault.class).toBe('page-request');
    const [ev] = d.takeEvents();
    const dv = new DataView(ev!.buffer);
    expect(ev!.length).toBe(24);
    expect(ev![0]).toBe(2); // reason VIRTIO_IOMMU_FAULT_R_MAPPING
    // flags: X_PAGE_REQ (1<<10) | ADDRESS (1<<8) | READ (1<<0)
    expect(dv.getUint32(4, true)).toBe((1 << 10) | (1 << 8) | 1);
    expect(dv.getUint32(8, true)).toBe(EP);
    // address: page 0x4_0000_2000 | PRGI 0 << 3 | L (4) | R (1)
    expect(dv.getBigUint64(16, true)).toBe(0x4_0000_2000n | 4n | 1n);
    expect(d.pendingPageRequests(EP)).toBe(1);
    expect(status(d.request(pageResp(0, 0)))).toBe(0);
    expect(d.pendingPageRequests(EP)).toBe(0);
    expect(status(d.request(map(1, 0x4_0000_2000n, 0x4_0000_2fffn, 0x9000n)))).toBe(0);
    expect(d.dma({ endpoint: EP, iova: 0x4_0000_2000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0xc3) });
  });
  it('a write to a read-only mapping asks for write access; the MSI doorbell raises none', () => {
    const { d } = dev();
    d.request(attach(1, F_X_IOPF));
    const ro = map(1, 0x1000n, 0x1fffn, 0x9000n);
    u32(ro, 32, 1); // READ only
    expect(status(d.request(ro))).toBe(0);
    const w = d.dma({ endpoint: EP, iova: 0x1000n, size: 0, write: true, data: Uint8Array.of(1) });
    expect(w.ok ? '' : w.fault.class).toBe('page-request');
    expect(new DataView(d.takeEvents()[0]!.buffer).getBigUint64(16, true)).toBe(0x1000n | 4n | 2n); // L | W
    // 0xfee00000 is in the x86 MSI window (RESV_MEM MSI): the write is an interrupt message
    expect(d.dma({ endpoint: EP, iova: 0xfee00000n, size: 0, write: true, data: Uint8Array.of(0, 0, 0, 0) }).ok).toBe(true);
    expect(d.msiWrites).toBe(1);
    expect(d.pendingPageRequests(EP)).toBe(1);
  });
  it('without F_X_IOPF the same miss is an ordinary translation fault', () => {
    const { d } = dev();
    d.request(attach(1));
    const r = d.dma({ endpoint: EP, iova: 0x2000n, size: 1, write: false });
    expect(r.ok ? '' : r.fault.class).toBe('translation');
    expect(d.pendingPageRequests(EP)).toBe(0);
  });
});

describe('the hit path\'s cached resolution is dropped exactly when the configuration changes', () => {
  function detach(domain: number): Uint8Array {
    const b = new Uint8Array(20);
    b[0] = 2;
    u32(b, 4, domain);
    u32(b, 8, EP);
    return b;
  }
  const into = new Uint8Array(1);
  /** A 1-byte read through dmaInto, twice (the second takes the hit path once the first resolved it). */
  const read = (d: VirtioIommuDevice, iova: bigint, pasid?: number): number | string => {
    let out: number | string = '';
    for (let k = 0; k < 2; k++) {
      into[0] = 0xee;
      const f = d.dmaInto(EP, { iova, size: 1, write: false, ...(pasid === undefined ? {} : { pasid }) }, into);
      out = f === undefined ? into[0] : f.class;
    }
    return out;
  };
  function setup() {
    const t = dev();
    t.memory.write(0x5000n, Uint8Array.of(0x11));
    t.memory.write(0x6000n, Uint8Array.of(0x22));
    t.memory.write(0x9000n, Uint8Array.of(0x33));
    t.d.request(attach(2));
    t.d.request(map(2, 0x1000n, 0x1fffn, 0x6000n));
    return t;
  }

  it('ATTACH to another domain, DETACH, and a domain ID reused after its domain ceased to exist', () => {
    const { d } = setup(); // the endpoint sits in domain 2
    expect(read(d, 0x1000n)).toBe(0x22);
    expect(status(d.request(attach(1)))).toBe(0); // domain 2 ceases to exist (its last endpoint left)
    expect(read(d, 0x1000n)).toBe('translation');
    expect(status(d.request(map(1, 0x1000n, 0x1fffn, 0x5000n)))).toBe(0);
    expect(read(d, 0x1000n)).toBe(0x11);
    expect(status(d.request(detach(1)))).toBe(0);
    expect(read(d, 0x1000n)).toBe('blocked');
    expect(status(d.request(attach(2)))).toBe(0); // a new domain 2, with no mapping
    expect(read(d, 0x1000n)).toBe('translation');
  });

  it('a bypass domain, a NO-PASID table attached to the endpoint, and a device reset', () => {
    const { d, memory } = setup();
    expect(read(d, 0x1000n)).toBe(0x22);
    expect(status(d.request(attach(3, 1)))).toBe(0); // VIRTIO_IOMMU_ATTACH_F_BYPASS: IOVA = PA
    expect(read(d, 0x9000n)).toBe(0x33);
    expect(read(d, 0x1000n)).toBe(0);
    lpae(memory, 0x20000, 0x1000n, 0x9000n);
    expect(status(d.request(attachTable({ domain: 4, flags: 0, format: 1, ttbr0: 0x20000n })))).toBe(0);
    expect(read(d, 0x1000n)).toBe(0x33);
    d.request(attach(1));
    d.request(map(1, 0x1000n, 0x1fffn, 0x5000n));
    expect(read(d, 0x1000n)).toBe(0x11);
    d.reset();
    expect(read(d, 0x1000n)).toBe('blocked');
  });

  it('a PASID-tagged DMA never takes the untagged resolution; a write still checks the mapping\'s flags', () => {
    const { d, memory } = setup();
    expect(read(d, 0x1000n)).toBe(0x22);
    expect(read(d, 0x1000n, 7)).toBe('blocked'); // no PASID 7 context in domain 2
    const ro = setup();
    ro.d.request(attach(5));
    const b = map(5, 0x1000n, 0x1fffn, 0x5000n);
    b[32] = 1; // VIRTIO_IOMMU_MAP_F_READ only
    expect(status(ro.d.request(b))).toBe(0);
    expect(read(ro.d, 0x1000n)).toBe(0x11);
    expect(ro.d.dmaInto(EP, { iova: 0x1000n, size: 0, write: true, data: Uint8Array.of(9) }, new Uint8Array(0))?.class).toBe('permission');
    expect(Array.from(memory.read(0x5000n, 1))).toEqual([0x11]);
  });

  it('UNMAP and MAP keep the resolution but never let a removed page be read', () => {
    const { d } = setup();
    expect(read(d, 0x1000n)).toBe(0x22);
    expect(status(d.request(new Uint8Array([4, 0, 0, 0, 2, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0xff, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])))).toBe(0);
    expect(read(d, 0x1000n)).toBe('translation');
    expect(status(d.request(map(2, 0x1000n, 0x1fffn, 0x9000n)))).toBe(0);
    expect(read(d, 0x1000n)).toBe(0x33);
  });
});

describe('flushTranslationCaches', () => {
  it('empties the translation caches and keeps the CD cache warm; flushCaches empties that too', () => {
    const { d, memory } = dev();
    // CD 0: T0SZ 16 | V; AA64; TTB0 = 0x40000, mapping 0x1000 → 0x9000. A second table at 0x60000 maps it to 0xa000.
    lpae(memory, 0x40000, 0x1000n, 0x9000n);
    lpae(memory, 0x60000, 0x1000n, 0xa000n);
    memory.write(0x9000n, Uint8Array.of(0x5c));
    memory.write(0xa000n, Uint8Array.of(0x6d));
    memory.write32(0x10000n, (16 | (1 << 31)) >>> 0);
    memory.write32(0x10004n, 1 << 9);
    memory.write64(0x10008n, 0x40000n);
    expect(status(d.request(attachTable({ domain: 1, flags: 0, format: 2, cd: [0, 2, 0, 0x10000n] })))).toBe(0); // S1DSS = SSID0
    const read = () => {
      const r = d.dma({ endpoint: EP, iova: 0x1000n, size: 1, write: false });
      return r.ok ? r.data[0] : r.fault.class;
    };
    expect(read()).toBe(0x5c);
    expect(d.iotlb.size).toBe(1);
    // The guest points CD 0 at the other table without INVALIDATE F_CONFIG: the cached CD stays in force.
    memory.write64(0x10008n, 0x60000n);
    d.flushTranslationCaches();
    expect(d.iotlb.size).toBe(0);
    expect(d.mapCache.size).toBe(0);
    expect(read()).toBe(0x5c); // walked again through the stale (cached) CD
    d.flushCaches();
    expect(read()).toBe(0x6d); // the CD fetched again
  });

  it('empties the MAP/UNMAP translation cache; the next DMA looks the page up again', () => {
    const { d, memory } = dev();
    memory.write(0x5000n, Uint8Array.of(0x42));
    d.request(attach(1));
    d.request(map(1, 0x1000n, 0x1fffn, 0x5000n));
    const into = new Uint8Array(1);
    expect(d.dmaInto(EP, { iova: 0x1000n, size: 1, write: false }, into)).toBeUndefined();
    expect(d.mapCache.size).toBe(1);
    d.flushTranslationCaches();
    expect(d.mapCache.size).toBe(0);
    into[0] = 0;
    expect(d.dmaInto(EP, { iova: 0x1000n, size: 1, write: false }, into)).toBeUndefined();
    expect(into[0]).toBe(0x42);
    expect(d.mapCache.size).toBe(1);
  });
});
