/**
 * A software-only reference backend for core's own tests (like iommufd's selftest mock
 * domain): domains are maps from IOVA page to frame, attachments are keyed by (RID, PASID),
 * DMA from anything not attached faults as blocked. It allocates one "table" frame per 2 MiB
 * of IOVA it maps (freed when the last entry under it goes) and one "context entry" frame per
 * attached (RID, PASID) slot, so fail_nth reaches its allocation sites; it records dirty pages in its
 * entries; nested domains walk a one-level user table (8-byte entries: output | W<<1 | V)
 * through the parent and cache the result until invalidated; SVA domains walk the process's
 * CPU page table (the mock CPU format below).
 */

import {
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMU_READ,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMU_WRITE,
  IoasidError,
  type BackendDefinition,
  type BackendHost,
  type CpuPageTableFormat,
  type DmaRequest,
  type DmaResult,
  type DriverDomain,
  type DriverViommu,
  type EndpointDescriptor,
  type HwInfo,
  type HwptData,
  type InvalidateEntry,
  type IovaRange,
  type ProcessMm,
  type ReservedRegion,
} from '@ioasid/uapi';
import { dmaResultInto } from '../platform/dma-buffers.js';

const PAGE = 4096n;

/** Options of the mock. */
export interface MockOptions {
  /** Aperture (default [0, 2^48-1]). */
  readonly aperture?: IovaRange;
  /** Reserved regions (default the x86 MSI window). */
  readonly reserved?: readonly ReservedRegion[];
  /** PASID bits (default 20; 0 = none). */
  readonly pasidBits?: number;
  /** Dirty tracking (default true). */
  readonly dirty?: boolean;
  /** Endpoints whose domains are incompatible with others' (other IOMMU "units"). */
  readonly unitOf?: (ep: EndpointDescriptor) => number;
  /** Per-endpoint overrides of the hw_info the mock reports (e.g. `{ iopf: false }`). */
  readonly info?: (ep: EndpointDescriptor) => Partial<HwInfo>;
  /** The driver's EEH entry point (absent: the mock has no EEH, as every backend but PAPR). */
  readonly eeh?: (ep: EndpointDescriptor, op: number) => number;
  /** Offer vIOMMUs of type IOMMU_VIOMMU_TYPE_ARM_SMMUV3 (a stand-in type: the mock's nesting is its own). */
  readonly viommu?: boolean;
}

/** A vIOMMU of the mock, for tests. */
export interface MockViommu {
  /** The IOMMU unit it belongs to. */
  readonly unit: number;
  /** RID → virtual ID. */
  readonly vdevices: Map<number, bigint>;
  /** Invalidation batches received. */
  readonly invalidations: (readonly InvalidateEntry[])[];
  /** Event sinks by type. */
  readonly sinks: Map<number, (data: Uint8Array) => void>;
  /** Set once freed. */
  freed: boolean;
  /**
   * Reports an event for the device with RID `rid` as a vSMMU does: 8 bytes, the virtual ID
   * (little-endian u32) then `code`; a device without a vDEVICE reports nothing.
   */
  report(rid: number, code: number): void;
}

/** Mock CPU page table: 8-byte entries, bit 0 present, bit 1 writable, address in 12..51. */
export const MOCK_CPU: CpuPageTableFormat = {
  name: 'mock',
  levels: 4,
  table(pa, out) {
    out[0] = ((pa % 2 ** 32) | 3) >>> 0;
    out[1] = Math.floor(pa / 2 ** 32);
  },
  leaf(pa, writable, _x, out) {
    out[0] = ((pa % 2 ** 32) | 1 | (writable ? 2 : 0)) >>> 0;
    out[1] = Math.floor(pa / 2 ** 32);
  },
};

interface Entry {
  pfn: number;
  prot: number;
  dirty: boolean;
}

class MockDomain implements DriverDomain {
  readonly pageSizes = [4096n, 2n * 1024n * 1024n];
  readonly entries = new Map<bigint, Entry>(); // iova page number → entry
  readonly tables = new Map<bigint, number>(); // 2 MiB index → table frame
  tracking = false;
  readonly cache = new Map<bigint, { out: bigint; write: boolean }>();
  freed = false;
  /** The vIOMMU a nested domain was allocated from. */
  viommu: MockViommu | undefined;

  constructor(
    readonly kind: DriverDomain['kind'],
    readonly apertures: readonly IovaRange[],
    readonly unit: number,
    private readonly host: BackendHost,
    readonly parent?: MockDomain,
    readonly data?: HwptData,
    readonly mm?: ProcessMm,
    readonly iopf = false,
  ) {}

