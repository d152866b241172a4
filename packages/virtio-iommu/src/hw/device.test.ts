import { PhysicalMemory } from '@ioasid/core';
import { describe, expect, it } from 'vitest';
import { VirtioIommuDevice } from './device.js';

// Requests are built by hand from the spec's struct layouts (virtio spec "Device operations"):
// head = u8 type + 3 reserved; little-endian fields at the offsets given in each helper.
function le(b: Uint8Array, off: number, v: bigint, bytes: number): void {
  for (let i = 0; i < bytes; i++) b[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}
/** ATTACH readable part (20 bytes): domain @4, endpoint @8, flags @12, reserved @16. */
function attach(domain: number, endpoint: number, flags = 0, reserved = 0): Uint8Array {
  const b = new Uint8Array(20);
  b[0] = 1;
  le(b, 4, BigInt(domain), 4);
  le(b, 8, BigInt(endpoint), 4);
  le(b, 12, BigInt(flags), 4);
  le(b, 16, BigInt(reserved), 4);
  return b;
}
/** DETACH readable part (20 bytes): domain @4, endpoint @8, reserved[8] @12. */
function detach(domain: number, endpoint: number, reservedByte = 0): Uint8Array {
  const b = new Uint8Array(20);
  b[0] = 2;
  le(b, 4, BigInt(domain), 4);
  le(b, 8, BigInt(endpoint), 4);
  b[12] = reservedByte;
  return b;
}
/** MAP readable part (36 bytes): domain @4, virt_start @8, virt_end @16, phys_start @24, flags @32. */
function map(domain: number, start: bigint, end: bigint, phys: bigint, flags: number): Uint8Array {
  const b = new Uint8Array(36);
  b[0] = 3;
  le(b, 4, BigInt(domain), 4);
  le(b, 8, start, 8);
  le(b, 16, end, 8);
  le(b, 24, phys, 8);
  le(b, 32, BigInt(flags), 4);
  return b;
}
/** UNMAP readable part (28 bytes): domain @4, virt_start @8, virt_end @16, reserved @24. */
function unmap(domain: number, start: bigint, end: bigint, reserved = 0): Uint8Array {
  const b = new Uint8Array(28);
  b[0] = 4;
  le(b, 4, BigInt(domain), 4);
  le(b, 8, start, 8);
  le(b, 16, end, 8);
  le(b, 24, BigInt(reserved), 4);
  return b;
}
/** PROBE readable part (72 bytes): endpoint @4, reserved[64] @8. */
function probe(endpoint: number): Uint8Array {
  const b = new Uint8Array(72);
  b[0] = 5;
  le(b, 4, BigInt(endpoint), 4);
  return b;
}
const status = (w: Uint8Array): number => w[w.length - 4]!;
const S = { OK: 0, IOERR: 1, UNSUPP: 2, DEVERR: 3, INVAL: 4, RANGE: 5, NOENT: 6, FAULT: 7, NOMEM: 8 };
const EP = 0x0008; // 00:01.0 → (0 << 8) | (1 << 3 | 0)
const EP2 = 0x0010; // 00:02.0
const R = 1;
const W = 2;

function device(profile?: 'strict' | 'qemu' | 'cloud-hypervisor' | 'crosvm', features?: bigint) {
  const memory = new PhysicalMemory({ size: 1n << 32n });
  const dev = new VirtioIommuDevice({ memory, endpoints: [EP, EP2], ...(profile ? { profile } : {}), ...(features === undefined ? {} : { features }) });
  return { memory, dev };
}

describe('config space (struct virtio_iommu_config, 40 bytes)', () => {
  it('lays out the strict defaults at the spec offsets', () => {
    const { dev } = device();
    const c = dev.readConfig();
    expect(c.length).toBe(40);
    const dv = new DataView(c.buffer);
    // page_size_mask @0: 4 KiB | 2 MiB | 1 GiB = 0x1000 | 0x200000 | 0x40000000
    expect(dv.getBigUint64(0, true)).toBe(0x1000n + 0x200000n + 0x40000000n);
    expect(dv.getBigUint64(8, true)).toBe(0n); // input_range.start
    expect(dv.getBigUint64(16, true)).toBe(2n ** 64n - 1n); // input_range.end (inclusive)
    expect(dv.getUint32(24, true)).toBe(0); // domain_range.start
    expect(dv.getUint32(28, true)).toBe(0xffff); // domain_range.end
    expect(dv.getUint32(32, true)).toBe(512); // probe_size
    expect(c[36]).toBe(0); // bypass
    expect([...c.subarray(37)]).toEqual([0, 0, 0]);
  });

  it('offers MAP_UNMAP, PROBE, INPUT_RANGE, DOMAIN_RANGE, BYPASS_CONFIG and VERSION_1 by default', () => {
    const { dev } = device();
    expect(dev.deviceFeatures).toBe((1n << 2n) | (1n << 4n) | (1n << 0n) | (1n << 1n) | (1n << 6n) | (1n << 32n));
  });

  it('lets the driver write bypass only with BYPASS_CONFIG negotiated, keeping bit 0', () => {
    const { dev } = device();
    expect(dev.negotiate((1n << 32n) | (1n << 2n))).toBe(true);
    dev.writeConfig(36, Uint8Array.of(1));
    expect(dev.readConfig()[36]).toBe(0);
    dev.reset();
    expect(dev.negotiate((1n << 32n) | (1n << 2n) | (1n << 6n))).toBe(true);
    dev.writeConfig(36, Uint8Array.of(3));
    expect(dev.readConfig()[36]).toBe(1);
    dev.writeConfig(32, Uint8Array.of(9)); // probe_size is not driver-writable
    expect(dev.readConfig()[32]).toBe(0x00); // 512 = 0x200 → byte 32 is 0x00
    expect(dev.readConfig()[33]).toBe(0x02);
  });

  it('refuses FEATURES_OK for a bit that was not offered', () => {
    const { dev } = device();
    expect(dev.negotiate(1n << 5n)).toBe(false);
  });

  it('keeps bypass over a device reset', () => {
    const { dev, memory } = device();
    dev.negotiate(dev.deviceFeatures);
    dev.writeConfig(36, Uint8Array.of(1));
    dev.reset();
    expect(dev.readConfig()[36]).toBe(1);
    memory.write(0x5000n, Uint8Array.of(7));
    expect(dev.dma({ endpoint: EP, iova: 0x5000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(7) });
  });
});

describe('request framing', () => {
  it('leaves an unknown type unwritten (used length 0)', () => {
    const { dev } = device();
    expect(dev.request(Uint8Array.of(9, 0, 0, 0)).length).toBe(0);
  });
  it('QEMU writes UNSUPP for an unknown type and DEVERR for a short head', () => {
    const { dev } = device('qemu');
    expect(status(dev.request(Uint8Array.of(9, 0, 0, 0)))).toBe(S.UNSUPP);
    expect(status(dev.request(Uint8Array.of(1)))).toBe(S.DEVERR);
    expect(status(dev.request(attach(1, EP).subarray(0, 12)))).toBe(S.INVAL);
  });
  it('leaves a request too short for its type unwritten, and never throws', () => {
    const { dev } = device();
    expect(dev.request(new Uint8Array(0)).length).toBe(0);
    expect(dev.request(attach(1, EP).subarray(0, 19)).length).toBe(0);
    expect(dev.request(attach(1, EP), 3).length).toBe(0); // no room for the tail
  });
  it('cloud-hypervisor answers INVAL to any size mismatch', () => {
    const { dev } = device('cloud-hypervisor');
    const longer = new Uint8Array(24);
    longer.set(attach(1, EP));
    expect(status(dev.request(longer))).toBe(S.INVAL);
    expect(status(dev.request(attach(1, EP)))).toBe(S.OK);
  });
  it('writes only the 4-byte tail for ATTACH, with reserved bytes zero', () => {
    const { dev } = device();
    expect([...dev.request(attach(1, EP))]).toEqual([0, 0, 0, 0]);
  });
});

describe('ATTACH', () => {
  it('rejects reserved ≠ 0 and unknown flags with INVAL, an unknown endpoint with NOENT', () => {
    const { dev } = device();
    expect(status(dev.request(attach(1, EP, 0, 1)))).toBe(S.INVAL);
    expect(status(dev.request(attach(1, EP, 1 << 5)))).toBe(S.INVAL);
    expect(status(dev.request(attach(1, 0x9999)))).toBe(S.NOENT);
    expect(status(dev.request(attach(0x10000, EP)))).toBe(S.RANGE); // outside domain_range 0..0xffff
  });
  it('accepts ATTACH_F_BYPASS only with BYPASS_CONFIG negotiated', () => {
    const { dev } = device(undefined, (1n << 32n) | (1n << 2n));
    expect(status(dev.request(attach(1, EP, 1)))).toBe(S.INVAL);
  });
  it('rejects a BYPASS flag inconsistent with the existing domain (INVAL), leaving the endpoint where it was', () => {
    const { dev, memory } = device();
    expect(status(dev.request(attach(1, EP)))).toBe(S.OK);
    expect(status(dev.request(map(1, 0x1000n, 0x1fffn, 0x8000n, R)))).toBe(S.OK);
    expect(status(dev.request(attach(1, EP2, 1)))).toBe(S.INVAL);
    expect(status(dev.request(attach(2, EP2, 1)))).toBe(S.OK);
    expect(status(dev.request(attach(2, EP)))).toBe(S.INVAL);
    memory.write(0x8000n, Uint8Array.of(0x42));
    expect(dev.dma({ endpoint: EP, iova: 0x1000n, size: 1, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x42) });
  });
  it('QEMU detaches first, so the same INVAL leaves the endpoint detached', () => {
    const { dev } = device('qemu');
    dev.request(attach(1, EP));
    dev.request(attach(2, EP2, 1));
    expect(status(dev.request(attach(2, EP)))).toBe(S.INVAL);
    // bypass boots at 1 in QEMU: the detached endpoint is now in bypass
    expect(dev.dma({ endpoint: EP, iova: 0x1000n, size: 1, write: false }).ok).toBe(true);
    expect(status(dev.request(map(1, 0n, 0xfffn, 0n, R)))).toBe(S.NOENT); // domain 1 died with its last endpoint
  });
  it('moves an endpoint between domains; the old domain ceases to exist with its mappings', () => {
    const { dev } = device();
    dev.request(attach(1, EP));
    dev.request(map(1, 0x1000n, 0x1fffn, 0x8000n, R));
    expect(status(dev.request(attach(2, EP)))).toBe(S.OK);
    expect(status(dev.request(unmap(1, 0n, 0xffffn)))).toBe(S.NOENT);
    dev.request(attach(1, EP));
    const r = dev.dma({ endpoint: EP, iova: 0x1000n, size: 1, write: false });
    expect(r.ok).toBe(false); // recreated empty
  });
  it('crosvm cannot take an endpoint out of a shared domain (UNSUPP)', () => {
    const { dev } = device('crosvm');
    dev.request(attach(1, EP));
    dev.request(attach(1, EP2));
    expect(status(dev.request(attach(2, EP)))).toBe(S.UNSUPP);
    expect(status(dev.request(detach(1, EP)))).toBe(S.UNSUPP);
  });
  it('cloud-hypervisor never answers NOENT for an endpoint', () => {
    const { dev } = device('cloud-hypervisor');
    expect(status(dev.request(attach(1, 0x9999)))).toBe(S.OK);
  });
  it('cloud-hypervisor does not check reserved… but QEMU does not either', () => {
    const { dev } = device('qemu');
    expect(status(dev.request(attach(1, EP, 0, 7)))).toBe(S.OK);
  });
});

describe('DETACH', () => {
  it('NOENT for an unknown endpoint, INVAL when not attached to that domain, reserved ignored', () => {
    const { dev } = device();
    expect(status(dev.request(detach(1, 0x9999)))).toBe(S.NOENT);
    expect(status(dev.request(detach(1, EP)))).toBe(S.INVAL);
    dev.request(attach(1, EP));
    expect(status(dev.request(detach(2, EP)))).toBe(S.INVAL);
    expect(status(dev.request(detach(1, EP, 0xff)))).toBe(S.OK);
  });
  it('after DETACH the endpoint faults with reason DOMAIN (bypass 0)', () => {
    const { dev } = device();
    dev.request(attach(1, EP));
    dev.request(map(1, 0n, 0xfffn, 0x3000n, R | W));
    dev.request(detach(1, EP));
    const r = dev.dma({ endpoint: EP, iova: 0x10n, size: 4, write: false });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.fault.class).toBe('blocked');
      expect(r.fault.code).toBe(1);
    }
  });
});

