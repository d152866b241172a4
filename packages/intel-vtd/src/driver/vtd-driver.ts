/**
 * The VT-d IOMMU driver: core's backend driver interface on top of one or more units, as
 * Linux's intel-iommu implements iommu_ops (domain allocation, attach / set_dev_pasid /
 * remove_dev_pasid, hw_info, page responses).
 */

import {
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  IoasidError,
  type BackendHost,
  type DriverDomain,
  type EndpointDescriptor,
  type HwInfo,
  type HwptData,
  type IommuDriver,
  type PagingDomainOptions,
  type ProcessMm,
} from '@ioasid/uapi';
import { QI_RESP_FAILURE, QI_RESP_INVALID, QI_RESP_SUCCESS } from '../spec/invalidation.js';
import { IntelIommu, type DeviceState, type RegisterAccess } from './intel-iommu.js';
import { BlockedDomain, IdentityDomain, NestedDomain, PagingDomain, SvaDomain, VtdDomain, nestedConflict } from './domains.js';

/** The x86 MSI window (reserved in every I/O address space). */
export const MSI_WINDOW = { start: 0xfee00000n, last: 0xfeefffffn } as const;

/** The VT-d driver. */
export class VtdDriver implements IommuDriver {
  /** Backend name. */
  readonly backend = 'intel-vtd';
  /** The units, in order. */
  readonly units: IntelIommu[];
  private readonly unitOf = new Map<string, IntelIommu>();
  private readonly attached = new Map<DeviceState, Map<number, VtdDomain>>();
  private readonly identity: IdentityDomain;
  private readonly blocked = new BlockedDomain();

  /**
   * @param host - the platform
   * @param registers - each unit's registers
   * @param assign - the unit index of each endpoint
   */
  constructor(
    private readonly host: BackendHost,
    registers: readonly RegisterAccess[],
    assign: (dev: EndpointDescriptor) => number,
  ) {
    this.units = registers.map((r, i) => new IntelIommu(i, r, host.memory, host));
    for (const dev of host.endpoints) {
      const unit = this.units[assign(dev)] ?? this.units[0]!;
      this.unitOf.set(dev.name, unit);
      this.attached.set(unit.probe(dev), new Map());
    }
    const haw = this.units[0]?.caps.mgaw ?? 48;
    this.identity = new IdentityDomain((1n << BigInt(haw)) - 1n);
  }

  /** The interrupt line of unit `index`. */
  interrupt(index: number, source: 'fault' | 'page-request' | 'invalidation'): void {
    const unit = this.units[index];
    if (unit === undefined) return;
    if (source === 'fault') unit.handleFault();
    else if (source === 'page-request') unit.handlePageRequests();
  }

  private lookup(dev: EndpointDescriptor): { unit: IntelIommu; state: DeviceState } {
    const unit = this.unitOf.get(dev.name);
    const state = unit?.devices.get(dev.rid);
    if (unit === undefined || state === undefined) throw new IoasidError('ENODEV', 'dev', `${dev.name} is not behind a VT-d unit`);
    return { unit, state };
  }

