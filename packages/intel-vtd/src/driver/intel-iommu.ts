/**
 * One VT-d unit as Linux's intel-iommu drives it: capability decoding, queued invalidation
 * with synchronous wait descriptors (dmar.c `qi_submit_sync`), the root table, per-device
 * scalable-mode context entries and PASID directories/tables (pasid.c), domain IDs, the fault
 * and page-request interrupt handlers (dmar.c `dmar_fault`, prq.c `prq_event_thread`). It
 * reaches the hardware only through its registers and physical memory.
 */

import {
  IoasidError,
  IOMMU_PGFAULT_PERM_EXEC,
  IOMMU_PGFAULT_PERM_PRIV,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  type BackendHost,
  type EndpointDescriptor,
  type PhysicalMemoryLike,
} from '@ioasid/uapi';
import * as registers from '../spec/registers.js';
import { getField } from '../spec/fields.js';
import * as invalidation from '../spec/invalidation.js';
import type { QiDescriptor } from '../spec/invalidation.js';
import { encodeScalableContextEntry, pdtsForMaxPasid } from '../spec/context-entry.js';
import {
  IDA_START_DID,
  PGTT_FIRST_STAGE,
  PGTT_PASS_THROUGH,
  encodePasidEntry,
  type PasidEntryFields,
} from '../spec/pasid-entry.js';
import { decodeFaultRecord, faultReasonName } from '../spec/faults.js';
import { decodePageRequest } from '../spec/page-request.js';
import { fsCanonical } from '../spec/first-stage.js';

// The spec names the invalidation path uses on every flush, bound once as module-local
// constants (under a module runner that implements import bindings as getters, as vitest's
// does, every read of an imported name would be a call).
const {
  CAP,
  CAP_REG,
  ECAP,
  ECAP_REG,
  FSTS_IQE,
  FSTS_ITE,
  FSTS_ICE,
  FSTS_PFO,
  FSTS_PPF,
  FSTS_PRO,
  FSTS_REG,
  FECTL_REG,
  FRCD_REG_SIZE,
  GCMD_QIE,
  GCMD_REG,
  GCMD_SRTP,
  GCMD_TE,
  GCMD_WBF,
  GSTS_QIES,
  GSTS_REG,
  GSTS_RTPS,
  GSTS_TES,
  GSTS_WBFS,
  IQA_REG,
  IQH_REG,
  IQT_REG,
  PECTL_REG,
  PQA_REG,
  PQH_REG,
  PQT_REG,
  PRS_PPR,
  PRS_PRO,
  PRS_REG,
  RTADDR_REG,
  domainCount,
} = registers;
const {
  QI_DONE,
  QI_GRAN_DEVICE_OR_PAGE,
  QI_GRAN_DOMAIN,
  QI_GRAN_GLOBAL,
  QI_GRAN_NONG_PASID,
  QI_IN_USE,
  QI_PC_GLOBAL,
  QI_PC_PASID_SEL,
  QI_RESP_INVALID,
  ccDescriptor,
  iotlbDescriptor,
  pasidCacheDescriptor,
  piotlbDescriptor,
  waitDescriptor,
} = invalidation;

/** Register access to one unit (the MMIO window). */
export interface RegisterAccess {
  /** Reads a 32-bit register. */
  read32(offset: number): number;
  /** Writes a 32-bit register. */
  write32(offset: number, value: number): void;
  /** Reads a 64-bit register. */
  read64(offset: number): bigint;
  /** Writes a 64-bit register. */
  write64(offset: number, value: bigint): void;
}

/** A fault the driver read from a fault recording register. */
export interface LoggedFault {
  /** Fault reason. */
  readonly reason: number;
  /** Linux's text for it. */
  readonly text: string;
  /** Source id. */
  readonly sourceId: number;
  /** PASID, when present. */
  readonly pasid: number | undefined;
  /** Faulting page address. */
  readonly address: bigint;
  /** A write ('DMA Write') or read. */
  readonly write: boolean;
}