describe('MAP', () => {
  it('answers every spec status in its condition', () => {
    const { dev } = device();
    expect(status(dev.request(map(1, 0n, 0xfffn, 0n, R)))).toBe(S.NOENT); // no domain
    dev.request(attach(1, EP));
    expect(status(dev.request(map(1, 0n, 0xfffn, 0n, 1 << 3)))).toBe(S.INVAL); // unknown flag
    expect(status(dev.request(map(1, 0n, 0xfffn, 0n, 4)))).toBe(S.INVAL); // MMIO without F_MMIO
    expect(status(dev.request(map(1, 0x800n, 0x17ffn, 0n, R)))).toBe(S.RANGE); // virt_start misaligned
    expect(status(dev.request(map(1, 0n, 0xfffn, 0x800n, R)))).toBe(S.RANGE); // phys misaligned
    expect(status(dev.request(map(1, 0n, 0xffen, 0n, R)))).toBe(S.RANGE); // virt_end + 1 misaligned
    expect(status(dev.request(map(1, 0x2000n, 0xfffn, 0n, R)))).toBe(S.RANGE); // virt_end < virt_start
    expect(status(dev.request(map(1, 0xfee00000n, 0xfee00fffn, 0n, W)))).toBe(S.INVAL); // MSI RESV_MEM
    expect(status(dev.request(map(1, 0x1000n, 0x2fffn, 0x10000n, R | W)))).toBe(S.OK);
    expect(status(dev.request(map(1, 0x2000n, 0x3fffn, 0x20000n, R)))).toBe(S.INVAL); // intersects
    dev.request(attach(2, EP2, 1));
    expect(status(dev.request(map(2, 0n, 0xfffn, 0n, R)))).toBe(S.INVAL); // bypass domain
  });
  it('answers RANGE outside input_range', () => {
    const memory = new PhysicalMemory({ size: 1n << 32n });
    const dev = new VirtioIommuDevice({ memory, endpoints: [EP], config: { inputStart: 0x1000n, inputEnd: 0xffffffffn } });
    dev.request(attach(1, EP));
    expect(status(dev.request(map(1, 0n, 0xfffn, 0n, R)))).toBe(S.RANGE);
    expect(status(dev.request(map(1, 0xfffff000n, 0x100000fffn, 0n, R)))).toBe(S.RANGE);
  });
  it('is UNSUPP when MAP_UNMAP was not negotiated', () => {
    const { dev } = device();
    dev.negotiate((1n << 32n) | (1n << 4n));
    dev.request(attach(1, EP));
    expect(status(dev.request(map(1, 0n, 0xfffn, 0n, R)))).toBe(S.UNSUPP);
  });
  it('crosvm checks alignment before flags; QEMU checks neither alignment nor RESV_MEM', () => {
    const c = device('crosvm').dev;
    c.request(attach(1, EP));
    expect(status(c.request(map(1, 0x800n, 0x17ffn, 0n, 1 << 4)))).toBe(S.RANGE);
    const q = device('qemu').dev;
    q.request(attach(1, EP));
    expect(status(q.request(map(1, 0x800n, 0x17ffn, 0n, R)))).toBe(S.OK);
    expect(status(q.request(map(1, 0xfee00000n, 0xfee00fffn, 0n, R)))).toBe(S.OK);
  });
  it('translates PA = VA − virt_start + phys_start with R/W enforced', () => {
    const { dev, memory } = device();
    dev.request(attach(1, EP));
    dev.request(map(1, 0x40000n, 0x41fffn, 0x90000n, R | W));
    dev.request(map(1, 0x50000n, 0x50fffn, 0xa0000n, R));
    const w = dev.dma({ endpoint: EP, iova: 0x40ffen, size: 4, write: true, data: Uint8Array.of(1, 2, 3, 4) });
    expect(w.ok).toBe(true);
    // 0x40ffe − 0x40000 + 0x90000 = 0x90ffe, crossing into the next page at 0x91000
    expect([...memory.read(0x90ffen, 4)]).toEqual([1, 2, 3, 4]);
    const bad = dev.dma({ endpoint: EP, iova: 0x50000n, size: 0, write: true, data: Uint8Array.of(9) });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.fault.class).toBe('permission');
    expect(memory.read(0xa0000n, 1)[0]).toBe(0);
  });
});