  map(iova: bigint, pfns: Uint32Array, count: number, prot: number): void {
    if (this.kind !== 'paging') throw new IoasidError('EINVAL', 'domain', 'not a paging domain');
    const first = iova / PAGE;
    const newTables: bigint[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const t = (first + BigInt(i)) >> 9n;
        if (!this.tables.has(t) && !newTables.includes(t)) {
          this.tables.set(t, this.host.memory.allocFrame());
          newTables.push(t);
        }
      }
    } catch (e) {
      for (const t of newTables) {
        this.host.memory.freeFrames(this.tables.get(t)!);
        this.tables.delete(t);
      }
      throw e;
    }
    for (let i = 0; i < count; i++) this.entries.set(first + BigInt(i), { pfn: pfns[i]!, prot, dirty: false });
  }

  unmap(iova: bigint, length: bigint): void {
    const first = iova / PAGE;
    const count = length / PAGE;
    for (let i = 0n; i < count; i++) this.entries.delete(first + i);
    // a table whose 512 entries are all gone is freed (so a rolled-back map leaves no frame behind)
    for (let t = first >> 9n; t <= (first + count - 1n) >> 9n; t++) {
      const frame = this.tables.get(t);
      if (frame === undefined) continue;
      let used = false;
      for (let p = t << 9n; p < (t + 1n) << 9n && !used; p++) used = this.entries.has(p);
      if (!used) {
        this.host.memory.freeFrames(frame);
        this.tables.delete(t);
      }
    }
  }

  invalidateUser(entries: readonly InvalidateEntry[]): number {
    let n = 0;
    for (const e of entries) {
      if (e.type !== 'virtio') throw new IoasidError('EINVAL', `entries[${n}]`, 'mock takes virtio entries');
      this.cache.clear();
      n++;
    }
    return n;
  }

  setDirtyTracking(enable: boolean): void {
    this.tracking = enable;
  }

  readDirty(iova: bigint, length: bigint, pageSize: bigint, bitmap: Uint8Array, noClear: boolean): void {
    for (let a = iova; a < iova + length; a += PAGE) {
      const e = this.entries.get(a / PAGE);
      if (e?.dirty !== true) continue;
      const bit = Number((a - iova) / pageSize);
      bitmap[bit >> 3]! |= 1 << (bit & 7);
      if (!noClear) e.dirty = false;
    }
  }

  free(): void {
    for (const f of this.tables.values()) this.host.memory.freeFrames(f);
    this.tables.clear();
    this.freed = true;
  }
}

function asMock(d: DriverDomain): MockDomain {
  if (d instanceof MockDomain) return d;
  throw new IoasidError('EINVAL', 'domain', 'not a mock domain');
}

/** The hardware model the mock's tests can inspect. */
export interface MockHardware {
  /** (rid, pasid | -1) → domain. */
  readonly attached: Map<string, MockDomain>;
  /** Page responses received: [rid, pasid, grpid, code]. */
  readonly responses: [number, number | undefined, number, number][];
  /** Every domain ever allocated (freed ones have `freed` set). */
  readonly domains: Set<MockDomain>;
  /** (rid, pasid | -1) → the "context entry" frame the mock allocates per attached slot. */
  readonly contexts: Map<string, number>;
  /** Every vIOMMU ever allocated. */
  readonly viommus: MockViommu[];
}

