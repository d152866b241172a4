/**
 * The SMMUv3 driver, after Linux's `drivers/iommu/arm/arm-smmu-v3/`: probe from the IDRs, reset
 * in `arm_smmu_device_reset` order, a 2-level stream table, per-master CD tables (SSID 0 = the
 * RID's context, S1DSS=SSID0), ASIDs and VMIDs from 1, stage-1 paging domains, stage-2 nest
 * parents, nested vSTEs, SVA CDs over the process's page table, and the event/PRI queue
 * handlers. It reaches the hardware only through memory, the register window and the command
 * queue.
 */

import {
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_PGFAULT_PERM_EXEC,
  IOMMU_PGFAULT_PERM_PRIV,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  IoasidError,
  type DriverDomain,
  type DriverViommu,
  type EndpointDescriptor,
  type HwInfo,
  type HwptData,
  type IommuDriver,
  type IommuPageRequest,
  type PagingDomainOptions,
  type PhysicalMemoryLike,
  type ProcessMm,
} from '@ioasid/uapi';
import { CACHE_WBWA, encodeCdWords, SH_ISH, TG0_4K } from '../spec/cd.js';
import {
  CMD_ATC_INV,
  CMD_CFGI_ALL_RANGE,
  CMD_CFGI_STE_RANGE,
  CMD_PRI_RESP,
  CMD_RESUME,
  CMD_TLBI_EL2_ALL,
  CMD_TLBI_NSNH_ALL,
  ATC_INV_SIZE_ALL,
  PRI_RESP_DENY,
  PRI_RESP_FAIL,
  PRI_RESP_SUCC,
  type SmmuCommand,
} from '../spec/commands.js';
import {
  C_BAD_CD,
  C_BAD_STE,
  C_BAD_SUBSTREAMID,
  decodeEventWords,
  F_ACCESS,
  F_ADDR_SIZE,
  F_PERMISSION,
  F_STREAM_DISABLED,
  F_TRANSLATION,
  isTranslationFault,
  type SmmuEvent,
} from '../spec/events.js';
import { ARM_LPAE_MAIR, s2Sl0 } from '../spec/pgtable.js';
import { decodePriWords } from '../spec/priq.js';
import { EVTQ_ENT_SIZE, PRIQ_ENT_SIZE, qEmpty, qIndex, qInc } from '../spec/queue.js';
import {
  CR0_CMDQEN,
  CR0_EVENTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  CR1,
  CR2_PTM,
  CR2_RECINVSID,
  GERROR_CMDQ_ERR,
  IDR0,
  IDR1,
  IDR3,
  IDR5,
  IRQ_CTRL_EVENTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  Q_BASE_RWA,
  Q_OVF,
  SMMU_AIDR,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_CR0ACK,
  SMMU_CR1,
  SMMU_CR2,
  SMMU_EVENTQ_BASE,
  SMMU_EVENTQ_CONS,
  SMMU_EVENTQ_PROD,
  SMMU_GERROR,
  SMMU_GERRORN,
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_IDR3,
  SMMU_IDR5,
  SMMU_IIDR,
  SMMU_IRQ_CTRL,
  SMMU_IRQ_CTRLACK,
  SMMU_PRIQ_BASE,
  SMMU_PRIQ_CONS,
  SMMU_PRIQ_PROD,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
  STRTAB_BASE_RA,
  addressSizeBits,
  addressSizeEncoding,
  regField,
  regValue,
} from '../spec/registers.js';
import {
  decodeSte,
  encodeSteWords,
  STE_CFG_ABORT,
  STE_CFG_BYPASS,
  STE_CFG_NESTED,
  STE_CFG_S1_TRANS,
  STE_CFG_S2_TRANS,
  STE_S1DSS_BYPASS,
  STE_S1DSS_SSID0,
  STE_S1DSS_TERMINATE,
  type Ste,
} from '../spec/ste.js';
import { AARCH64_MAIR_EL1 } from '../spec/cpu-page-table.js';
import { CommandQueue } from './cmdq.js';
import {
  BlockedDomain,
  IdentityDomain,
  NestedDomain,
  PagingDomain,
  SmmuDomain,
  SvaDomain,
  type Attachment,
  type DomainHost,
} from './domains.js';
import { IdAllocator } from './id-alloc.js';
import type { PciCapabilities, SmmuRegisterWindow } from './interfaces.js';
import { IoPgtable } from './io-pgtable.js';
import { validateVste } from './nested.js';
import { CdTable, StreamTable } from './tables.js';
import { ArmVsmmu, type VsmmuHost } from './vsmmu.js';

/** Options of {@link SmmuV3Driver}. */
export interface SmmuV3DriverOptions {
  /** Physical memory (tables, queues). */
  readonly memory: PhysicalMemoryLike;
  /** The SMMU's registers. */
  readonly regs: SmmuRegisterWindow;
  /** Endpoint ATS/PRI enables. */
  readonly pci: PciCapabilities;
  /** The endpoints behind this SMMU (StreamID = requester ID). */
  readonly endpoints: readonly EndpointDescriptor[];
  /** Where recoverable page requests go. */
  readonly reportPageRequest: (request: IommuPageRequest) => void;
}

/** Linux's MSI window reserved in every translated domain (MSI_IOVA_BASE, MSI_IOVA_LENGTH). */
export const MSI_IOVA_BASE = 0x8000000n;
/** Length of the MSI window. */
export const MSI_IOVA_LENGTH = 0x100000n;

interface Master {
  readonly ep: EndpointDescriptor;
  readonly sid: number;
  readonly ssidBits: number;
  cd: CdTable | undefined;
  rid: SmmuDomain;
  ridAttachment: Attachment | undefined;
  readonly pasids: Map<number, { domain: SmmuDomain; attachment: Attachment }>;
  ats: boolean;
  pri: boolean;
  /**
   * `master->vmaster`: set while the RID is attached to a nested domain of a vSMMU on which
   * the master has a vDEVICE; its events are reported with the vSID.
   */
  vmaster: { readonly vsmmu: ArmVsmmu; readonly vsid: number } | undefined;
}