/** What the driver keeps per device (endpoint with its own RID) of a unit. */
export interface DeviceState {
  /** The endpoint. */
  readonly dev: EndpointDescriptor;
  /** PASID directory physical address. */
  readonly dir: number;
  /** PASID directory frames. */
  readonly dirFrames: number;
  /** PDTS of the context entry. */
  readonly pdts: number;
  /** PASID tables allocated (directory index → table address). */
  readonly tables: Map<number, number>;
  /** Context-entry PRE is set (page requests enabled). */
  pre: boolean;
}

const QI_LENGTH = 256;
/** Descriptors per submission: the queue holds QI_LENGTH, less the wait descriptor and one free slot. */
const QI_BATCH = QI_LENGTH - 2;
const POLL_LIMIT = 10000;
const PRQ_ORDER = 4;

/** Decoded capabilities the driver uses (Linux `cap_*` / `ecap_*`). */
export interface DriverCaps {
  /** Scalable mode supported (ECAP.SMTS). */
  readonly sm: boolean;
  /** PASIDs (SM && ECAP.PASID). */
  readonly pasid: boolean;
  /** PASID width. */
  readonly pasidBits: number;
  /** First-stage translation. */
  readonly flts: boolean;
  /** Second-stage translation. */
  readonly slts: boolean;
  /** Nesting (SM && ECAP.NEST). */
  readonly nested: boolean;
  /** Pass-through. */
  readonly pt: boolean;
  /** Page requests. */
  readonly prs: boolean;
  /** Supervisor requests. */
  readonly srs: boolean;
  /** Extended accessed flag. */
  readonly eafs: boolean;
  /** Second-stage A/D usable (SLADS && SMPWCS). */
  readonly ssads: boolean;
  /** SMPWCS. */
  readonly smpwcs: boolean;
  /** Snoop control. */
  readonly sc: boolean;
  /** Caching mode. */
  readonly cm: boolean;
  /** Required write-buffer flush. */
  readonly rwbf: boolean;
  /** Page-selective invalidation and MAMV. */
  readonly psi: boolean;
  /** Max address mask. */
  readonly mamv: number;
  /** SAGAW. */
  readonly sagaw: number;
  /** MGAW + 1. */
  readonly mgaw: number;
  /** SLLPS. */
  readonly sllps: number;
  /** First-stage 1 GiB. */
  readonly fl1gp: boolean;
  /** First-stage 5-level. */
  readonly fl5lp: boolean;
  /** The largest SS AW ≤ MGAW the unit supports (Linux iommu->agaw). */
  readonly agaw: number;
  /** Number of DIDs. */
  readonly domains: number;
  /** Page-request drain. */
  readonly pds: boolean;
  /** FRCD offset and count. */
  readonly fro: number;
  /** Number of FRCDs. */
  readonly nfr: number;
}

/** Decodes CAP/ECAP as Linux's predicates do. */
export function decodeCaps(cap: bigint, ecap: bigint): DriverCaps {
  const c = (f: readonly [number, number]) => getField(cap, f);
  const e = (f: readonly [number, number]) => getField(ecap, f) !== 0;
  const sm = e(ECAP.SMTS);
  const sagaw = c(CAP.SAGAW);
  const mgaw = c(CAP.MGAW) + 1;
  let agaw = 0;
  for (let aw = 3; aw >= 1; aw--) {
    if (((sagaw >> aw) & 1) === 1 && 30 + 9 * aw <= Math.max(mgaw, 39)) {
      agaw = aw;
      break;
    }
  }
  return {
    sm,
    pasid: sm && e(ECAP.PASID),
    pasidBits: getField(ecap, ECAP.PSS) + 1,
    flts: sm && e(ECAP.FSTS),
    slts: !sm || e(ECAP.SSTS),
    nested: sm && e(ECAP.NEST),
    pt: e(ECAP.PT),
    prs: sm && e(ECAP.PRS),
    srs: e(ECAP.SRS),
    eafs: e(ECAP.EAFS),
    ssads: sm && e(ECAP.SSADS) && e(ECAP.SMPWCS),
    smpwcs: e(ECAP.SMPWCS),
    sc: e(ECAP.SC),
    cm: c(CAP.CM) !== 0,
    rwbf: c(CAP.RWBF) !== 0,
    psi: c(CAP.PSI) !== 0,
    mamv: c(CAP.MAMV),
    sagaw,
    mgaw,
    sllps: c(CAP.SLLPS),
    fl1gp: c(CAP.FL1GP) !== 0,
    fl5lp: c(CAP.FL5LP) !== 0,
    agaw,
    domains: domainCount(c(CAP.ND)),
    pds: e(ECAP.PDS),
    fro: c(CAP.FRO) * 16,
    nfr: c(CAP.NFR) + 1,
  };
}