describe('UNMAP (the spec examples, each from a blank address space)', () => {
  function fresh() {
    const { dev } = device();
    dev.request(attach(1, EP));
    const m = (a: bigint, b: bigint) => status(dev.request(map(1, a * 0x1000n, b * 0x1000n + 0xfffn, a * 0x1000n, R)));
    const u = (a: bigint, b: bigint) => status(dev.request(unmap(1, a * 0x1000n, b * 0x1000n + 0xfffn)));
    const mapped = (a: bigint) => dev.dma({ endpoint: EP, iova: a * 0x1000n, size: 1, write: false }).ok;
    return { m, u, mapped, dev };
  }
  it('(1) unmap(0,4) on nothing succeeds', () => {
    expect(fresh().u(0n, 4n)).toBe(S.OK);
  });
  it('(2) map(0,9), unmap(0,9)', () => {
    const t = fresh();
    t.m(0n, 9n);
    expect(t.u(0n, 9n)).toBe(S.OK);
    expect(t.mapped(0n)).toBe(false);
  });
  it('(3) map(0,4)+map(5,9), unmap(0,9) removes both', () => {
    const t = fresh();
    t.m(0n, 4n);
    t.m(5n, 9n);
    expect(t.u(0n, 9n)).toBe(S.OK);
    expect(t.mapped(0n) || t.mapped(5n)).toBe(false);
  });
  it('(4) map(0,9), unmap(0,4) fails with RANGE and removes nothing', () => {
    const t = fresh();
    t.m(0n, 9n);
    expect(t.u(0n, 4n)).toBe(S.RANGE);
    expect(t.mapped(0n)).toBe(true);
  });
  it('(5) map(0,4)+map(5,9), unmap(0,4) removes the first', () => {
    const t = fresh();
    t.m(0n, 4n);
    t.m(5n, 9n);
    expect(t.u(0n, 4n)).toBe(S.OK);
    expect([t.mapped(0n), t.mapped(5n)]).toEqual([false, true]);
  });
  it('(6) map(0,4), unmap(0,9) and (7) map(0,4)+map(10,14), unmap(0,14)', () => {
    const t = fresh();
    t.m(0n, 4n);
    expect(t.u(0n, 9n)).toBe(S.OK);
    t.m(0n, 4n);
    t.m(10n, 14n);
    expect(t.u(0n, 14n)).toBe(S.OK);
    expect(t.mapped(0n) || t.mapped(10n)).toBe(false);
  });
  it('QEMU removes covered mappings before the one it would split', () => {
    const { dev } = device('qemu');
    dev.request(attach(1, EP));
    dev.request(map(1, 0n, 0xfffn, 0n, R));
    dev.request(map(1, 0x1000n, 0x2fffn, 0x1000n, R));
    expect(status(dev.request(unmap(1, 0n, 0x1fffn)))).toBe(S.RANGE);
    expect(dev.dma({ endpoint: EP, iova: 0n, size: 1, write: false }).ok).toBe(false);
  });
  it('NOENT without domain, INVAL on bypass domain and on reserved ≠ 0', () => {
    const { dev } = device();
    expect(status(dev.request(unmap(1, 0n, 0xfffn)))).toBe(S.NOENT);
    dev.request(attach(1, EP, 1));
    expect(status(dev.request(unmap(1, 0n, 0xfffn)))).toBe(S.INVAL);
    dev.request(attach(2, EP2));
    expect(status(dev.request(unmap(2, 0n, 0xfffn, 1)))).toBe(S.INVAL);
  });
});

