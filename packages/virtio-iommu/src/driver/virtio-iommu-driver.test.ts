import { expandDevices } from '@ioasid/core';
import { isIoasidError } from '@ioasid/uapi';
import { describe, expect, it } from 'vitest';
import { VirtioIommuDriver } from './virtio-iommu-driver.js';
import type { VirtioIommuTransport } from './transport.js';

/** A scripted device: records the request bytes and answers with a chosen status. */
function fakeTransport(answer: (req: Uint8Array) => number = () => 0, domainEnd = 12, extraFeatures = 0n) {
  const log: Uint8Array[] = [];
  const config = new Uint8Array(40);
  const dv = new DataView(config.buffer);
  dv.setBigUint64(0, 0x1000n, true); // page_size_mask: 4 KiB
  dv.setBigUint64(16, (1n << 48n) - 1n, true); // input_range.end
  dv.setUint32(24, 10, true); // domain_range 10..12
  dv.setUint32(28, domainEnd, true);
  dv.setUint32(32, 24, true); // probe_size
  let negotiated = 0n;
  const t: VirtioIommuTransport & { log: Uint8Array[]; negotiated: () => bigint; writes: [number, number][] } = {
    log,
    writes: [],
    negotiated: () => negotiated,
    // VERSION_1, MAP_UNMAP, INPUT_RANGE, DOMAIN_RANGE, PROBE, BYPASS_CONFIG, and bit 7 (unknown to the driver)
    deviceFeatures: (1n << 32n) | 0b1010111n | (1n << 7n) | extraFeatures,
    negotiate(f) {
      negotiated = f;
      return true;
    },
    readConfig: () => config,
    writeConfig(off, data) {
      t.writes.push([off, data[0]!]);
    },
    request(readable, wlen = 4) {
      log.push(readable.slice());
      const out = new Uint8Array(wlen);
      out[wlen - 4] = answer(readable);
      return out;
    },
    takeEvents: () => [],
    setEventNotifier() {
      // none
    },
  };
  return t;
}

const [ep, ep2] = expandDevices(['0000:00:02.0', '0000:00:03.0']);
const PAGING = { nestParent: false, dirtyTracking: false, pasid: false, iopf: false } as const;
/** Decoded requests of one type: [domain, endpoint-or-virt_start, …] as the spec lays them out. */
function fields(log: Uint8Array[], type: number): bigint[][] {
  return log.filter((r) => r[0] === type).map((r) => {
    const v = new DataView(r.buffer);
    if (type === 3) return [BigInt(v.getUint32(4, true)), v.getBigUint64(8, true), v.getBigUint64(16, true)];
    if (type === 4) return [BigInt(v.getUint32(4, true)), v.getBigUint64(8, true), v.getBigUint64(16, true)];
    return [BigInt(v.getUint32(4, true)), BigInt(v.getUint32(8, true)), BigInt(v.getUint32(12, true))];
  });
}