/** One remapping unit under the driver. */
export class IntelIommu {
  /** CAP_REG. */
  readonly cap: bigint;
  /** ECAP_REG. */
  readonly ecap: bigint;
  /** Decoded capabilities. */
  readonly caps: DriverCaps;
  /** Faults read from the FRCDs (most recent last, at most 256). */
  readonly faultLog: LoggedFault[] = [];
  /** Devices behind this unit, by RID. */
  readonly devices = new Map<number, DeviceState>();
  private gcmd = 0;
  private readonly root: number;
  private readonly qiBase: number;
  private readonly status: number;
  private qiTail = 0;
  /** The wait descriptor (status write of QI_DONE to `status`) as dwords, without and with PD. */
  private readonly wait: Uint32Array;
  private readonly waitDrain: Uint32Array;
  private prqBase = 0;
  private readonly contextTables = new Map<number, number>();
  private readonly usedDids = new Set<number>();
  private nextDid = IDA_START_DID;

  /**
   * Brings the unit up: queued invalidation, root table (scalable mode when supported), global
   * cache flushes, the page request queue, fault interrupts, then translation.
   *
   * @param index - unit number
   * @param regs - its registers
   * @param memory - physical memory
   * @param host - the platform (page requests are reported there)
   */
  constructor(
    readonly index: number,
    readonly regs: RegisterAccess,
    private readonly memory: PhysicalMemoryLike,
    private readonly host: BackendHost,
  ) {
    this.cap = regs.read64(CAP_REG);
    this.ecap = regs.read64(ECAP_REG);
    const caps = (this.caps = decodeCaps(this.cap, this.ecap));
    if (!caps.sm) throw new IoasidError('EOPNOTSUPP', 'ecap', `VT-d unit ${index} lacks scalable mode (ECAP.SMTS), which this driver requires`);
    // dmar.c dmar_enable_qi: 8 KiB of 256-bit descriptors in scalable mode (IQA = base | DW | QS=1).
    this.qiBase = memory.allocFrames(2, 2) * 4096;
    this.status = memory.allocFrame() * 4096;
    const waitWords = (drain: boolean) => {
      const [qw0, qw1] = waitDescriptor({ statusWrite: true, statusData: QI_DONE, statusAddr: BigInt(this.status), drain });
      return Uint32Array.of(Number(qw0 & 0xffffffffn), Number(qw0 >> 32n), Number(qw1 & 0xffffffffn), Number(qw1 >> 32n));
    };
    this.wait = waitWords(false);
    this.waitDrain = waitWords(true);
    regs.write64(IQT_REG, 0n);
    regs.write64(IQA_REG, BigInt(this.qiBase) | (1n << 11n) | 1n);
    this.setCommand(GCMD_QIE, GSTS_QIES);
    // intel-iommu.c iommu_set_root_entry: RTADDR | SMT, SRTP, then global CC / PASID-cache / IOTLB flushes.
    this.root = memory.allocFrame() * 4096;
    regs.write64(RTADDR_REG, BigInt(this.root) | (1n << 10n));
    regs.write32(GCMD_REG, (this.gcmd | GCMD_SRTP) >>> 0);
    this.poll(() => (regs.read32(GSTS_REG) & GSTS_RTPS) !== 0, 'root table pointer');
    this.submit([
      ccDescriptor({ granularity: QI_GRAN_GLOBAL }),
      pasidCacheDescriptor({ granularity: QI_PC_GLOBAL }),
      iotlbDescriptor({ granularity: QI_GRAN_GLOBAL, dr: true, dw: true }),
    ]);
    if (caps.prs) {
      // prq.c intel_iommu_enable_prq: 2^PRQ_ORDER pages, PQA = base | PRQ_ORDER.
      this.prqBase = memory.allocFrames(1 << PRQ_ORDER, 1 << PRQ_ORDER) * 4096;
      regs.write64(PQH_REG, 0n);
      regs.write64(PQT_REG, 0n);
      regs.write64(PQA_REG, BigInt(this.prqBase) | BigInt(PRQ_ORDER));
      regs.write32(PECTL_REG, 0);
    }
    regs.write32(FSTS_REG, regs.read32(FSTS_REG));
    regs.write32(FECTL_REG, 0);
    this.setCommand(GCMD_TE, GSTS_TES);
  }