describe('PROBE', () => {
  it('reports exactly one RESV_MEM MSI property 0xfee00000–0xfeefffff, zero-filled after it', () => {
    const { dev } = device();
    const w = dev.request(probe(EP));
    expect(w.length).toBe(512 + 4);
    const dv = new DataView(w.buffer);
    expect(dv.getUint16(0, true)).toBe(1); // type RESV_MEM
    expect(dv.getUint16(2, true)).toBe(20); // length without the header
    expect(w[4]).toBe(1); // subtype MSI
    expect([w[5], w[6], w[7]]).toEqual([0, 0, 0]);
    expect(dv.getBigUint64(8, true)).toBe(0xfee00000n);
    expect(dv.getBigUint64(16, true)).toBe(0xfeefffffn);
    expect(w.subarray(24, 512).every((x) => x === 0)).toBe(true);
    expect(status(w)).toBe(S.OK);
  });
  it('NOENT for an unknown endpoint; INVAL without properties when the buffer is smaller than probe_size', () => {
    const { dev } = device();
    expect(status(dev.request(probe(0x77)))).toBe(S.NOENT);
    const small = dev.request(probe(EP), 100);
    expect(small.length).toBe(100);
    expect(status(small)).toBe(S.INVAL);
    expect(small.subarray(0, 96).every((x) => x === 0)).toBe(true);
  });
  it('is not written when F_PROBE is not offered', () => {
    const { dev } = device(undefined, (1n << 32n) | (1n << 2n));
    expect(dev.request(probe(EP)).length).toBe(0);
  });
  it('cloud-hypervisor probe_size 24 holds exactly the one property', () => {
    const { dev } = device('cloud-hypervisor');
    const w = dev.request(probe(EP));
    expect(w.length).toBe(28);
    expect(status(w)).toBe(S.OK);
  });
});