/**
 * The event IDs `arm_smmu_handle_event` handles (the rest are logged): C_BAD_STE,
 * F_STREAM_DISABLED, C_BAD_SUBSTREAMID, C_BAD_CD and the four translation faults.
 */
const HANDLED_EVENTS: ReadonlySet<number> = new Set([
  C_BAD_STE, F_STREAM_DISABLED, C_BAD_SUBSTREAMID, C_BAD_CD, F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION,
]);

const PAGE = 4096;

/** The SMMUv3 driver. */
export class SmmuV3Driver implements IommuDriver, DomainHost, VsmmuHost {
  /** Backend name. */
  readonly backend = 'arm-smmuv3';
  /** Events taken off the event queue that were not page requests (most recent last, bounded). */
  readonly events: SmmuEvent[] = [];
  /** The command queue (its `syncs` count is visible to tests). */
  readonly cmdq: CommandQueue;
  /** IDR3.RIL. */
  readonly ril: boolean;

  private readonly memory: PhysicalMemoryLike;
  private readonly regs: SmmuRegisterWindow;
  private readonly pci: PciCapabilities;
  private readonly report: (r: IommuPageRequest) => void;
  private readonly idr: readonly number[];
  private readonly iidr: number;
  private readonly aidr: number;
  private readonly s1p: boolean;
  private readonly s2p: boolean;
  private readonly httu: number;
  private readonly priSupported: boolean;
  private readonly atsSupported: boolean;
  private readonly cd2l: boolean;
  private readonly stallModel: number;
  private readonly ssidBits: number;
  private readonly oas: number;
  private readonly ias: number;
  private readonly granules: readonly number[];
  private readonly strtab: StreamTable;
  private readonly evtqBase: number;
  private readonly evtqLog2: number;
  private readonly priqBase: number;
  private readonly priqLog2: number;
  private readonly asids: IdAllocator;
  private readonly vmids: IdAllocator;
  private readonly masters = new Map<number, Master>();
  private readonly identity: IdentityDomain;
  private readonly blocked: BlockedDomain;
  private readonly groups = new Map<string, 'pri' | 'stall'>();
  private readonly iopfDomains = new WeakSet<SmmuDomain>();

  /** @param options - memory, registers, endpoints, page-request sink */
  constructor(options: SmmuV3DriverOptions) {
    this.memory = options.memory;
    this.regs = options.regs;
    this.pci = options.pci;
    this.report = options.reportPageRequest;
    const r = this.regs;
    // ---- arm_smmu_device_hw_probe
    const idr0 = r.read32(SMMU_IDR0);
    const idr1 = r.read32(SMMU_IDR1);
    const idr3 = r.read32(SMMU_IDR3);
    const idr5 = r.read32(SMMU_IDR5);
    this.idr = [idr0, idr1, 0, idr3, 0, idr5];
    this.iidr = r.read32(SMMU_IIDR);
    this.aidr = r.read32(SMMU_AIDR);
    if ((regField(idr0, IDR0.TTF) & 2) === 0) throw new IoasidError('ENODEV', 'idr', 'AArch64 table format unsupported');
    if (regField(idr1, IDR1.CMDQS) <= 6) throw new IoasidError('ENODEV', 'idr', 'command queue size <= 64 entries not supported');
    if (regField(idr1, IDR1.REL) === 1 || regField(idr1, IDR1.QUEUES_PRESET) === 1 || regField(idr1, IDR1.TABLES_PRESET) === 1) {
      throw new IoasidError('ENODEV', 'idr', 'embedded implementation not supported');
    }
    this.s1p = regField(idr0, IDR0.S1P) === 1;
    this.s2p = regField(idr0, IDR0.S2P) === 1;
    this.httu = regField(idr0, IDR0.HTTU);
    this.priSupported = regField(idr0, IDR0.PRI) === 1;
    this.atsSupported = regField(idr0, IDR0.ATS) === 1;
    this.cd2l = regField(idr0, IDR0.CD2L) === 1;
    this.stallModel = regField(idr0, IDR0.STALL_MODEL);
    this.ril = regField(idr3, IDR3.RIL) === 1;
    this.ssidBits = regField(idr1, IDR1.SSIDSIZE);
    this.oas = addressSizeBits(regField(idr5, IDR5.OAS));
    this.ias = this.oas; // TTF AArch64 only: ias = max(ias, oas) = oas
    const g: number[] = [];
    if (regField(idr5, IDR5.GRAN4K)) g.push(12);
    if (regField(idr5, IDR5.GRAN16K)) g.push(14);
    if (regField(idr5, IDR5.GRAN64K)) g.push(16);
    this.granules = g;
    if (!g.includes(12)) throw new IoasidError('ENODEV', 'idr', 'this driver needs the 4 KB granule (PAGE_SIZE)');
    this.asids = new IdAllocator(1, regField(idr0, IDR0.ASID16) ? 0xffff : 0xff, 'ASID');
    this.vmids = new IdAllocator(1, regField(idr0, IDR0.VMID16) ? 0xffff : 0xff, 'VMID');
    // StreamIDs are PCIe requester IDs here: 16 bits are enough (Linux caps the L1 table too).
    const sidBits = Math.min(regField(idr1, IDR1.SIDSIZE), 16);
    this.strtab = new StreamTable(this.memory, sidBits, regField(idr0, IDR0.ST_LEVEL) === 1);
    this.identity = new IdentityDomain(this);
    this.blocked = new BlockedDomain(this);
    // Everything below allocates or enables: a failure (ENOMEM, ERANGE, a timeout) fails the
    // construction as a whole, with the SMMU disabled again and every frame this driver took
    // freed, never a driver with a half-made stream table (Linux: a failed probe, devm-freed).
    const queueFrames: number[] = [];
    const queueFrame = () => {
      const pfn = this.memory.allocFrame();
      queueFrames.push(pfn);
      return pfn * PAGE;
    };
    try {
      const cmdqLog2 = Math.min(regField(idr1, IDR1.CMDQS), 8);
      // 2^8 commands × 16 bytes = one 4 KB frame (queues are aligned to their size).
      this.cmdq = new CommandQueue(this.memory, r, queueFrame(), cmdqLog2);
      this.evtqLog2 = Math.min(regField(idr1, IDR1.EVENTQS), 7);
      this.evtqBase = queueFrame();
      this.priqLog2 = Math.min(regField(idr1, IDR1.PRIQS), 8);
      this.priqBase = this.priSupported ? queueFrame() : 0;
      this.reset();
      // ---- arm_smmu_probe_device, for each endpoint behind this SMMU (the probed devices)
      for (const ep of options.endpoints) {
        if (ep.kind === 'mdev') continue;
        this.probeMaster(ep);
      }
    } catch (e) {
      // arm_smmu_device_disable, then the frames go (STRTAB_BASE no longer matters: SMMUEN is 0)
      r.write32(SMMU_CR0, 0);
      this.masters.clear();
      this.strtab.free();
      for (const pfn of queueFrames) this.memory.freeFrames(pfn, 1);
      throw e;
    }
  }