  private poll(done: () => boolean, what: string): void {
    for (let i = 0; i < POLL_LIMIT; i++) if (done()) return;
    throw new IoasidError('ETIMEDOUT', undefined, `VT-d unit ${this.index}: ${what} did not complete`);
  }

  /** GCMD protocol: write the persistent bits plus the new one, then poll GSTS. */
  private setCommand(bit: number, status: number): void {
    this.gcmd = (this.gcmd | bit) >>> 0;
    this.regs.write32(GCMD_REG, this.gcmd);
    this.poll(() => (this.regs.read32(GSTS_REG) & status) !== 0, `GCMD 0x${bit.toString(16)}`);
  }

  /** Write-buffer flush (CAP.RWBF). */
  flushWriteBuffer(): void {
    if (!this.caps.rwbf) return;
    this.regs.write32(GCMD_REG, (this.gcmd | GCMD_WBF) >>> 0);
    this.poll(() => (this.regs.read32(GSTS_REG) & GSTS_WBFS) === 0, 'write buffer flush');
  }

  /**
   * dmar.c qi_submit_sync: writes the descriptors and a wait descriptor whose status write
   * signals completion, advances IQT, and polls the status (checking FSTS.IQE/ITE/ICE).
   */
  submit(descs: readonly QiDescriptor[], options: { drain?: boolean } = {}): void {
    const drain = options.drain === true;
    const p = this.pending;
    for (let at = 0; at < descs.length || at === 0; at += QI_BATCH) {
      const end = Math.min(descs.length, at + QI_BATCH);
      for (let k = at; k < end; k++) {
        const [qw0, qw1] = descs[k]!;
        const w = this.pendingCount++ * 4;
        p[w] = Number(qw0 & 0xffffffffn);
        p[w + 1] = Number((qw0 >> 32n) & 0xffffffffn);
        p[w + 2] = Number(qw1 & 0xffffffffn);
        p[w + 3] = Number((qw1 >> 32n) & 0xffffffffn);
      }
      this.submitPending(drain);
      if (descs.length === 0) break;
    }
  }

  /**
   * Descriptors queued for {@link submitPending}, four dwords each (qw0 low/high, qw1
   * low/high): the invalidations on the map/unmap path are encoded straight into it with the
   * spec's `*Words` encoders, without BigInts.
   */
  readonly pending = new Uint32Array(4 * QI_BATCH);
  private pendingCount = 0;

  /** Reserves the next descriptor in {@link pending} (sending a full batch first); returns its first dword index. */
  nextDescriptor(): number {
    if (this.pendingCount === QI_BATCH) this.submitPending(false);
    return this.pendingCount++ * 4;
  }

  /** Writes one 256-bit descriptor (dwords 4–7 zero) at queue slot `slot`. */
  private writeDesc(slot: number, d0: number, d1: number, d2: number, d3: number): void {
    const b = this.batch;
    b[0] = d0;
    b[1] = d1;
    b[2] = d2;
    b[3] = d3;
    this.memory.writeFrom(this.qiBase + slot * 32, this.batchBytes, 0, 32);
  }