describe('fault records (eventq, 24 bytes)', () => {
  it('strict: reason MAPPING with READ|ADDRESS and the faulting IOVA', () => {
    const { dev } = device();
    dev.request(attach(1, EP));
    const r = dev.dma({ endpoint: EP, iova: 0x123456789000n, size: 8, write: false });
    expect(r.ok).toBe(false);
    const [ev] = dev.takeEvents();
    expect(ev).toBeDefined();
    const dv = new DataView(ev!.buffer);
    expect(ev!.length).toBe(24);
    expect(ev![0]).toBe(2); // R_MAPPING
    expect([ev![1], ev![2], ev![3]]).toEqual([0, 0, 0]);
    expect(dv.getUint32(4, true)).toBe((1 << 8) | 1); // ADDRESS | READ
    expect(dv.getUint32(8, true)).toBe(EP);
    expect(dv.getUint32(12, true)).toBe(0);
    expect(dv.getBigUint64(16, true)).toBe(0x123456789000n);
    expect(dev.takeEvents()).toEqual([]);
  });
  it('strict: reason DOMAIN with WRITE for an unattached endpoint', () => {
    const { dev } = device();
    dev.dma({ endpoint: EP2, iova: 0x2000n, size: 0, write: true, data: Uint8Array.of(1) });
    const ev = dev.takeEvents()[0]!;
    expect(ev[0]).toBe(1);
    expect(new DataView(ev.buffer).getUint32(4, true)).toBe((1 << 8) | 2);
  });
  it('QEMU sets READ/WRITE only for permission faults; cloud-hypervisor writes no record', () => {
    const q = device('qemu');
    q.dev.negotiate(q.dev.deviceFeatures);
    q.dev.writeConfig(36, Uint8Array.of(0));
    q.dev.request(attach(1, EP));
    q.dev.request(map(1, 0n, 0xfffn, 0n, R));
    q.dev.dma({ endpoint: EP, iova: 0x5000n, size: 1, write: false });
    q.dev.dma({ endpoint: EP, iova: 0n, size: 0, write: true, data: Uint8Array.of(1) });
    const [a, b] = q.dev.takeEvents();
    expect(new DataView(a!.buffer).getUint32(4, true)).toBe(1 << 8);
    expect(new DataView(b!.buffer).getUint32(4, true)).toBe((1 << 8) | 2);
    const c = device('cloud-hypervisor');
    c.dev.request(attach(1, EP));
    expect(c.dev.dma({ endpoint: EP, iova: 0x5000n, size: 1, write: false }).ok).toBe(false);
    expect(c.dev.takeEvents()).toEqual([]);
  });
  it('drops records beyond the event queue size', () => {
    const memory = new PhysicalMemory({ size: 1n << 32n });
    const dev = new VirtioIommuDevice({ memory, endpoints: [EP], eventQueueSize: 2 });
    for (let i = 0; i < 3; i++) dev.dma({ endpoint: EP, iova: 0n, size: 1, write: false });
    expect(dev.takeEvents().length).toBe(2);
    expect(dev.eventsDropped).toBe(1);
  });
});