  /** IOMMU_GET_HW_INFO for VT-d. */
  hwInfo(dev: EndpointDescriptor): HwInfo {
    const { unit } = this.lookup(dev);
    const c = unit.caps;
    const pasidBits = dev.pasid && c.pasid ? Math.min(20, c.pasidBits) : 0;
    const unsupported: Record<string, string> = {};
    if (!c.nested) unsupported['nesting'] = 'ECAP.NEST is clear';
    if (!c.ssads) unsupported['dirtyTracking'] = 'ECAP.SLADS/SMPWCS: no second-stage A/D';
    if (pasidBits === 0) unsupported['pasid'] = dev.pasid ? 'ECAP.PASID is clear' : 'the device has no PASID capability';
    const sva = pasidBits > 0 && c.flts;
    if (!sva) unsupported['sva'] = pasidBits === 0 ? 'no PASID' : 'ECAP.FSTS is clear (no first stage)';
    const iopf = dev.pri && c.prs;
    if (!iopf) unsupported['iopf'] = dev.pri ? 'ECAP.PRS is clear' : 'the device has no PRI capability';
    if (!c.pt) unsupported['passthrough'] = 'ECAP.PT is clear';
    // Linux's intel-iommu registers no viommu_alloc: VT-d nesting takes a nested HWPT over the
    // nest parent directly and its user invalidation goes to that HWPT (IOMMU_HWPT_INVALIDATE_DATA_VTD_S1)
    unsupported['viommu'] = 'VT-d has no vIOMMU type: a nested HWPT is allocated over the nest parent and invalidated directly';
    // VT-d reports a DMA fault per request (FRCD, PRQ); nothing isolates the device
    unsupported['eeh'] = 'VT-d has no EEH: a DMA fault is recorded per request and never freezes the device';
    const firstStage = c.flts;
    const lastIova = firstStage ? (1n << 47n) - 1n : (1n << BigInt(Math.min(30 + 9 * c.agaw, c.mgaw))) - 1n;
    const pageSizes = [4096n];
    if (c.sllps & 1) pageSizes.push(2n << 20n);
    if (c.sllps & 2 && c.fl1gp) pageSizes.push(1n << 30n);
    return {
      backend: this.backend,
      pasidBits,
      nestingFormats: c.nested ? ['vtd_s1'] : [],
      passthrough: c.pt,
      blocked: true,
      sva,
      iopf,
      globalPasid: pasidBits > 0,
      dirtyTracking: c.ssads,
      pageSizes,
      iovaRanges: [{ start: 0n, last: lastIova }],
      reservedRegions: [{ ...MSI_WINDOW, kind: 'msi' }],
      capabilities: c.ssads ? IOMMU_HW_CAP_DIRTY_TRACKING : 0,
      dataType: IOMMU_HW_INFO_TYPE_INTEL_VTD,
      unsupported,
      vendor: { flags: 0, cap: unit.cap, ecap: unit.ecap, unit: unit.index, defaultDomainStage: firstStage ? 'first' : 'second' },
    };
  }

  /** A paging domain (first stage by default; second stage for nest parents and dirty tracking). */
  allocPagingDomain(dev: EndpointDescriptor, options: PagingDomainOptions): DriverDomain {
    const { unit } = this.lookup(dev);
    const c = unit.caps;
    if (options.nestParent && !c.nested) throw new IoasidError('EOPNOTSUPP', 'flags', 'ECAP.NEST is clear: no nest parent');
    if (options.dirtyTracking && !c.ssads) throw new IoasidError('EOPNOTSUPP', 'flags', 'no second-stage A/D bits for dirty tracking');
    if ((options.nestParent || options.dirtyTracking || !c.flts) && !c.slts) {
      throw new IoasidError('EOPNOTSUPP', 'flags', 'the unit has no second-stage translation');
    }
    return new PagingDomain(this.host.memory, c, options);
  }

  /** A nested domain from `iommu_hwpt_vtd_s1`. */
  allocNestedDomain(dev: EndpointDescriptor, parent: DriverDomain, data: HwptData, options: { readonly iopf: boolean }): DriverDomain {
    const { unit } = this.lookup(dev);
    if (data.type !== 'vtd_s1') throw new IoasidError('EOPNOTSUPP', 'data', `VT-d takes vtd_s1 data, not ${data.type}`);
    if (!(parent instanceof PagingDomain) || !parent.options.nestParent || parent.stage !== 'second') {
      throw new IoasidError('EINVAL', 'parent', 'the parent is not a second-stage nest-parent domain');
    }
    if ((data.flags & ~7) !== 0) throw new IoasidError('EOPNOTSUPP', 'data', `unknown vtd_s1 flags 0x${data.flags.toString(16)}`);
    if (data.pgtblAddr % 4096n !== 0n || data.pgtblAddr < 0n) throw new IoasidError('EINVAL', 'data', 'pgtbl_addr must be 4 KiB aligned');
    const why = nestedConflict(unit.caps, data, parent.aw);
    if (why !== undefined) throw new IoasidError('EINVAL', 'data', why);
    return new NestedDomain(parent, data, options.iopf);
  }