  /**
   * `arm_smmu_probe_device` → `arm_smmu_insert_master` → `arm_smmu_init_sid_strtab`
   * (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c): the master's StreamID must be inside the
   * stream table (ERANGE) and, with a 2-level table, its level-2 table exists from now on
   * (`arm_smmu_init_l2_strtab`: 16 KiB, STEs at abort, L1STD written and synced), so a first
   * attach allocates no stream-table memory and the frames in use do not move.
   */
  private probeMaster(ep: EndpointDescriptor): void {
    this.strtab.initSid(ep.rid, (c) => {
      this.mustIssue(c);
    });
    this.masters.set(ep.rid, {
      ep, sid: ep.rid, ssidBits: ep.pasid ? Math.min(this.ssidBits, 20) : 0, cd: undefined, rid: this.blocked,
      ridAttachment: undefined, pasids: new Map(), ats: false, pri: false, vmaster: undefined,
    });
  }

  private writeCr0(v: number): void {
    this.regs.write32(SMMU_CR0, v);
    if (this.regs.read32(SMMU_CR0ACK) !== v) throw new IoasidError('ETIMEDOUT', undefined, 'CR0ACK did not follow CR0');
  }

  /** arm_smmu_device_reset. */
  private reset(): void {
    const r = this.regs;
    this.writeCr0(0);
    r.write32(SMMU_CR1, regValue([[CR1.QUEUE_IC, CACHE_WBWA], [CR1.QUEUE_OC, CACHE_WBWA], [CR1.QUEUE_SH, SH_ISH], [CR1.TABLE_IC, CACHE_WBWA], [CR1.TABLE_OC, CACHE_WBWA], [CR1.TABLE_SH, SH_ISH]]));
    r.write32(SMMU_CR2, CR2_PTM | CR2_RECINVSID);
    r.write64(SMMU_STRTAB_BASE, BigInt(this.strtab.base) | STRTAB_BASE_RA);
    r.write32(SMMU_STRTAB_BASE_CFG, this.strtab.cfg);
    r.write64(SMMU_CMDQ_BASE, Q_BASE_RWA | BigInt(this.cmdq.base) | BigInt(this.cmdq.log2));
    r.write32(SMMU_CMDQ_PROD, 0);
    r.write32(SMMU_CMDQ_CONS, 0);
    let cr0 = CR0_CMDQEN;
    this.writeCr0(cr0);
    this.issue([{ op: CMD_CFGI_STE_RANGE, range: CMD_CFGI_ALL_RANGE }]);
    if (regField(this.idr[0]!, IDR0.HYP) === 1) this.issue([{ op: CMD_TLBI_EL2_ALL }]);
    this.issue([{ op: CMD_TLBI_NSNH_ALL }]);
    r.write64(SMMU_EVENTQ_BASE, Q_BASE_RWA | BigInt(this.evtqBase) | BigInt(this.evtqLog2));
    r.write32(SMMU_EVENTQ_PROD, 0);
    r.write32(SMMU_EVENTQ_CONS, 0);
    cr0 |= CR0_EVENTQEN;
    this.writeCr0(cr0);
    if (this.priSupported) {
      r.write64(SMMU_PRIQ_BASE, Q_BASE_RWA | BigInt(this.priqBase) | BigInt(this.priqLog2));
      r.write32(SMMU_PRIQ_PROD, 0);
      r.write32(SMMU_PRIQ_CONS, 0);
      cr0 |= CR0_PRIQEN;
      this.writeCr0(cr0);
    }
    const irq = IRQ_CTRL_EVENTQ_IRQEN | IRQ_CTRL_GERROR_IRQEN | (this.priSupported ? IRQ_CTRL_PRIQ_IRQEN : 0);
    r.write32(SMMU_IRQ_CTRL, irq);
    if (r.read32(SMMU_IRQ_CTRLACK) !== irq) throw new IoasidError('ETIMEDOUT', undefined, 'IRQ_CTRLACK did not follow');
    cr0 |= CR0_SMMUEN;
    this.writeCr0(cr0);
  }

  // ---------------------------------------------------------------- DomainHost

  /** Issues commands + CMD_SYNC; returns the index of a failed command or -1. */
  issue(cmds: SmmuCommand[]): number {
    return this.cmdq.issue(cmds).failed;
  }

  /** Frees an ASID. */
  freeAsid(asid: number): void {
    this.asids.free(asid);
  }

  /** Frees a VMID. */
  freeVmid(vmid: number): void {
    this.vmids.free(vmid);
  }

  private mustIssue(cmds: SmmuCommand[]): void {
    const f = this.issue(cmds);
    if (f >= 0) throw new IoasidError('EIO', undefined, `the SMMU rejected command ${f} of a driver batch`);
  }

