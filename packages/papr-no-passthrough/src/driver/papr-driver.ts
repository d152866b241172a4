/**
 * The PAPR IOMMU driver: the backend driver interface over hcalls and RTAS only, as the
 * pseries kernel drives a PE. What PAPR lacks is refused up front: no PASID, no nesting, no
 * SVA, no I/O page faults, no dirty tracking, and neither an identity nor a blocking domain —
 * a device that is not attached to a domain finds only "page fault" TCEs, and its first DMA
 * freezes its PE.
 */

import {
  IOMMU_HW_INFO_TYPE_NONE,
  IoasidError,
  type DriverDomain,
  type EndpointDescriptor,
  type HwInfo,
  type HwptData,
  type IommuDriver,
  type PagingDomainOptions,
  type PhysicalMemoryLike,
  type ProcessMm,
} from '@ioasid/uapi';
import type { PaprFirmware, PhbNode } from '../spec/firmware.js';
import { setupPe, type DdwPolicy } from './ddw-setup.js';
import type { DriverPe } from './driver-pe.js';
import { EEH_INJECT_UNSUPPORTED, eehPeOp } from './eeh.js';
import { PaprDomain } from './papr-domain.js';
import { TceOps } from './tce-ops.js';

/** The reasons hw_info gives for what PAPR cannot do. */
export const PAPR_UNSUPPORTED: Readonly<Record<string, string>> = {
  passthrough: 'PAPR has no passthrough: a PE cannot DMA until attached to a DMA window',
  blocked: 'PAPR has no blocking domain: an unattached PE simply has no valid TCE, and a DMA freezes it (EEH)',
  pasid: 'PAPR has no PASID: TCE tables translate the bus address only',
  nesting: 'PAPR has no nesting: the hypervisor owns the TCE tables; the partition only asks for entries by hcall',
  sva: 'PAPR has no SVA: no PASID, and TCEs cannot point at a CPU page table',
  iopf: 'PAPR has no recoverable I/O page faults: a DMA error freezes the PE (EEH)',
  globalPasid: 'PAPR has no PASID, so no system-wide PASID either',
  dirtyTracking: 'a TCE has no dirty bit: PAPR cannot track dirty pages',
  viommu: 'PAPR has no vIOMMU: no nesting, the hypervisor owns the TCE tables',
  eehInject: EEH_INJECT_UNSUPPORTED,
};

/** Options of {@link PaprDriver}. */
export interface PaprDriverOptions {
  /** hcall and RTAS. */
  readonly firmware: PaprFirmware;
  /** The PHB node of the device tree. */
  readonly tree: PhbNode;
  /** Partition memory (for the TCE list page). */
  readonly memory: PhysicalMemoryLike;
  /** How the 64-bit window is made. */
  readonly ddw?: DdwPolicy;
}

/** The PAPR IOMMU driver. */
export class PaprDriver implements IommuDriver {
  /** The backend name. */
  readonly backend = 'papr-no-passthrough';
  private readonly tree: PhbNode;
  private readonly ops: TceOps;
  private readonly pes: DriverPe[];
  private readonly byDevice = new Map<string, DriverPe>();
  private readonly firmware: PaprFirmware;

  /** Sets every PE up (default window, 64-bit DDW) and takes a TCE list page. */
  constructor(options: PaprDriverOptions) {
    this.tree = options.tree;
    this.firmware = options.firmware;
    const listPage = options.memory.allocFrame() * 4096;
    this.ops = new TceOps(options.firmware, options.memory, listPage);
    this.pes = options.tree.pes.map((node) => setupPe(options.firmware, options.memory, options.tree.buid, node, options.ddw ?? {}));
    for (const pe of this.pes) for (const d of pe.node.devices) this.byDevice.set(d, pe);
  }

  private peOf(dev: EndpointDescriptor, argument = 'dev'): DriverPe {
    const pe = this.byDevice.get(dev.name);
    if (pe === undefined) throw new IoasidError('ENODEV', argument, `${dev.name} is not in any PE of the PHB`);
    return pe;
  }

  /** hw_info: the PE's windows are the IOVA ranges; every PAPR absence is explained. */
  hwInfo(dev: EndpointDescriptor): HwInfo {
    const pe = this.peOf(dev);
    const pageSizes = [...new Set(pe.windows.map((w) => 1n << BigInt(w.pageShift)))].sort((a, b) => (a < b ? -1 : 1));
    return {
      backend: this.backend,
      pasidBits: 0,
      nestingFormats: [],
      passthrough: false,
      blocked: false,
      sva: false,
      iopf: false,
      globalPasid: false,
      dirtyTracking: false,
      dmaFaultFreezes: true,
      // the functions of a PE share its windows and its freeze: one IOMMU group (pseries
      // iommu_group per PE, arch/powerpc/kernel/iommu.c iommu_add_device)
      group: [...pe.node.devices],
      pageSizes,
      iovaRanges: pe.windows.map((w) => ({ start: w.start, last: w.last })),
      reservedRegions: [],
      capabilities: 0,
      dataType: IOMMU_HW_INFO_TYPE_NONE,
      unsupported: PAPR_UNSUPPORTED,
      vendor: {
        buid: this.tree.buid,
        configAddr: pe.node.configAddr,
        peDevices: pe.node.devices,
        windows: pe.windows.map((w) => ({
          kind: w.kind,
          liobn: w.liobn,
          start: w.start,
          size: w.last - w.start + 1n,
          pageShift: w.pageShift,
        })),
        ddw: {
          applicable: pe.node.ddwApplicable,
          extensions: pe.node.ddwExtensions,
          query: pe.ddwQuery,
          failure: pe.ddwFailure,
        },
      },
    };
  }