  /**
   * The descriptors of one submission as they go into the queue (eight dwords each, the upper
   * four always zero), copied in with one bulk write per contiguous stretch of slots.
   */
  private readonly batch = new Uint32Array(8 * QI_LENGTH);
  private readonly batchBytes = new Uint8Array(this.batch.buffer);

  /** Sends the queued descriptors and a wait descriptor, then waits for the status write (qi_submit_sync). */
  submitPending(drain = false): void {
    const regs = this.regs;
    const mem = this.memory;
    const count = this.pendingCount;
    this.pendingCount = 0;
    mem.write32At(this.status, QI_IN_USE);
    const wait = drain ? this.waitDrain : this.wait;
    const p = this.pending;
    const b = this.batch;
    const start = this.qiTail;
    for (let k = 0; k < count; k++) {
      b[8 * k] = p[4 * k]!;
      b[8 * k + 1] = p[4 * k + 1]!;
      b[8 * k + 2] = p[4 * k + 2]!;
      b[8 * k + 3] = p[4 * k + 3]!;
    }
    b[8 * count] = wait[0]!;
    b[8 * count + 1] = wait[1]!;
    b[8 * count + 2] = wait[2]!;
    b[8 * count + 3] = wait[3]!;
    // count + 1 descriptors from `start`, in at most two stretches (the queue wraps)
    const first = Math.min(count + 1, QI_LENGTH - start);
    mem.writeFrom(this.qiBase + start * 32, this.batchBytes, 0, first * 32);
    if (first < count + 1) mem.writeFrom(this.qiBase, this.batchBytes, first * 32, (count + 1 - first) * 32);
    const slot = (start + count + 1) % QI_LENGTH;
    this.qiTail = slot;
    regs.write32(IQT_REG, slot << 5); // a 64-bit register written low dword first
    regs.write32(IQT_REG + 4, 0);
    for (let i = 0; i < POLL_LIMIT; i++) {
      if (mem.read32At(this.status) === QI_DONE) return;
      const fsts = regs.read32(FSTS_REG);
      if ((fsts & FSTS_IQE) !== 0) {
        // Replace the bad descriptor by the wait descriptor, clear IQE (dmar.c qi_check_fault).
        const head = Number(regs.read64(IQH_REG) >> 5n);
        const bad = (head - start + QI_LENGTH) % QI_LENGTH;
        this.writeDesc(head, wait[0]!, wait[1]!, wait[2]!, wait[3]!);
        regs.write32(FSTS_REG, FSTS_IQE);
        throw new IoasidError('EIO', undefined, `VT-d unit ${this.index}: invalidation queue error at descriptor ${bad}`);
      }
      if ((fsts & (FSTS_ITE | FSTS_ICE)) !== 0) regs.write32(FSTS_REG, fsts & (FSTS_ITE | FSTS_ICE));
    }
    throw new IoasidError('ETIMEDOUT', undefined, `VT-d unit ${this.index}: invalidation wait did not complete`);
  }

  /** Allocates a domain id (2 …). */
  allocDid(): number {
    for (let n = 0; n < this.caps.domains; n++) {
      const did = this.nextDid;
      this.nextDid = did + 1 >= this.caps.domains ? IDA_START_DID : did + 1;
      if (!this.usedDids.has(did)) {
        this.usedDids.add(did);
        return did;
      }
    }
    throw new IoasidError('ENOSPC', undefined, `VT-d unit ${this.index}: all ${this.caps.domains} domain ids are in use`);
  }

  /** Frees a domain id. */
  freeDid(did: number): void {
    this.usedDids.delete(did);
  }

  // ─── devices: context entries and PASID tables ──────────────────────────────────────────