describe('VirtioIommuDriver', () => {
  it('negotiates only known features, clears bypass, PROBEs, and reserves the first domain ID for identity', () => {
    const t = fakeTransport();
    const drv = new VirtioIommuDriver({ transport: t, endpoints: [ep!] });
    expect(t.negotiated()).toBe((1n << 32n) | 0b1010111n);
    expect(t.writes).toEqual([[36, 0]]);
    expect(t.log[0]![0]).toBe(5);
    expect(new DataView(t.log[0]!.buffer).getUint32(4, true)).toBe(0x10);
    const a = drv.allocPagingDomain(ep!, { nestParent: false, dirtyTracking: false, pasid: false, iopf: false }) as unknown as { id: number };
    expect(a.id).toBe(11); // 10 is the identity domain
    drv.allocPagingDomain(ep!, { nestParent: false, dirtyTracking: false, pasid: false, iopf: false });
    let err: unknown;
    try {
      drv.allocPagingDomain(ep!, { nestParent: false, dirtyTracking: false, pasid: false, iopf: false });
    } catch (e) {
      err = e;
    }
    expect(isIoasidError(err, 'ENOSPC')).toBe(true);
  });

  it('sends one MAP per physically contiguous run, after ATTACH replays them', () => {
    const t = fakeTransport();
    const drv = new VirtioIommuDriver({ transport: t, endpoints: [ep!] });
    const d = drv.allocPagingDomain(ep!, { nestParent: false, dirtyTracking: false, pasid: false, iopf: false });
    d.map(0x100000n, Uint32Array.of(10, 11, 12, 20), 4, 3);
    expect(t.log.length).toBe(1); // not live yet: nothing sent beyond PROBE
    drv.attach(ep!, d, undefined);
    const maps = t.log.filter((r) => r[0] === 3).map((r) => {
      const v = new DataView(r.buffer);
      return [v.getBigUint64(8, true), v.getBigUint64(16, true), v.getBigUint64(24, true), v.getUint32(32, true)];
    });
    // run 1: pfns 10..12 at 0x100000..0x102fff → 0xa000; run 2: pfn 20 at 0x103000..0x103fff → 0x14000
    expect(maps).toEqual([[0x100000n, 0x102fffn, 0xa000n, 3], [0x103000n, 0x103fffn, 0x14000n, 3]]);
  });

  it('rolls a half-sent MAP back with one UNMAP and throws the status errno', () => {
    let maps = 0;
    const t = fakeTransport((r) => (r[0] === 3 && ++maps === 2 ? 8 : 0));
    const drv = new VirtioIommuDriver({ transport: t, endpoints: [ep!] });
    const d = drv.allocPagingDomain(ep!, { nestParent: false, dirtyTracking: false, pasid: false, iopf: false });
    drv.attach(ep!, d, undefined);
    let err: unknown;
    try {
      d.map(0x0n, Uint32Array.of(10, 20), 2, 1);
    } catch (e) {
      err = e;
    }
    expect(isIoasidError(err, 'ENOMEM')).toBe(true);
    const last = t.log[t.log.length - 1]!;
    const v = new DataView(last.buffer);
    expect([last[0], v.getBigUint64(8, true), v.getBigUint64(16, true)]).toEqual([4, 0n, 0xfffn]);
  });

  it('refuses to bind without MAP_UNMAP', () => {
    const t = fakeTransport();
    const bare = { ...t, deviceFeatures: 1n << 32n };
    expect(() => new VirtioIommuDriver({ transport: bare, endpoints: [ep!] })).toThrow(/ENODEV/);
  });

  it('turns a used length of 0 into EIO', () => {
    const t = fakeTransport();
    const silent = { ...t, request: () => new Uint8Array(0) };
    expect(() => new VirtioIommuDriver({ transport: silent, endpoints: [ep!] })).toThrow(/EIO/);
  });

  it('gives each attachment of a paging domain a device domain of its own and MAPs into each', () => {
    const t = fakeTransport(() => 0, 20);
    const drv = new VirtioIommuDriver({ transport: t, endpoints: [ep!, ep2!] });
    const d = drv.allocPagingDomain(ep!, PAGING); // ID 11 (10 is the identity domain)
    d.map(0x100000n, Uint32Array.of(10), 1, 3);
    drv.attach(ep!, d, undefined);
    drv.attach(ep2!, d, undefined);
    // ATTACH: [domain, endpoint, flags] — RIDs 0x10 (00:02.0) and 0x18 (00:03.0)
    expect(fields(t.log, 1)).toEqual([[11n, 0x10n, 0n], [12n, 0x18n, 0n]]);
    // each new device domain gets the area replayed: [domain, virt_start, virt_end]
    expect(fields(t.log, 3)).toEqual([[11n, 0x100000n, 0x100fffn], [12n, 0x100000n, 0x100fffn]]);
    d.map(0x200000n, Uint32Array.of(20), 1, 3);
    expect(fields(t.log, 3).slice(2)).toEqual([[11n, 0x200000n, 0x200fffn], [12n, 0x200000n, 0x200fffn]]);
    drv.detach(ep!, undefined);
    expect(fields(t.log, 2)).toEqual([[11n, 0x10n, 0n]]);
    d.unmap(0x200000n, 0x1000n);
    expect(fields(t.log, 4)).toEqual([[12n, 0x200000n, 0x200fffn]]); // only the device domain still held
    drv.attach(ep!, d, undefined); // 11 is free again: the domain's own ID comes back
    expect(fields(t.log, 1).at(-1)).toEqual([11n, 0x10n, 0n]);
  });

  it('rolls a MAP that fails in the second device domain back in both', () => {
    let maps = 0;
    const t = fakeTransport((r) => (r[0] === 3 && ++maps === 2 ? 8 : 0), 20);
    const drv = new VirtioIommuDriver({ transport: t, endpoints: [ep!, ep2!] });
    const d = drv.allocPagingDomain(ep!, PAGING);
    drv.attach(ep!, d, undefined);
    drv.attach(ep2!, d, undefined);
    expect(() => { d.map(0x0n, Uint32Array.of(10), 1, 3); }).toThrow(/ENOMEM/);
    expect(fields(t.log, 4)).toEqual([[11n, 0n, 0xfffn]]); // nothing reached 12; 11 is unmapped again
    d.map(0x0n, Uint32Array.of(10), 1, 3); // the driver forgot the area: it maps again
    expect(fields(t.log, 3).slice(2)).toEqual([[11n, 0n, 0xfffn], [12n, 0n, 0xfffn]]);
  });

  it('blocks with an empty domain when the device answers DETACH with UNSUPP, and leaves it on the next attach', () => {
    const t = fakeTransport((r) => (r[0] === 2 ? 2 : 0), 20);
    const drv = new VirtioIommuDriver({ transport: t, endpoints: [ep!] });
    const d = drv.allocPagingDomain(ep!, PAGING);
    d.map(0x0n, Uint32Array.of(10), 1, 3);
    drv.attach(ep!, d, undefined);
    drv.detach(ep!, undefined); // does not throw
    // DETACH of 0x10 from 11 refused → ATTACH of 0x10 to the fresh, empty domain 12 (no MAP follows)
    expect(fields(t.log, 2)).toEqual([[11n, 0x10n, 0n]]);
    expect(fields(t.log, 1)).toEqual([[11n, 0x10n, 0n], [12n, 0x10n, 0n]]);
    expect(fields(t.log, 3)).toEqual([[11n, 0n, 0xfffn]]);
    const before = t.log.length;
    drv.detach(ep!, undefined); // already blocked: nothing to send
    expect(t.log.length).toBe(before);
    drv.attach(ep!, d, undefined); // leaving 12 destroys it: its ID is free for the next empty domain
    drv.detach(ep!, undefined);
    expect(fields(t.log, 1).slice(2)).toEqual([[11n, 0x10n, 0n], [12n, 0x10n, 0n]]);
  });

  it('an IOPF paging domain needs the extension and PRI, and ATTACHes with F_X_IOPF', () => {
    const plain = new VirtioIommuDriver({ transport: fakeTransport(), endpoints: [ep!] });
    expect(() => plain.allocPagingDomain(ep!, { ...PAGING, iopf: true })).toThrow(/EOPNOTSUPP/);
    const t = fakeTransport(() => 0, 20, 1n << 23n);
    const [pri, noPri] = expandDevices([{ name: '0000:00:02.0', pri: true }, { name: '0000:00:03.0', pri: false }]);
    const drv = new VirtioIommuDriver({ transport: t, endpoints: [pri!, noPri!] });
    expect(() => drv.allocPagingDomain(noPri!, { ...PAGING, iopf: true })).toThrow(/EOPNOTSUPP/);
    const d = drv.allocPagingDomain(pri!, { ...PAGING, iopf: true });
    expect(drv.attachConflict(noPri!, d, undefined)).toMatch(/no PRI/);
    drv.attach(pri!, d, undefined);
    expect(fields(t.log, 1)).toEqual([[11n, 0x10n, 8n]]); // flags: VIRTIO_IOMMU_ATTACH_F_X_IOPF = 1 << 3
  });
});