  // ---------------------------------------------------------------- info

  private master(dev: EndpointDescriptor): Master {
    const m = this.masters.get(dev.rid);
    if (m === undefined || m.ep.name !== dev.name) throw new IoasidError('ENODEV', 'dev', `${dev.name} is not behind this SMMU`);
    return m;
  }

  private get nesting(): boolean {
    return this.s1p && this.s2p;
  }

  /** The device's hardware information (IOMMU_GET_HW_INFO with the SMMUv3 IDRs). */
  hwInfo(dev: EndpointDescriptor): HwInfo {
    const m = this.master(dev);
    const pasidBits = this.s1p ? m.ssidBits : 0;
    const iopf = this.priSupported && dev.pri;
    const sva = pasidBits > 0 && iopf;
    const dirty = this.httu === 2 && this.s1p;
    const sizes = new Set<bigint>();
    for (const g of this.granules) {
      if (g === 12) [12n, 21n, 30n].forEach((s) => sizes.add(1n << s));
      if (g === 14) [14n, 25n].forEach((s) => sizes.add(1n << s));
      if (g === 16) [16n, 29n].forEach((s) => sizes.add(1n << s));
    }
    const unsupported: Record<string, string> = {};
    if (pasidBits === 0) unsupported['pasid'] = this.ssidBits === 0 ? 'IDR1.SSIDSIZE is 0' : dev.pasid ? 'no stage 1' : 'the device has no PASID capability';
    if (!this.nesting) unsupported['nesting'] = 'IDR0 lacks S1P or S2P';
    if (!iopf) unsupported['iopf'] = this.priSupported ? 'the device has no PRI capability' : 'IDR0.PRI is 0';
    if (!sva) unsupported['sva'] = pasidBits === 0 ? 'no SubstreamIDs' : 'no PRI for I/O page faults';
    if (!dirty) unsupported['dirtyTracking'] = 'IDR0.HTTU is not access+dirty';
    if (!this.nesting) unsupported['viommu'] = 'IDR0 lacks S1P or S2P: no nesting (ARM_SMMU_FEAT_NESTING), so no vSMMU';
    // a translation fault is an event record (or a stall) per transaction; nothing isolates the stream
    unsupported['eeh'] = 'SMMUv3 has no EEH: a fault is reported per transaction (event queue) and never freezes the stream';
    const ias = this.s1p ? Math.min(48, this.ias) : this.ias;
    return {
      backend: this.backend,
      pasidBits,
      nestingFormats: this.nesting ? ['arm_smmuv3'] : [],
      passthrough: true,
      blocked: true,
      sva,
      iopf,
      globalPasid: pasidBits > 0,
      dirtyTracking: dirty,
      viommuTypes: this.nesting ? [IOMMU_VIOMMU_TYPE_ARM_SMMUV3] : [],
      pageSizes: [...sizes].sort((a, b) => (a < b ? -1 : 1)),
      iovaRanges: [{ start: 0n, last: (1n << BigInt(ias)) - 1n }],
      reservedRegions: [{ start: MSI_IOVA_BASE, last: MSI_IOVA_BASE + MSI_IOVA_LENGTH - 1n, kind: 'msi' }],
      capabilities: dirty ? IOMMU_HW_CAP_DIRTY_TRACKING : 0,
      dataType: IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
      unsupported,
      vendor: { flags: 0, idr: [...this.idr], iidr: this.iidr, aidr: this.aidr },
    };
  }

  // ---------------------------------------------------------------- domains

  /** A stage-1 paging domain (stage 2 for a nest parent or an S2-only SMMU). */
  allocPagingDomain(dev: EndpointDescriptor, options: PagingDomainOptions): DriverDomain {
    this.master(dev);
    const stage2 = options.nestParent || !this.s1p;
    if (options.nestParent && !this.nesting) throw new IoasidError('EOPNOTSUPP', 'flags', 'nesting needs IDR0.S1P and IDR0.S2P');
    if (options.dirtyTracking && (stage2 || this.httu !== 2)) {
      throw new IoasidError('EOPNOTSUPP', 'flags', stage2 ? 'dirty tracking is stage-1 only' : 'IDR0.HTTU has no dirty state');
    }
    if (stage2 && options.pasid) throw new IoasidError('EOPNOTSUPP', 'flags', 'a stage-2 domain cannot serve PASIDs');
    const ids = stage2 ? this.vmids : this.asids;
    const id = ids.alloc();
    let pgtable: IoPgtable;
    try {
      pgtable = new IoPgtable(this.memory, {
        stage: stage2 ? 2 : 1,
        ias: stage2 ? this.ias : Math.min(48, this.ias),
        oas: this.oas,
        dirty: options.dirtyTracking,
      });
    } catch (e) {
      ids.free(id);
      throw e;
    }
    const d = new PagingDomain(this, pgtable, stage2 ? 2 : 1, id, options.nestParent, options.dirtyTracking);
    if (options.iopf) this.iopfDomains.add(d);
    return d;
  }

  /** A nested domain from a guest vSTE (`{ type: 'arm_smmuv3', ste: [w0, w1] }`). */
  allocNestedDomain(dev: EndpointDescriptor, parent: DriverDomain, data: HwptData, options: { readonly iopf: boolean }): DriverDomain {
    this.master(dev);
    if (data.type !== 'arm_smmuv3') throw new IoasidError('EOPNOTSUPP', 'data', "SMMUv3 nests 'arm_smmuv3' data only");
    if (!(parent instanceof PagingDomain) || parent.stage !== 2 || !parent.nestParent) {
      throw new IoasidError('EINVAL', 'parent', 'the parent is not a stage-2 nest parent of this SMMU');
    }
    return this.nestedDomain(parent, data.ste, options, undefined);
  }