describe('DMA path', () => {
  it('RESERVED regions fault, MSI writes are interrupts that touch no memory', () => {
    const memory = new PhysicalMemory({ size: 1n << 33n });
    const dev = new VirtioIommuDevice({
      memory, endpoints: [EP],
      config: { resvMem: [{ subtype: 1, start: 0xfee00000n, end: 0xfeefffffn }, { subtype: 0, start: 0x10000n, end: 0x1ffffn }] },
    });
    dev.request(attach(1, EP));
    const r = dev.dma({ endpoint: EP, iova: 0x10000n, size: 1, write: false });
    expect(r.ok).toBe(false);
    expect(dev.dma({ endpoint: EP, iova: 0xfee00000n, size: 0, write: true, data: Uint8Array.of(1, 0, 0, 0) }).ok).toBe(true);
    expect(dev.msiWrites).toBe(1);
    expect(memory.read(0xfee00000n, 1)[0]).toBe(0);
  });
  it('a mapping to physical memory that does not exist is an external abort, not an exception', () => {
    const { dev } = device();
    dev.request(attach(1, EP));
    dev.request(map(1, 0n, 0xfffn, 1n << 40n, R));
    const r = dev.dma({ endpoint: EP, iova: 0n, size: 4, write: false });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.fault.class).toBe('external-abort');
  });
  it('translates near the top of the 64-bit space with inclusive virt_end', () => {
    const { dev, memory } = device();
    dev.request(attach(1, EP));
    expect(status(dev.request(map(1, 0xfffffffffffff000n, 0xffffffffffffffffn, 0x7000n, R | W)))).toBe(S.OK);
    memory.write(0x7ffcn, Uint8Array.of(1, 2, 3, 4));
    expect(dev.dma({ endpoint: EP, iova: 0xfffffffffffffffcn, size: 4, write: false })).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3, 4) });
    expect(dev.dma({ endpoint: EP, iova: 0xfffffffffffffffcn, size: 8, write: false }).ok).toBe(false);
  });
  it('checks every page before touching memory', () => {
    const { dev, memory } = device();
    dev.request(attach(1, EP));
    dev.request(map(1, 0n, 0xfffn, 0x4000n, R | W));
    const r = dev.dma({ endpoint: EP, iova: 0xffen, size: 0, write: true, data: Uint8Array.of(1, 2, 3, 4) });
    expect(r.ok).toBe(false);
    expect(memory.read(0x4ffen, 2)).toEqual(new Uint8Array(2));
  });
  it('unknown endpoint: reason UNKNOWN', () => {
    const { dev } = device();
    const r = dev.dma({ endpoint: 0x4242, iova: 0n, size: 1, write: false });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.fault.code).toBe(0);
  });
});