  /**
   * Probes a device (Linux `intel_iommu_probe_device` + `intel_pasid_alloc_table` +
   * `intel_pasid_setup_sm_context`): a PASID directory sized for the device's PASIDs and a
   * present scalable-mode context entry pointing at it. No PASID entry is present yet, so
   * the device's DMA is blocked (fault 0x59).
   */
  probe(dev: EndpointDescriptor): DeviceState {
    const caps = this.caps;
    const maxPasid = dev.pasid && caps.pasid ? 2 ** Math.min(20, caps.pasidBits) : 0;
    // intel_pasid_alloc_table: directory bytes = max_pasid >> 3 rounded up to a page order.
    const dirFrames = Math.max(1, 2 ** Math.ceil(Math.log2(Math.max(1, maxPasid / 8 / 4096))));
    const dir = this.memory.allocFrames(dirFrames, dirFrames) * 4096;
    const pdts = pdtsForMaxPasid(dirFrames * 4096 * 8);
    const state: DeviceState = { dev, dir, dirFrames, pdts, tables: new Map(), pre: false };
    const key = dev.bus * 2 + (dev.devfn >= 0x80 ? 1 : 0);
    let ctp = this.contextTables.get(key);
    if (ctp === undefined) {
      ctp = this.memory.allocFrame() * 4096;
      this.contextTables.set(key, ctp);
      const half = dev.devfn >= 0x80 ? 8 : 0;
      this.memory.write64(BigInt(this.root + dev.bus * 16 + half), BigInt(ctp) | 1n);
    }
    this.devices.set(dev.rid, state);
    this.writeContext(state);
    return state;
  }

  private contextAddress(dev: EndpointDescriptor): number {
    return this.contextTables.get(dev.bus * 2 + (dev.devfn >= 0x80 ? 1 : 0))! + (dev.devfn & 0x7f) * 32;
  }

  /** Writes the device's context entry (present bit last) and flushes as pasid.c does. */
  private writeContext(state: DeviceState): void {
    const a = this.contextAddress(state.dev);
    const wasPresent = (this.memory.read32At(a) & 1) !== 0;
    const v = encodeScalableContextEntry({
      present: true,
      paside: state.dev.pasid && this.caps.pasid,
      pre: state.pre,
      pdts: state.pdts,
      pasidDirPtr: BigInt(state.dir),
      ridPasid: 0, // IOMMU_NO_PASID
    });
    for (let i = 3; i >= 0; i--) this.memory.write64(BigInt(a + i * 8), v[i]!);
    const sid = state.dev.rid;
    if (wasPresent) {
      // intel_context_flush_present: device-selective context-cache flush (DID ignored in SM).
      this.submit([ccDescriptor({ granularity: QI_GRAN_DEVICE_OR_PAGE, sid })]);
    } else if (this.caps.cm) {
      this.submit([ccDescriptor({ granularity: QI_GRAN_DEVICE_OR_PAGE, sid }), iotlbDescriptor({ granularity: QI_GRAN_GLOBAL })]);
    } else this.flushWriteBuffer();
  }

  /** Sets or clears context-entry PRE (the device may raise page requests). */
  setPageRequests(state: DeviceState, enable: boolean): void {
    if (state.pre === enable || !this.caps.prs || !state.dev.pri) return;
    if (!enable) this.drainPageRequests();
    state.pre = enable;
    this.writeContext(state);
  }

  /** The address of a PASID-table entry, allocating its PASID table when `alloc`. */
  private pasidEntryAddress(state: DeviceState, pasid: number, alloc: boolean): number | undefined {
    const di = Math.floor(pasid / 64);
    let table = state.tables.get(di);
    if (table === undefined) {
      if (!alloc) return undefined;
      table = this.memory.allocFrame() * 4096;
      state.tables.set(di, table);
      this.memory.write64(BigInt(state.dir + di * 8), BigInt(table) | 1n);
    }
    return table + (pasid % 64) * 64;
  }

  /** Reads the (DID, PGTT) of a present PASID entry, or undefined. */
  pasidEntryState(state: DeviceState, pasid: number): { did: number; pgtt: number } | undefined {
    const a = this.pasidEntryAddress(state, pasid, false);
    if (a === undefined) return undefined;
    const lo = this.memory.read32At(a);
    if ((lo & 1) === 0) return undefined;
    return { did: this.memory.read32At(a + 8) & 0xffff, pgtt: (lo >>> 6) & 7 };
  }