  /** A nested domain over `parent` from a vSTE validated by `arm_smmu_validate_vste`. */
  private nestedDomain(parent: PagingDomain, ste: readonly [bigint, bigint], options: { readonly iopf: boolean }, vsmmu: ArmVsmmu | undefined): NestedDomain {
    const d = new NestedDomain(this, parent, validateVste(ste), vsmmu);
    if (options.iopf) this.iopfDomains.add(d);
    return d;
  }

  // ---------------------------------------------------------------- vSMMU

  /**
   * IOMMU_VIOMMU_ALLOC (`arm_smmu_get_viommu_size` + `arm_vsmmu_init`): a vSMMU over a stage-2
   * nest parent of this SMMU, using the parent's VMID. Another type, or an SMMU without
   * nesting, is EOPNOTSUPP; a parent that is not a stage-2 nest parent of this instance EINVAL.
   * (Linux also wants a CANWBS device or IDR3.FWB; the platform's root complex is taken as
   * CANWBS, coherent with IDR0.COHACC, as an IORT would describe it.)
   */
  allocViommu(dev: EndpointDescriptor, parent: DriverDomain, type: number): DriverViommu {
    this.master(dev);
    if (type !== IOMMU_VIOMMU_TYPE_ARM_SMMUV3) throw new IoasidError('EOPNOTSUPP', 'type', `vIOMMU type ${type} is not IOMMU_VIOMMU_TYPE_ARM_SMMUV3`);
    if (!this.nesting) throw new IoasidError('EOPNOTSUPP', 'type', 'IDR0 lacks S1P or S2P: no vSMMU');
    if (!(parent instanceof PagingDomain) || parent.stage !== 2 || !parent.nestParent || !parent.ownedBy(this)) {
      throw new IoasidError('EINVAL', 'hwpt', 'the parent is not a stage-2 nest parent of this SMMU');
    }
    return new ArmVsmmu(this, parent);
  }

  /** The physical StreamID of a master of this SMMU (VsmmuHost). */
  streamIdOf(dev: EndpointDescriptor): number | undefined {
    const m = this.masters.get(dev.rid);
    return m?.ep.name === dev.name ? m.sid : undefined;
  }

  /** `arm_vsmmu_alloc_domain_nested` (VsmmuHost): the vSTE over the vSMMU's parent. */
  allocVsmmuNested(vsmmu: ArmVsmmu, data: HwptData, options: { readonly iopf: boolean }): DriverDomain {
    if (data.type !== 'arm_smmuv3') throw new IoasidError('EOPNOTSUPP', 'data', "SMMUv3 nests 'arm_smmuv3' data only");
    return this.nestedDomain(vsmmu.parent, data.ste, options, vsmmu);
  }

  /** Forgets a master's vmaster of `vsmmu` (VsmmuHost). */
  clearVmaster(sid: number, vsmmu: ArmVsmmu): void {
    const m = this.masters.get(sid);
    if (m?.vmaster?.vsmmu === vsmmu) m.vmaster = undefined;
  }

  /** An SVA domain over the process's AArch64 page table, with its own ASID. */
  allocSvaDomain(dev: EndpointDescriptor, mm: ProcessMm): DriverDomain {
    const info = this.hwInfo(dev);
    if (!info.sva) throw new IoasidError('EOPNOTSUPP', 'dev', `no SVA on ${dev.name}: ${info.unsupported['sva'] ?? ''}`);
    if (mm.format.name !== 'aarch64') throw new IoasidError('EOPNOTSUPP', 'process', 'the SMMU walks AArch64 page tables only');
    const d = new SvaDomain(this, mm, this.asids.alloc());
    this.iopfDomains.add(d);
    return d;
  }

  /** The identity domain (STE bypass). */
  identityDomain(dev: EndpointDescriptor): DriverDomain {
    this.master(dev);
    return this.identity;
  }

  /** The blocked domain (STE abort). */
  blockedDomain(dev: EndpointDescriptor): DriverDomain {
    this.master(dev);
    return this.blocked;
  }

  /** Why `domain` cannot be attached there (undefined: it can). */
  attachConflict(dev: EndpointDescriptor, domain: DriverDomain, pasid: number | undefined): string | undefined {
    const m = this.masters.get(dev.rid);
    if (m === undefined) return `${dev.name} is not behind this SMMU`;
    if (!(domain instanceof SmmuDomain)) return 'not an SMMUv3 domain';
    if (pasid === undefined) {
      if (domain instanceof SvaDomain) return 'an SVA domain attaches to a PASID only';
      return undefined;
    }
    if (m.ssidBits === 0) return `${dev.name} has no SubstreamIDs`;
    if (pasid <= 0 || pasid >= 2 ** m.ssidBits) return `PASID ${pasid} is outside the device's ${m.ssidBits}-bit SSID range (SSID 0 is the RID's)`;
    if (domain instanceof PagingDomain && domain.stage === 2) return 'a stage-2 domain cannot be attached to a PASID';
    if (domain instanceof NestedDomain) return 'a nested domain owns the whole CD table: it attaches to the RID';
    if (domain instanceof IdentityDomain || domain instanceof BlockedDomain) return undefined;
    return undefined;
  }

  // ---------------------------------------------------------------- attach

  private s1Cd(d: PagingDomain): Uint32Array {
    // arm_smmu_make_s1_cd
    return encodeCdWords({
      T0SZ: 64 - d.pgtable.options.ias, TG0: TG0_4K, IR0: CACHE_WBWA, OR0: CACHE_WBWA, SH0: SH_ISH, EPD1: 1, V: 1,
      IPS: addressSizeEncoding(this.oas), AA64: 1, R: 1, A: 1, ASET: 1, ASID: d.id, TTB0: d.pgtable.root,
      MAIR0: ARM_LPAE_MAIR, HA: d.dirty ? 1 : 0, HD: d.dirty ? 1 : 0,
    });
  }