  /**
   * VFIO_EEH_PE_OP: EEH on the device's PE through RTAS (`ibm,set-eeh-option` enable/disable
   * and thaw, `ibm,read-slot-reset-state2`, `ibm,set-slot-reset`, `ibm,configure-pe`). The op
   * applies to the whole PE, so to every function in it.
   */
  eehPeOp(dev: EndpointDescriptor, op: number): number {
    return eehPeOp(this.firmware, this.tree.buid, this.peOf(dev), op);
  }

  /** A domain over the PE's windows (one PE per domain). */
  allocPagingDomain(dev: EndpointDescriptor, options: PagingDomainOptions): DriverDomain {
    const pe = this.peOf(dev);
    if (options.nestParent) throw new IoasidError('EOPNOTSUPP', 'flags', PAPR_UNSUPPORTED['nesting']!);
    if (options.dirtyTracking) throw new IoasidError('EOPNOTSUPP', 'flags', PAPR_UNSUPPORTED['dirtyTracking']!);
    if (options.pasid) throw new IoasidError('EOPNOTSUPP', 'flags', PAPR_UNSUPPORTED['pasid']!);
    if (options.iopf) throw new IoasidError('EOPNOTSUPP', 'faultQueue', PAPR_UNSUPPORTED['iopf']!);
    if (pe.windows.length === 0) throw new IoasidError('ENODEV', 'dev', `${pe.label} has no DMA window`);
    return new PaprDomain(pe, this.ops);
  }

  /** No nesting on PAPR. */
  allocNestedDomain(_dev: EndpointDescriptor, _parent: DriverDomain, _data: HwptData, _options: { readonly iopf: boolean }): DriverDomain {
    throw new IoasidError('EOPNOTSUPP', 'data', PAPR_UNSUPPORTED['nesting']!);
  }

  /** No SVA on PAPR. */
  allocSvaDomain(_dev: EndpointDescriptor, _mm: ProcessMm): DriverDomain {
    throw new IoasidError('EOPNOTSUPP', 'dev', PAPR_UNSUPPORTED['sva']!);
  }

  /** No identity domain: PAPR has no passthrough. */
  identityDomain(_dev: EndpointDescriptor): DriverDomain | undefined {
    return undefined;
  }

  /** No blocking domain: an unattached PE has no valid TCE. */
  blockedDomain(_dev: EndpointDescriptor): DriverDomain | undefined {
    return undefined;
  }

  /** Why `domain` cannot serve `dev`: another PE's domain, a PASID, a foreign or freed domain. */
  attachConflict(dev: EndpointDescriptor, domain: DriverDomain, pasid: number | undefined): string | undefined {
    if (pasid !== undefined) return PAPR_UNSUPPORTED['pasid'];
    if (!(domain instanceof PaprDomain)) return 'not a PAPR domain';
    if (domain.isFreed) return 'the domain was freed';
    const pe = this.byDevice.get(dev.name);
    if (pe === undefined) return `${dev.name} is not in any PE of the PHB`;
    if (domain.pe !== pe) {
      return `the domain is made of the DMA windows of ${domain.pe.label}; ${dev.name} is in ${pe.label}, which has its own TCE tables`;
    }
    return undefined;
  }

  /**
   * Attaches a function: its PE's windows now hold the domain's mappings. Every function of a
   * PE shares the windows, so a PE serves one domain at a time: attaching to another domain
   * while a sibling function stays on the current one is EBUSY.
   */
  attach(dev: EndpointDescriptor, domain: DriverDomain, pasid: number | undefined): void {
    if (pasid !== undefined) throw new IoasidError('EOPNOTSUPP', 'pasid', PAPR_UNSUPPORTED['pasid']!);
    const why = this.attachConflict(dev, domain, pasid);
    if (why !== undefined || !(domain instanceof PaprDomain)) throw new IoasidError('EINVAL', 'domain', why ?? 'not a PAPR domain');
    const d = domain;
    const pe = d.pe;
    if (pe.active === d) {
      pe.attached.add(dev.name);
      return;
    }
    const siblings = [...pe.attached].filter((n) => n !== dev.name);
    if (siblings.length > 0) {
      throw new IoasidError('EBUSY', 'dev', `${siblings.join(', ')} of ${pe.label} stay on another domain: the PE's windows serve one domain at a time`);
    }
    const previous = pe.active;
    previous?.unprogram();
    try {
      d.program();
    } catch (e) {
      previous?.program();
      throw e;
    }
    pe.active = d;
    pe.attached.clear();
    pe.attached.add(dev.name);
  }

  /**
   * Detaches a function. When the last function of its PE leaves, the domain's TCEs are
   * cleared and the PE can no longer DMA. (A function whose PE siblings stay attached keeps
   * reaching the shared windows: a PE is PAPR's isolation unit.)
   */
  detach(dev: EndpointDescriptor, pasid: number | undefined): void {
    if (pasid !== undefined) return;
    const pe = this.byDevice.get(dev.name);
    if (pe === undefined || !pe.attached.delete(dev.name)) return;
    if (pe.attached.size === 0 && pe.active !== undefined) {
      const d = pe.active;
      pe.active = undefined;
      d.unprogram();
    }
  }

  /** PAPR raises no page requests, so there is nothing to respond to. */
  pageResponse(dev: EndpointDescriptor, _pasid: number | undefined, _grpid: number, _code: number): void {
    throw new IoasidError('EOPNOTSUPP', 'dev', `${dev.name}: ${PAPR_UNSUPPORTED['iopf']!}`);
  }
}