  /**
   * Installs a PASID-table entry (pasid.c `intel_pasid_setup_*` / `*_replace`): a new entry is
   * written with P last and flushed per CM/RWBF; replacing a present one flushes the old
   * DID's PASID cache and IOTLB afterwards.
   */
  setPasidEntry(state: DeviceState, pasid: number, fields: PasidEntryFields): void {
    const a = this.pasidEntryAddress(state, pasid, true)!;
    const old = this.pasidEntryState(state, pasid);
    const v = encodePasidEntry(fields);
    for (let i = 7; i >= 0; i--) this.memory.write64(BigInt(a + i * 8), v[i]!);
    if (old !== undefined) {
      this.submit([pasidCacheDescriptor({ granularity: QI_PC_PASID_SEL, did: old.did, pasid }), this.teardownIotlb(old, pasid)]);
    } else if (this.caps.cm) {
      this.submit([
        pasidCacheDescriptor({ granularity: QI_PC_PASID_SEL, did: fields.did, pasid }),
        piotlbDescriptor({ granularity: QI_GRAN_NONG_PASID, did: fields.did, pasid }),
      ]);
    } else this.flushWriteBuffer();
  }

  private teardownIotlb(old: { did: number; pgtt: number }, pasid: number): QiDescriptor {
    // First-stage-only and pass-through entries are PASID-tagged; SS-only and nested by DID.
    return old.pgtt === PGTT_FIRST_STAGE || old.pgtt === PGTT_PASS_THROUGH
      ? piotlbDescriptor({ granularity: QI_GRAN_NONG_PASID, did: old.did, pasid })
      : iotlbDescriptor({ granularity: QI_GRAN_DOMAIN, did: old.did });
  }

  /**
   * Tears a PASID entry down (pasid.c `intel_pasid_tear_down_entry`): clear P, flush the PASID
   * cache and the IOTLB for the old DID, then zero the entry and drain page requests.
   */
  clearPasidEntry(state: DeviceState, pasid: number): void {
    const old = this.pasidEntryState(state, pasid);
    if (old === undefined) return;
    const a = this.pasidEntryAddress(state, pasid, false)!;
    this.memory.write32At(a, this.memory.read32At(a) & ~1);
    this.submit([pasidCacheDescriptor({ granularity: QI_PC_PASID_SEL, did: old.did, pasid }), this.teardownIotlb(old, pasid)]);
    for (let i = 0; i < 16; i++) this.memory.write32At(a + i * 4, 0);
    if (state.pre) this.drainPageRequests(old.did, pasid);
  }

  /** Rewrites one present PASID entry in place (e.g. toggling SSADE) and flushes. */
  modifyPasidEntry(state: DeviceState, pasid: number, fields: PasidEntryFields): void {
    const a = this.pasidEntryAddress(state, pasid, false);
    if (a === undefined) return;
    const v = encodePasidEntry(fields);
    for (let i = 7; i >= 0; i--) this.memory.write64(BigInt(a + i * 8), v[i]!);
    this.submit([
      pasidCacheDescriptor({ granularity: QI_PC_PASID_SEL, did: fields.did, pasid }),
      iotlbDescriptor({ granularity: QI_GRAN_DOMAIN, did: fields.did }),
    ]);
  }

  // ─── interrupts ──────────────────────────────────────────────────────────────────────────

  /** dmar.c dmar_fault: drain the fault recording registers from FSTS.FRI, then clear status. */
  handleFault(): void {
    const regs = this.regs;
    const fsts = regs.read32(FSTS_REG);
    if ((fsts & FSTS_PPF) !== 0) {
      let i = (fsts >>> 8) & 0xff;
      for (let n = 0; n < this.caps.nfr; n++) {
        const off = this.caps.fro + i * FRCD_REG_SIZE;
        const hi = regs.read32(off + 12);
        if ((hi & 0x80000000) === 0) break;
        const r = decodeFaultRecord([regs.read32(off), regs.read32(off + 4), regs.read32(off + 8), hi]);
        regs.write32(off + 12, 0x80000000);
        this.faultLog.push({ reason: r.fr, text: faultReasonName(r.fr), sourceId: r.sid, pasid: r.pp ? r.pv : undefined, address: r.fi, write: !r.t1 });
        if (this.faultLog.length > 256) this.faultLog.shift();
        i = (i + 1) % this.caps.nfr;
      }
    }
    regs.write32(FSTS_REG, FSTS_PFO | FSTS_PPF | FSTS_PRO);
  }