  private svaCd(d: SvaDomain): Uint32Array {
    // arm_smmu_make_sva_cd: the CPU's own table, TCR-equivalent fields, MAIR_EL1, private ASID.
    return encodeCdWords({
      T0SZ: 16, TG0: TG0_4K, IR0: CACHE_WBWA, OR0: CACHE_WBWA, SH0: SH_ISH, EPD1: 1, V: 1,
      IPS: addressSizeEncoding(this.oas), AA64: 1, R: 1, A: 1, ASET: 1, ASID: d.asid, TTB0: Number(d.mm.pageTableRoot),
      MAIR0: Number(AARCH64_MAIR_EL1 & 0xffffffffn), MAIR1: Number(AARCH64_MAIR_EL1 >> 32n),
      HA: this.httu >= 1 ? 1 : 0, HD: this.httu === 2 ? 1 : 0,
    });
  }

  private cdFor(d: SmmuDomain): Uint32Array {
    if (d instanceof PagingDomain) return this.s1Cd(d);
    if (d instanceof SvaDomain) return this.svaCd(d);
    throw new IoasidError('EINVAL', 'domain', `a ${d.kind} domain has no CD`);
  }

  private s2Fields(d: PagingDomain): Partial<Ste> {
    const ias = d.pgtable.options.ias;
    return {
      S2VMID: d.id, S2T0SZ: 64 - ias, S2SL0: s2Sl0(d.pgtable.startLevel, 12), S2IR0: CACHE_WBWA, S2OR0: CACHE_WBWA,
      S2SH0: SH_ISH, S2TG: 0, S2PS: addressSizeEncoding(this.oas), S2AA64: 1, S2PTW: 1, S2R: 1, S2TTB: d.pgtable.root,
    };
  }

  private steFor(m: Master): Uint32Array {
    const d = m.rid;
    const eats = m.ats ? 1 : 0;
    const cdSte = (s1dss: number): Partial<Ste> => ({
      V: 1, Config: STE_CFG_S1_TRANS, S1Fmt: m.cd!.s1Fmt, S1ContextPtr: m.cd!.ptr, S1CDMax: m.cd!.s1CdMax, S1DSS: s1dss,
      S1CIR: CACHE_WBWA, S1COR: CACHE_WBWA, S1CSH: SH_ISH, S1STALLD: this.stallModel === 0 ? 1 : 0, EATS: eats,
    });
    if (d instanceof PagingDomain && d.stage === 1) return encodeSteWords(cdSte(STE_S1DSS_SSID0));
    if (d instanceof PagingDomain) return encodeSteWords({ V: 1, Config: STE_CFG_S2_TRANS, ...this.s2Fields(d), EATS: eats });
    if (d instanceof NestedDomain) {
      const v = d.vste;
      const cfg = Number((v.w0 >> 1n) & 7n);
      if ((v.w0 & 1n) === 0n || cfg === STE_CFG_ABORT) return encodeSteWords({ V: 1, Config: STE_CFG_ABORT });
      if (cfg === STE_CFG_BYPASS) return encodeSteWords({ V: 1, Config: STE_CFG_S2_TRANS, ...this.s2Fields(d.parent) });
      const g = decodeSte([v.w0, v.w1]);
      // arm_smmu_make_nested_domain_ste: the S2 parent's STE, Config NESTED, the guest's
      // stage-1 fields, and MEV so the SMMU may merge guest-induced fault storms.
      return encodeSteWords({
        V: 1, Config: STE_CFG_NESTED, ...this.s2Fields(d.parent),
        S1Fmt: g.S1Fmt, S1ContextPtr: g.S1ContextPtr, S1CDMax: g.S1CDMax, S1DSS: g.S1DSS, S1CIR: g.S1CIR,
        S1COR: g.S1COR, S1CSH: g.S1CSH, S1STALLD: g.S1STALLD, MEV: 1, EATS: eats,
      });
    }
    const withPasids = m.pasids.size > 0;
    if (d instanceof IdentityDomain) return encodeSteWords(withPasids ? cdSte(STE_S1DSS_BYPASS) : { V: 1, Config: STE_CFG_BYPASS });
    return encodeSteWords(withPasids ? cdSte(STE_S1DSS_TERMINATE) : { V: 1, Config: STE_CFG_ABORT });
  }

  /**
   * Writes CD `ssid` of the master's CD table, creating the table first when the master has
   * none. When that fails (ENOMEM for the table's L1 or a 64 KiB L2 leaf), a table this call
   * created is freed again, so that a failed attach leaves the frames in use unchanged.
   */
  private writeCd(m: Master, ssid: number, cd: Uint32Array, issue: (c: SmmuCommand[]) => void): void {
    const fresh = m.cd === undefined;
    try {
      m.cd ??= new CdTable(this.memory, m.sid, m.ssidBits, this.cd2l);
      m.cd.write(ssid, cd, issue);
    } catch (e) {
      if (fresh && m.cd !== undefined) {
        // nothing points at a table this call made: the STE still has the old configuration
        m.cd.free();
        m.cd = undefined;
      }
      throw e;
    }
  }

  private iopfNeeded(m: Master): boolean {
    if (this.iopfDomains.has(m.rid)) return true;
    for (const p of m.pasids.values()) if (this.iopfDomains.has(p.domain)) return true;
    return false;
  }

  /** Recomputes ATS/PRI and writes the STE (Linux enables ATS after EATS is set, disables before). */
  private commit(m: Master): void {
    const pri = this.priSupported && m.ep.pri && this.iopfNeeded(m);
    const nestedAts = m.rid instanceof NestedDomain && m.rid.vste.ats;
    const ats = this.atsSupported && (pri || nestedAts);
    if (!ats && m.ats) {
      this.pci.setPri(m.sid, false);
      this.pci.setAts(m.sid, false);
      m.pri = false;
    }
    m.ats = ats;
    this.strtab.write(m.sid, this.steFor(m), (c) => {
      this.mustIssue(c);
    });
    if (ats) {
      this.pci.setAts(m.sid, true);
      this.pci.setPri(m.sid, pri);
      m.pri = pri;
    }
    // Attachments carry the ATS state for ATC invalidations.
    if (m.ridAttachment !== undefined && m.ridAttachment.ats !== ats) {
      m.rid.attachments.delete(m.ridAttachment);
      m.ridAttachment = { sid: m.sid, ssid: undefined, ats };
      m.rid.attachments.add(m.ridAttachment);
    }
    for (const [ssid, p] of m.pasids) {
      if (p.attachment.ats === ats) continue;
      p.domain.attachments.delete(p.attachment);
      p.attachment = { sid: m.sid, ssid, ats };
      p.domain.attachments.add(p.attachment);
    }
  }