/** The mock backend definition. */
export function mockBackend(options: MockOptions = {}): BackendDefinition {
  const aperture = options.aperture ?? { start: 0n, last: (1n << 48n) - 1n };
  const reserved = options.reserved ?? [{ start: 0xfee00000n, last: 0xfeefffffn, kind: 'msi' as const }];
  const pasidBits = options.pasidBits ?? 20;
  const unitOf = options.unitOf ?? (() => 0);
  return {
    name: 'mock',
    cpuPageTable: MOCK_CPU,
    create(host) {
      const hw: MockHardware = { attached: new Map(), responses: [], domains: new Set(), contexts: new Map(), viommus: [] };
      const key = (ep: EndpointDescriptor, pasid: number | undefined) => `${ep.rid}/${pasid ?? -1}`;
      const fault = (iova: bigint, cls: 'blocked' | 'translation' | 'permission' | 'page-request'): DmaResult => ({
        ok: false, fault: { class: cls, name: `MOCK_${cls.toUpperCase()}`, code: 0, iova, record: {} },
      });
      const mk = (kind: DriverDomain['kind'], ep: EndpointDescriptor, parent?: MockDomain, data?: HwptData, mm?: ProcessMm, iopf = false) => {
        const d = new MockDomain(kind, [aperture], unitOf(ep), host, parent, data, mm, iopf);
        hw.domains.add(d);
        return d;
      };
      const walkCpu = (mm: ProcessMm, va: bigint): { pa: bigint; write: boolean } | undefined => {
        let table = mm.pageTableRoot;
        for (let level = 3; level >= 0; level--) {
          const idx = (va >> BigInt(12 + 9 * level)) & 511n;
          const e = host.memory.read64(table + idx * 8n);
          if ((e & 1n) === 0n) return undefined;
          table = e & 0x000ffffffffff000n;
          if (level === 0) return { pa: table + (va & 0xfffn), write: (e & 2n) !== 0n };
        }
        return undefined;
      };
      const translate = (d: MockDomain, iova: bigint, write: boolean): { pa: bigint } | 'translation' | 'permission' => {
        if (d.kind === 'identity') return { pa: iova };
        if (d.kind === 'paging') {
          const e = d.entries.get(iova / PAGE);
          if (e === undefined) return 'translation';
          if ((e.prot & (write ? IOMMU_WRITE : IOMMU_READ)) === 0) return 'permission';
          if (write && d.tracking) e.dirty = true;
          return { pa: BigInt(e.pfn) * PAGE + (iova % PAGE) };
        }
        if (d.kind === 'sva') {
          const t = walkCpu(d.mm!, iova);
          if (t === undefined) return 'translation';
          if (write && !t.write) return 'permission';
          return { pa: t.pa };
        }
        if (d.kind === 'nested') {
          const page = iova / PAGE;
          let c = d.cache.get(page);
          if (c === undefined) {
            const root = (d.data as { root: bigint }).root;
            const entryAddr = translate(d.parent!, root + page * 8n, false);
            if (typeof entryAddr === 'string') return entryAddr;
            const e = host.memory.read64(entryAddr.pa);
            if ((e & 1n) === 0n) return 'translation';
            c = { out: e & ~0xfffn, write: (e & 2n) !== 0n };
            d.cache.set(page, c);
          }
          if (write && !c.write) return 'permission';
          const out = translate(d.parent!, c.out + (iova % PAGE), write);
          return out;
        }
        return 'translation';
      };
      const grp = { next: 1 };
      const dma = (ep: EndpointDescriptor, req: DmaRequest): DmaResult => {
        const d = hw.attached.get(key(ep, req.pasid));
        if (d === undefined || d.kind === 'blocked') return fault(req.iova, 'blocked');
        const size = req.write ? (req.data?.length ?? 0) : req.size;
        const out = new Uint8Array(req.write ? 0 : size);
        for (let done = 0; done < size; ) {
          const iova = req.iova + BigInt(done);
          const t = translate(d, iova, req.write);
          if (typeof t === 'string') {
            if (t === 'translation' && (d.kind === 'sva' || d.iopf) && ep.pri) {
              host.reportPageRequest({
                endpoint: ep, pasid: req.pasid, addr: iova & ~0xfffn, grpid: grp.next++, last: true,
                perm: req.write ? IOMMU_PGFAULT_PERM_WRITE : IOMMU_PGFAULT_PERM_READ,
              });
              return fault(iova, 'page-request');
            }
            return fault(iova, t);
          }
          const n = Math.min(4096 - Number(iova % PAGE), size - done);
          if (!host.memory.contains(Number(t.pa), n)) return fault(iova, 'translation');
          if (req.write) host.memory.writeFrom(Number(t.pa), req.data!, done, n);
          else host.memory.readInto(Number(t.pa), out, done, n);
          done += n;
        }
        return { ok: true, data: out };
      };
      const info = (ep: EndpointDescriptor): HwInfo => ({
        backend: 'mock',
        pasidBits,
        nestingFormats: ['virtio_table'],
        passthrough: true,
        blocked: true,
        sva: pasidBits > 0,
        iopf: true,
        globalPasid: pasidBits > 0,
        dirtyTracking: options.dirty ?? true,
        pageSizes: [4096n, 2n * 1024n * 1024n],
        iovaRanges: [aperture],
        reservedRegions: reserved,
        capabilities: 0,
        dataType: 0,
        unsupported: pasidBits > 0 ? {} : { pasid: 'mock configured without PASIDs' },
        ...(options.viommu === true ? { viommuTypes: [IOMMU_VIOMMU_TYPE_ARM_SMMUV3] } : {}),
        vendor: { mock: true },
        ...options.info?.(ep),
      });
      return {
        hardware: hw,
        dmaInto: (ep, req, into) => dmaResultInto(dma(ep, req), into),
        driver: {
          backend: 'mock',
          hwInfo: info,
          allocPagingDomain: (ep, o) => mk('paging', ep, undefined, undefined, undefined, o.iopf),
          allocNestedDomain: (ep, parent, data, o) => mk('nested', ep, asMock(parent), data, undefined, o.iopf),
          allocSvaDomain: (ep, mm) => {
            // like a real driver, the root is read when the domain is built (frame 0 is never a table)
            if (mm.pageTableRoot === 0n) throw new IoasidError('EINVAL', 'mm', 'the process has no CPU page table');
            return mk('sva', ep, undefined, undefined, mm);
          },
          identityDomain: (ep) => mk('identity', ep),
          blockedDomain: (ep) => mk('blocked', ep),
          attachConflict: (ep, d) => (asMock(d).unit === unitOf(ep) ? undefined : 'domain is on another IOMMU unit'),
          attach: (ep, d, pasid) => {
            const k = key(ep, pasid);
            const m = asMock(d);
            // as arm_smmu_attach_prepare_vmaster: a nested domain of a vIOMMU needs the device's virtual ID
            if (m.viommu !== undefined && !m.viommu.vdevices.has(ep.rid)) throw new IoasidError('ENOENT', 'dev', 'no vDEVICE on the vIOMMU');
            // the first attachment of a slot allocates its "context entry" (may fail: fail_nth)
            if (!hw.contexts.has(k)) hw.contexts.set(k, host.memory.allocFrame());
            hw.attached.set(k, m);
          },
          detach: (ep, pasid) => {
            const k = key(ep, pasid);
            hw.attached.delete(k);
            const f = hw.contexts.get(k);
            if (f !== undefined) {
              host.memory.freeFrames(f);
              hw.contexts.delete(k);
            }
          },
          pageResponse: (ep, pasid, grpid, code) => {
            hw.responses.push([ep.rid, pasid, grpid, code]);
          },
          ...(options.eeh === undefined ? {} : { eehPeOp: options.eeh }),
          ...(options.viommu !== true
            ? {}
            : {
                allocViommu: (ep: EndpointDescriptor, parent: DriverDomain, type: number): DriverViommu => {
                  if (type !== IOMMU_VIOMMU_TYPE_ARM_SMMUV3) throw new IoasidError('EOPNOTSUPP', 'type', `no vIOMMU type ${type}`);
                  const p = asMock(parent);
                  if (p.unit !== unitOf(ep)) throw new IoasidError('EINVAL', 'hwpt', 'the nest parent is on another IOMMU unit');
                  const v: MockViommu = {
                    unit: p.unit, vdevices: new Map(), invalidations: [], sinks: new Map(), freed: false,
                    report(rid, code) {
                      const virt = v.vdevices.get(rid);
                      const sink = v.sinks.get(IOMMU_VEVENTQ_TYPE_ARM_SMMUV3);
                      if (virt === undefined || sink === undefined) return;
                      const rec = new Uint8Array(8);
                      new DataView(rec.buffer).setUint32(0, Number(virt), true);
                      rec[4] = code;
                      sink(rec);
                    },
                  };
                  hw.viommus.push(v);
                  return {
                    eventTypes: [IOMMU_VEVENTQ_TYPE_ARM_SMMUV3],
                    addVdevice(dev, virtId) {
                      if (unitOf(dev) !== v.unit) throw new IoasidError('EINVAL', 'dev', 'the device is on another IOMMU unit');
                      if (virtId > 0xffffffffn) throw new IoasidError('EINVAL', 'virtId', 'a virtual ID has 32 bits');
                      v.vdevices.set(dev.rid, virtId);
                    },
                    removeVdevice(dev) {
                      v.vdevices.delete(dev.rid);
                    },
                    allocNested: (dev, data, o) => {
                      const d = mk('nested', dev, p, data, undefined, o.iopf);
                      d.viommu = v;
                      return d;
                    },
                    invalidate(entries) {
                      v.invalidations.push(entries);
                      return entries.length;
                    },
                    setEventSink(t, sink) {
                      if (sink === undefined) v.sinks.delete(t);
                      else v.sinks.set(t, sink);
                    },
                    free() {
                      v.freed = true;
                    },
                  };
                },
              }),
        },
      };
    },
  };
}