  /** An SVA domain for a process. */
  allocSvaDomain(dev: EndpointDescriptor, mm: ProcessMm): DriverDomain {
    const { unit } = this.lookup(dev);
    const d = new SvaDomain(mm);
    const why = d.conflict(unit);
    if (why !== undefined) throw new IoasidError('EOPNOTSUPP', 'dev', why);
    return d;
  }

  /** The pass-through domain (ECAP.PT). */
  identityDomain(dev: EndpointDescriptor): DriverDomain | undefined {
    return this.lookup(dev).unit.caps.pt ? this.identity : undefined;
  }

  /** The blocking domain. */
  blockedDomain(dev: EndpointDescriptor): DriverDomain | undefined {
    this.lookup(dev);
    return this.blocked;
  }

  /** Why `domain` cannot be attached to (dev, pasid). */
  attachConflict(dev: EndpointDescriptor, domain: DriverDomain, pasid: number | undefined): string | undefined {
    const { unit } = this.lookup(dev);
    if (!(domain instanceof VtdDomain)) return 'not a VT-d domain';
    if (pasid !== undefined) {
      const bits = dev.pasid && unit.caps.pasid ? Math.min(20, unit.caps.pasidBits) : 0;
      if (bits === 0) return `${dev.name} has no PASID support`;
      if (!Number.isInteger(pasid) || pasid < 0 || pasid >= 2 ** bits) return `PASID ${pasid} is beyond ${bits} bits`;
    } else if (domain instanceof SvaDomain) return 'an SVA domain attaches to a PASID';
    return domain.conflict(unit);
  }

  /** Attaches (replacing) the RID's PASID 0 or a PASID's entry. */
  attach(dev: EndpointDescriptor, domain: DriverDomain, pasid: number | undefined): void {
    if (domain === this.blocked) {
      this.detach(dev, pasid);
      return;
    }
    const why = this.attachConflict(dev, domain, pasid);
    if (why !== undefined || !(domain instanceof VtdDomain)) throw new IoasidError('EINVAL', 'domain', why ?? 'not a VT-d domain');
    const d = domain;
    const { unit, state } = this.lookup(dev);
    const p = pasid ?? 0; // IOMMU_NO_PASID: requests without PASID use RID_PASID = 0
    const map = this.attached.get(state)!;
    const old = map.get(p);
    if (old === d) return;
    const did = d.acquireDid(unit);
    try {
      unit.setPasidEntry(state, p, d.entry(unit, did));
    } catch (e) {
      d.releaseDid(unit);
      throw e;
    }
    d.addAttachment({ unit, state, pasid: p });
    map.set(p, d);
    if (old !== undefined) {
      old.removeAttachment(unit, state, p);
      old.releaseDid(unit);
    }
    this.updatePageRequests(unit, state);
  }

  /** Detaches: the PASID entry is torn down, so DMA faults (blocked). */
  detach(dev: EndpointDescriptor, pasid: number | undefined): void {
    const { unit, state } = this.lookup(dev);
    const p = pasid ?? 0;
    unit.clearPasidEntry(state, p);
    const map = this.attached.get(state)!;
    const old = map.get(p);
    if (old !== undefined) {
      map.delete(p);
      old.removeAttachment(unit, state, p);
      old.releaseDid(unit);
      this.updatePageRequests(unit, state);
    }
  }

  private updatePageRequests(unit: IntelIommu, state: DeviceState): void {
    let want = false;
    for (const d of this.attached.get(state)!.values()) if (d.iopf) want = true;
    unit.setPageRequests(state, want);
  }

  /** intel_iommu_page_response: a page group response descriptor. */
  pageResponse(dev: EndpointDescriptor, pasid: number | undefined, grpid: number, code: number): void {
    const { unit } = this.lookup(dev);
    const vtdCode = code === IOMMUFD_PAGE_RESP_SUCCESS ? QI_RESP_SUCCESS : code === IOMMUFD_PAGE_RESP_INVALID ? QI_RESP_INVALID : QI_RESP_FAILURE;
    unit.respond(dev.rid, pasid, grpid, vtdCode);
  }
}