  /** Attaches the RID or a PASID, replacing what was there. */
  attach(dev: EndpointDescriptor, domain: DriverDomain, pasid: number | undefined): void {
    const m = this.master(dev);
    const why = this.attachConflict(dev, domain, pasid);
    if (why !== undefined || !(domain instanceof SmmuDomain)) throw new IoasidError('EINVAL', 'domain', why ?? 'not an SMMUv3 domain');
    const d = domain;
    const issue = (c: SmmuCommand[]) => {
      this.mustIssue(c);
    };
    if (pasid === undefined) {
      if ((d instanceof NestedDomain || (d instanceof PagingDomain && d.stage === 2)) && m.pasids.size > 0) {
        throw new IoasidError('EBUSY', 'dev', `${dev.name} has PASIDs attached: its CD table cannot be replaced`);
      }
      const vmaster = this.prepareVmaster(m, d);
      if (d instanceof PagingDomain && d.stage === 1) {
        this.writeCd(m, 0, this.s1Cd(d), issue);
      }
      const old = m.rid;
      if (m.ridAttachment !== undefined) old.attachments.delete(m.ridAttachment);
      m.rid = d;
      m.ridAttachment = { sid: m.sid, ssid: undefined, ats: m.ats };
      d.attachments.add(m.ridAttachment);
      this.commit(m);
      m.vmaster = vmaster; // arm_smmu_attach_commit_vmaster
      if (old instanceof PagingDomain && old.stage === 1 && !(d instanceof PagingDomain && d.stage === 1)) {
        m.cd?.clear(0, issue);
      }
      if (old instanceof NestedDomain && m.ats) this.mustIssue([{ op: CMD_ATC_INV, sid: m.sid, size: ATC_INV_SIZE_ALL, addr: 0 }]);
      return;
    }
    if (d instanceof IdentityDomain || d instanceof BlockedDomain) {
      this.detach(dev, pasid);
      return;
    }
    if (m.rid instanceof NestedDomain || (m.rid instanceof PagingDomain && m.rid.stage === 2)) {
      throw new IoasidError('EBUSY', 'dev', `${dev.name}'s RID uses a stage-2 or nested domain: no CD table for PASIDs`);
    }
    this.writeCd(m, pasid, this.cdFor(d), issue);
    const prev = m.pasids.get(pasid);
    if (prev !== undefined) prev.domain.attachments.delete(prev.attachment);
    const attachment = { sid: m.sid, ssid: pasid, ats: m.ats };
    d.attachments.add(attachment);
    m.pasids.set(pasid, { domain: d, attachment });
    this.commit(m);
    if (prev !== undefined && m.ats) this.mustIssue([{ op: CMD_ATC_INV, sid: m.sid, ssv: true, ssid: pasid, size: ATC_INV_SIZE_ALL, addr: 0 }]);
  }

  /**
   * `arm_smmu_attach_prepare_vmaster`: attaching the RID to a nested domain of a vSMMU takes the
   * master's vSID on that vSMMU (a vSMMU of another SMMU instance EINVAL; no vDEVICE ENOENT,
   * unless the vSTE is abort or bypass); any other domain leaves the master without one.
   */
  private prepareVmaster(m: Master, d: SmmuDomain): Master['vmaster'] {
    if (!(d instanceof NestedDomain) || d.vsmmu === undefined) return undefined;
    if (!d.vsmmu.belongsTo(this)) throw new IoasidError('EINVAL', 'domain', 'the nested domain belongs to a vSMMU of another SMMU instance');
    const vsid = d.vsmmu.vsidOf(m.sid);
    if (vsid !== undefined) return { vsmmu: d.vsmmu, vsid };
    const cfg = Number((d.vste.w0 >> 1n) & 7n);
    if ((d.vste.w0 & 1n) === 0n || cfg === STE_CFG_ABORT || cfg === STE_CFG_BYPASS) return undefined;
    throw new IoasidError('ENOENT', 'dev', `${m.ep.name} has no vDEVICE on the vSMMU: a translating nested domain needs its vSID`);
  }

  /** Detaches the RID (→ blocked) or a PASID (its CD cleared). */
  detach(dev: EndpointDescriptor, pasid: number | undefined): void {
    const m = this.master(dev);
    if (pasid === undefined) {
      this.attach(dev, this.blocked, undefined);
      return;
    }
    const p = m.pasids.get(pasid);
    if (p === undefined) return;
    m.cd?.clear(pasid, (c) => {
      this.mustIssue(c);
    });
    p.domain.attachments.delete(p.attachment);
    m.pasids.delete(pasid);
    const cmds: SmmuCommand[] = [];
    if (m.ats) cmds.push({ op: CMD_ATC_INV, sid: m.sid, ssv: true, ssid: pasid, size: ATC_INV_SIZE_ALL, addr: 0 });
    if (cmds.length > 0) this.mustIssue(cmds);
    this.commit(m); // the last PASID gone: identity/blocked STEs go back to plain bypass/abort
  }

  // ---------------------------------------------------------------- faults

  /** The interrupt handler (an interrupt line of the SMMU). */
  handleIrq(line: 'eventq' | 'priq' | 'gerror'): void {
    if (line === 'eventq') this.drainEvents();
    else if (line === 'priq') this.drainPri();
    else {
      // Global errors other than CMDQ_ERR (which the command path handles) are acknowledged.
      const active = (this.regs.read32(SMMU_GERROR) ^ this.regs.read32(SMMU_GERRORN)) & ~GERROR_CMDQ_ERR;
      if (active !== 0) this.regs.write32(SMMU_GERRORN, (this.regs.read32(SMMU_GERRORN) ^ active) >>> 0);
    }
  }