  /** prq.c prq_event_thread: clear PPR, handle PQH…PQT, advance PQH, clear PRO. */
  handlePageRequests(): void {
    if (this.prqBase === 0) return;
    const regs = this.regs;
    regs.write32(PRS_REG, PRS_PPR);
    const mask = (4096 << PRQ_ORDER) - 32;
    let head = Number(regs.read64(PQH_REG)) & mask;
    const tail = Number(regs.read64(PQT_REG)) & mask;
    const dw = new Array<number>(4);
    for (let guard = 0; head !== tail && guard < (4096 << PRQ_ORDER) / 32; guard++) {
      for (let k = 0; k < 4; k++) dw[k] = this.memory.read32At(this.prqBase + head + k * 4);
      const req = decodePageRequest(dw);
      this.handleOne(req);
      head = (head + 32) & mask;
    }
    regs.write64(PQH_REG, BigInt(tail));
    if ((regs.read32(PRS_REG) & PRS_PRO) !== 0) regs.write32(PRS_REG, PRS_PRO);
  }

  private handleOne(req: ReturnType<typeof decodePageRequest>): void {
    const pasid = req.pasidPresent ? req.pasid : undefined;
    const addr = req.addr;
    const bad =
      !fsCanonical(Number(addr >> 32n) >>> 0, false) ||
      (req.pmReq && (req.rdReq || req.wrReq)) ||
      (req.exeReq && req.rdReq);
    if (!bad && req.lpig && !req.rdReq && !req.wrReq) return; // stop marker: no response
    const state = this.devices.get(req.rid);
    if (bad || state === undefined) {
      if (req.lpig) this.respond(req.rid, pasid, req.prgIndex, QI_RESP_INVALID);
      return;
    }
    const perm =
      (req.rdReq ? IOMMU_PGFAULT_PERM_READ : 0) |
      (req.wrReq ? IOMMU_PGFAULT_PERM_WRITE : 0) |
      (req.exeReq ? IOMMU_PGFAULT_PERM_EXEC : 0) |
      (req.pmReq ? IOMMU_PGFAULT_PERM_PRIV : 0);
    this.host.reportPageRequest({ endpoint: state.dev, pasid, addr, perm, grpid: req.prgIndex, last: req.lpig });
  }

  /** Sends a page group response (QI type 9). */
  respond(rid: number, pasid: number | undefined, prgi: number, code: number): void {
    const qw0 =
      (BigInt(pasid ?? 0) << 32n) | (BigInt(rid) << 16n) | (BigInt(code & 0xf) << 12n) | (pasid === undefined ? 0n : 16n) | 9n;
    this.submit([[qw0, (BigInt(prgi & 0x1ff) << 3n) | 4n]]);
  }

  /**
   * prq.c intel_iommu_drain_pasid_prq: handle what is queued, then a fenced wait with the
   * page-request drain bit and a PASID-based IOTLB flush.
   */
  drainPageRequests(did?: number, pasid?: number): void {
    if (this.prqBase === 0) return;
    this.handlePageRequests();
    if (!this.caps.pds) return;
    const descs: QiDescriptor[] = [waitDescriptor({ fence: true, drain: true })];
    if (did !== undefined && pasid !== undefined) descs.push(piotlbDescriptor({ granularity: QI_GRAN_NONG_PASID, did, pasid }));
    this.submit(descs, { drain: true });
  }

  /** Bytes of 4 KiB frames the unit itself uses (root, queues, context tables). */
  get ownFrames(): number {
    return 1 + 2 + 1 + (this.prqBase === 0 ? 0 : 1 << PRQ_ORDER) + this.contextTables.size;
  }
}