  private drainEvents(): void {
    const log2 = this.evtqLog2;
    const w = new Uint32Array(8);
    const prodReg = this.regs.read32(SMMU_EVENTQ_PROD);
    let cons = this.regs.read32(SMMU_EVENTQ_CONS) & ((2 << log2) - 1);
    for (let n = 0; n < 2 << log2 && !qEmpty(prodReg, cons, log2); n++) {
      const addr = this.evtqBase + qIndex(cons, log2) * EVTQ_ENT_SIZE;
      for (let i = 0; i < 8; i++) w[i] = this.memory.read32At(addr + i * 4);
      const ev = decodeEventWords(w);
      cons = qInc(cons, log2);
      const m = this.masters.get(ev.StreamID);
      if (ev.Stall === 1 && isTranslationFault(ev.EventID) && ev.S2 === 0 && m !== undefined) {
        // arm_smmu_handle_evt: a stalled stage-1 fault becomes an I/O page fault (grpid = STAG).
        const pasid = ev.SSV === 1 ? ev.SubstreamID : undefined;
        this.groups.set(`${m.sid}/${pasid ?? -1}/${ev.STAG}`, 'stall');
        let perm = ev.RnW === 1 ? IOMMU_PGFAULT_PERM_READ : IOMMU_PGFAULT_PERM_WRITE;
        if (ev.InD === 1) perm |= IOMMU_PGFAULT_PERM_EXEC;
        if (ev.PnU === 1) perm |= IOMMU_PGFAULT_PERM_PRIV;
        this.report({ endpoint: m.ep, pasid, addr: ev.InputAddr & ~0xfffn, perm, grpid: ev.STAG, last: true });
        continue;
      }
      // arm_smmu_handle_event: a non-stall event of a handled ID, of a master with a vmaster,
      // that is not a stage-2 fault goes to the vSMMU (arm_vmaster_report_event); with no
      // vEVENTQ the report fails (-EOPNOTSUPP) and the event is logged like any unhandled one.
      const vm = m?.vmaster;
      if (vm !== undefined && ev.Stall === 0 && ev.S2 === 0 && HANDLED_EVENTS.has(ev.EventID) && vm.vsmmu.report(w, vm.vsid)) continue;
      this.events.push(ev);
      if (this.events.length > 1024) this.events.shift();
    }
    // Consume, and acknowledge an overflow by copying OVFLG into OVACKFLG.
    this.regs.write32(SMMU_EVENTQ_CONS, ((prodReg & Q_OVF) | cons) >>> 0);
  }

  private drainPri(): void {
    const log2 = this.priqLog2;
    const w = new Uint32Array(4);
    const prodReg = this.regs.read32(SMMU_PRIQ_PROD);
    let cons = this.regs.read32(SMMU_PRIQ_CONS) & ((2 << log2) - 1);
    const deny: SmmuCommand[] = [];
    for (let n = 0; n < 2 << log2 && !qEmpty(prodReg, cons, log2); n++) {
      const addr = this.priqBase + qIndex(cons, log2) * PRIQ_ENT_SIZE;
      for (let i = 0; i < 4; i++) w[i] = this.memory.read32At(addr + i * 4);
      const r = decodePriWords(w);
      cons = qInc(cons, log2);
      const pasid = r.SSV === 1 ? r.SubstreamID : undefined;
      if (r.SSV === 1 && r.Last === 1 && r.R === 0 && r.W === 0) continue; // Stop PASID marker
      const m = this.masters.get(r.StreamID);
      if (m === undefined) {
        if (r.Last === 1) deny.push({ op: CMD_PRI_RESP, sid: r.StreamID, ssv: pasid !== undefined, ssid: pasid ?? 0, prgi: r.PRGIndex, resp: PRI_RESP_DENY });
        continue;
      }
      let perm = 0;
      if (r.R === 1) perm |= IOMMU_PGFAULT_PERM_READ;
      if (r.W === 1) perm |= IOMMU_PGFAULT_PERM_WRITE;
      if (r.X === 1) perm |= IOMMU_PGFAULT_PERM_EXEC;
      if (r.Priv === 1) perm |= IOMMU_PGFAULT_PERM_PRIV;
      this.groups.set(`${m.sid}/${pasid ?? -1}/${r.PRGIndex}`, 'pri');
      this.report({ endpoint: m.ep, pasid, addr: BigInt(r.Addr), perm, grpid: r.PRGIndex, last: r.Last === 1 });
    }
    this.regs.write32(SMMU_PRIQ_CONS, ((prodReg & Q_OVF) | cons) >>> 0);
    if (deny.length > 0) this.mustIssue(deny);
  }

  /** Answers a page-request group: CMD_PRI_RESP (PRI) or CMD_RESUME (stall). */
  pageResponse(dev: EndpointDescriptor, pasid: number | undefined, grpid: number, code: number): void {
    const m = this.master(dev);
    const key = `${m.sid}/${pasid ?? -1}/${grpid}`;
    const kind = this.groups.get(key) ?? 'pri';
    this.groups.delete(key);
    if (kind === 'stall') {
      this.mustIssue([{ op: CMD_RESUME, sid: m.sid, stag: grpid, resp: code === IOMMUFD_PAGE_RESP_SUCCESS ? 1 : 2 }]);
      return;
    }
    const resp = code === IOMMUFD_PAGE_RESP_SUCCESS ? PRI_RESP_SUCC : code === IOMMUFD_PAGE_RESP_INVALID ? PRI_RESP_FAIL : PRI_RESP_DENY;
    this.mustIssue([{ op: CMD_PRI_RESP, sid: m.sid, ssv: pasid !== undefined, ssid: pasid ?? 0, prgi: grpid, resp }]);
  }
}
