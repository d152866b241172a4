/**
 * The SMMUv3 hardware model (IHI0070): the register file with its enable/acknowledge and update
 * protocols, the command queue consumed on CMDQ_PROD writes, the event and PRI queues written to
 * memory, the stream table (linear and 2-level), CD tables (linear and 2-level), stage-1,
 * stage-2 and nested VMSAv8-64 walks, configuration caches and a TLB that stay stale until the
 * matching CFGI/TLBI, stall with CMD_RESUME and PRI with CMD_PRI_RESP. It never throws at a DMA
 * and never hangs: loops are bounded by queue sizes and table levels.
 */

import { copyFrameBytes, dmaResultOf } from '@ioasid/core';
import type { DmaFault, DmaRequest, DmaResult, FaultClass, PhysicalMemoryLike } from '@ioasid/uapi';
import { getAddr } from '../spec/bits.js';
import {
  CMD_ATC_INV,
  CMD_CFGI_ALL_RANGE,
  CMD_CFGI_CD,
  CMD_CFGI_CD_ALL,
  CMD_CFGI_STE,
  CMD_CFGI_STE_RANGE,
  CMD_FIELDS,
  CMD_PREFETCH_ADDR,
  CMD_PREFETCH_CONFIG,
  CMD_PRI_RESP,
  CMD_PRI_RESP_RESP,
  CMD_RESUME,
  CMD_STALL_TERM,
  CMD_SYNC,
  CMD_TLBI_EL2_ALL,
  CMD_TLBI_EL2_ASID,
  CMD_TLBI_EL2_VA,
  CMD_TLBI_EL2_VAA,
  CMD_TLBI_NH_ALL,
  CMD_TLBI_NH_ASID,
  CMD_TLBI_NH_VA,
  CMD_TLBI_NH_VAA,
  CMD_TLBI_NSNH_ALL,
  CMD_TLBI_S12_VMALL,
  CMD_TLBI_S2_IPA,
  PRI_RESP_DENY,
  PRI_RESP_FAIL,
  commandAddr,
} from '../spec/commands.js';
import { getField } from '../spec/bits.js';
import {
  C_BAD_CD,
  C_BAD_STE,
  C_BAD_STREAMID,
  C_BAD_SUBSTREAMID,
  EVENT_NAMES,
  EVT_CLASS_CD,
  EVT_CLASS_IN,
  EVT_WORDS,
  F_ADDR_SIZE,
  F_BAD_ATS_TREQ,
  F_CD_FETCH,
  F_PERMISSION,
  F_STE_FETCH,
  F_STREAM_DISABLED,
  F_TRANSLATION,
  F_WALK_EABT,
  decodeEventWords,
  encodeEventWords,
  type SmmuEventFields,
} from '../spec/events.js';
import { encodePriWords, PRG_RESPONSE_FAILURE, PRG_RESPONSE_INVALID_REQUEST, PRG_RESPONSE_SUCCESS } from '../spec/priq.js';
import { CMDQ_ENT_SIZE, EVTQ_ENT_SIZE, PRIQ_ENT_SIZE, qEmpty, qFull, qIndex, qInc, qPtr } from '../spec/queue.js';
import {
  CR0_CMDQEN,
  CR0_EVENTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  CR0_WRITABLE,
  CR2_RECINVSID,
  GBPA_ABORT,
  GBPA_UPDATE,
  GERROR_CMDQ_ERR,
  GERROR_EVTQ_ABT_ERR,
  GERROR_PRIQ_ABT_ERR,
  IDR1,
  IDR3,
  IDR5,
  IRQ_CTRL_EVENTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
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
  SMMU_EVENTQ_IRQ_CFG0,
  SMMU_EVENTQ_IRQ_CFG1,
  SMMU_EVENTQ_IRQ_CFG2,
  SMMU_EVENTQ_PROD,
  SMMU_GBPA,
  SMMU_GERROR,
  SMMU_GERROR_IRQ_CFG0,
  SMMU_GERROR_IRQ_CFG1,
  SMMU_GERROR_IRQ_CFG2,
  SMMU_GERRORN,
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_IDR2,
  SMMU_IDR3,
  SMMU_IDR4,
  SMMU_IDR5,
  SMMU_IIDR,
  SMMU_IRQ_CTRL,
  SMMU_IRQ_CTRLACK,
  SMMU_PRIQ_BASE,
  SMMU_PRIQ_CONS,
  SMMU_PRIQ_IRQ_CFG0,
  SMMU_PRIQ_IRQ_CFG1,
  SMMU_PRIQ_IRQ_CFG2,
  SMMU_PRIQ_PROD,
  SMMU_STATUSR,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
  SMMU_AGBPA,
  CERROR_ABT,
  CERROR_ILL,
  regField,
} from '../spec/registers.js';
import { STE_S1DSS_BYPASS, STE_S1DSS_SSID0 } from '../spec/ste.js';
import { CdCache, SteCache } from './config-cache.js';
import { decodeContextConfig, decodeFeatures, decodeStreamConfig, type ContextConfig, type Features, type StreamConfig } from './config.js';
import { DEFAULT_IDR, QEMU_IDR, type SmmuIdRegisters } from './defaults.js';
import {
  PERM_R_PRIV,
  PERM_R_USER,
  PERM_W_DBM,
  PERM_W_PRIV,
  PERM_W_USER,
  PERM_X_PRIV,
  PERM_X_USER,
  TLB_KIND_S1,
  TLB_KIND_S1_GLOBAL,
  TLB_KIND_S2,
  Tlb,
} from './tlb.js';
import { POW2 } from './pow2.js';
import { Walker, WalkOut } from './walker.js';

/** An interrupt line of the SMMU (wired: the model calls the handler system.ts connects). */
export type SmmuInterrupt = 'eventq' | 'priq' | 'gerror';

/** Options of {@link SmmuV3Hardware}. */
export interface SmmuV3Options {
  /** Physical memory the SMMU reads tables and queues from and DMA goes to. */
  readonly memory: PhysicalMemoryLike;
  /** Identification registers overriding the profile's (each optional). */
  readonly idr?: Partial<SmmuIdRegisters>;
  /** `'default'` (the full model) or `'qemu'` (QEMU's limits, for comparison). */
  readonly profile?: 'default' | 'qemu';
  /** TLB capacity in entries (default 4096). */
  readonly tlbEntries?: number;
  /** Configuration cache capacity in STEs (default 1024) and in CDs (default 4096). */
  readonly configCacheEntries?: number;
  /** Called when an enabled interrupt fires (after the record is in memory). */
  readonly onInterrupt?: (line: SmmuInterrupt) => void;
}

/** A DMA as the SMMU receives it from an endpoint. */
export interface SmmuDmaRequest {
  /** StreamID (the PCIe requester ID). */
  readonly streamId: number;
  /** SubstreamID (PASID); absent = no SubstreamID. */
  readonly substreamId?: number;
  /** Input address. */
  readonly iova: bigint;
  /** Bytes to read (writes use `data.length`). */
  readonly size: number;
  /** Write (true) or read. */
  readonly write: boolean;
  /** Bytes to write. */
  readonly data?: Uint8Array;
  /** Instruction fetch. */
  readonly exec?: boolean;
  /** Privileged. */
  readonly priv?: boolean;
  /**
   * The endpoint translates through ATS: translation-related faults are answered to the
   * endpoint (ATS Translation Completion) instead of being recorded, and STE.EATS must allow it.
   */
  readonly ats?: boolean;
}

/** A PCIe PRI Page Request from an ATS-capable endpoint. */
export interface SmmuPageRequest {
  /** StreamID. */
  readonly streamId: number;
  /** PASID; absent = no PASID prefix. */
  readonly substreamId?: number;
  /** Page address. */
  readonly iova: bigint;
  /** Read access requested. */
  readonly read: boolean;
  /** Write access requested. */
  readonly write: boolean;
  /** Execute requested. */
  readonly exec?: boolean;
  /** Privileged requested. */
  readonly priv?: boolean;
  /** Last request of the group. */
  readonly last: boolean;
  /** Page request group index (9 bits). */
  readonly prgi: number;
}

/** A PRG Response sent to an endpoint (by CMD_PRI_RESP or automatically). */
export interface PriResponse {
  /** StreamID. */
  readonly streamId: number;
  /** PASID on the response, if any. */
  readonly substreamId: number | undefined;
  /** Page request group index. */
  readonly prgi: number;
  /** PCIe ResponseCode (0 success, 1 invalid request, 0b1111 failure). */
  readonly code: number;
  /** Generated by the SMMU itself (PRIQ disabled, overflow or error). */
  readonly auto: boolean;
}

/** A stalled transaction awaiting CMD_RESUME. */
export interface StalledTransaction {
  /** Stall tag. */
  readonly stag: number;
  /** The transaction. */
  readonly request: SmmuDmaRequest;
}

/** The SMMU's MMIO interface (page 0 at 0x0, page 1 at 0x10000). */
export interface SmmuMmio {
  /** Reads a 32-bit register. */
  read32(offset: number): number;
  /** Writes a 32-bit register. */
  write32(offset: number, value: number): void;
  /** Reads a 64-bit register (two 32-bit halves). */
  read64(offset: number): bigint;
  /** Writes a 64-bit register. */
  write64(offset: number, value: bigint): void;
}

const TWO32 = 4294967296;
const SIZE = POW2;
/** Every access permission: an identity (bypass) translation forbids nothing. */
const PERM_ALL = PERM_R_PRIV | PERM_W_PRIV | PERM_X_PRIV | PERM_R_USER | PERM_W_USER | PERM_X_USER;
/** 1/4096, exactly: `x * INV_PAGE` is `x / 4096` without a division. */
const INV_PAGE = 1 / 4096;
const STORED = new Set([
  SMMU_CR0, SMMU_CR1, SMMU_CR2, SMMU_GBPA, SMMU_AGBPA, SMMU_IRQ_CTRL, SMMU_GERRORN,
  SMMU_GERROR_IRQ_CFG0, SMMU_GERROR_IRQ_CFG0 + 4, SMMU_GERROR_IRQ_CFG1, SMMU_GERROR_IRQ_CFG2,
  SMMU_STRTAB_BASE, SMMU_STRTAB_BASE + 4, SMMU_STRTAB_BASE_CFG, SMMU_CMDQ_BASE, SMMU_CMDQ_BASE + 4,
  SMMU_CMDQ_PROD, SMMU_CMDQ_CONS, SMMU_EVENTQ_BASE, SMMU_EVENTQ_BASE + 4, SMMU_EVENTQ_PROD, SMMU_EVENTQ_CONS,
  SMMU_EVENTQ_IRQ_CFG0, SMMU_EVENTQ_IRQ_CFG0 + 4, SMMU_EVENTQ_IRQ_CFG1, SMMU_EVENTQ_IRQ_CFG2,
  SMMU_PRIQ_BASE, SMMU_PRIQ_BASE + 4, SMMU_PRIQ_PROD, SMMU_PRIQ_CONS,
  SMMU_PRIQ_IRQ_CFG0, SMMU_PRIQ_IRQ_CFG0 + 4, SMMU_PRIQ_IRQ_CFG1, SMMU_PRIQ_IRQ_CFG2,
]);

function faultClassOf(id: number): FaultClass {
  switch (id) {
    case F_TRANSLATION:
    case 0x12:
      return 'translation';
    case F_PERMISSION:
      return 'permission';
    case F_ADDR_SIZE:
      return 'address-size';
    case F_STE_FETCH:
    case F_CD_FETCH:
    case F_WALK_EABT:
      return 'external-abort';
    case F_STREAM_DISABLED:
    case F_BAD_ATS_TREQ:
      return 'blocked';
    default:
      return 'bad-config';
  }
}

/** The Arm SMMUv3 hardware model. Every method returns its result directly. */
export class SmmuV3Hardware {
  /** Memory the model reads and writes. */
  readonly memory: PhysicalMemoryLike;
  /** The identification registers. */
  readonly idr: SmmuIdRegisters;
  /** The profile. */
  readonly profile: 'default' | 'qemu';
  /** The MMIO register interface. */
  readonly mmio: SmmuMmio;
  /** PRG responses sent to endpoints (most recent last; bounded to 1024). */
  readonly priResponses: PriResponse[] = [];
  /** Results of stalled transactions resumed by CMD_RESUME, by STAG. */
  readonly resumed = new Map<number, DmaResult>();
  /** The interrupt handler (system.ts wires it to the driver). */
  onInterrupt: ((line: SmmuInterrupt) => void) | undefined;
  /** Receives every PRG response (system.ts routes it to the endpoint). */
  onPriResponse: ((response: PriResponse) => void) | undefined;

  private readonly f: Features;
  private readonly regs = new Map<number, number>();
  private gerror = 0;
  private readonly tlb: Tlb;
  private readonly walker: Walker;
  private readonly w1 = new WalkOut();
  private readonly w2 = new WalkOut();
  private readonly steCache: SteCache;
  private readonly cdCache: CdCache;
  private readonly stalls = new Map<number, { sid: number; request: SmmuDmaRequest }>();
  private nextStag = 1;
  private readonly words16 = new Uint32Array(16);
  private readonly cmd = new Uint32Array(4);
  private readonly evt = new Uint32Array(EVT_WORDS);
  private readonly pri = new Uint32Array(4);
  private depth = 0;
  private pendingIrq = 0;
  // The result of the last successful translate(): PA of the byte, bytes left in the leaf, RAZ/WI.
  private xlPa = 0;
  private xlLimit = 0;
  private xlRaz = false;
  // ... and the leaf it came from: log2 of its size and its PERM_* bits.
  private xlShift = 12;
  private xlPerms = 0;
  /**
   * Bumped by everything that can change what a translation gives: every register write, every
   * command consumed, every flush, and every translation that goes past the last-translation
   * cache (it may fill or evict TLB and configuration-cache entries, or update descriptors).
   */
  private gen = 1;
  // The last-translation cache (a one-entry micro-TLB in front of the configuration lookup and
  // the TLB): the leaf that translated the last single-translation DMA, for the same StreamID,
  // SubstreamID (−1: none) and ATS flag, valid while `lt.gen === gen`. It only ever holds what
  // the configuration caches and the TLB would give at that moment, so it never serves a
  // translation they would not: any change to them (invalidation, fill, eviction, register
  // write) bumps `gen` and drops it.
  private ltGen = 0;
  private ltSid = 0;
  private ltSsid = 0;
  private ltAts = false;
  private ltPerms = 0;
  private ltHi = 0;
  private ltLo = 0;
  private ltOffMask = 0;
  private ltPa = 0;
  private pending: DmaFault | undefined;
  /** The input address as issued (a bigint reference: nothing is computed from it on success). */
  private curIova = 0n;
  private curOff = 0;
  /** Scratch for splitting the input address into two 32-bit halves (one store, no BigInt math). */
  private readonly iova64 = new BigUint64Array(1);
  private readonly iova32 = new Uint32Array(this.iova64.buffer);
  /** Scratch of runPages: the output address (−1 for RAZ) and length of each piece. */
  private piecePa = new Float64Array(8);
  private pieceLen = new Float64Array(8);
  // The transaction being translated (set once per DMA; fault paths build records from them).
  private rqReq: SmmuDmaRequest | undefined;
  private rqSid = 0;
  private rqSsv = false;
  private rqSsid = 0;
  private rqWrite = false;
  private rqExec = false;
  private rqPriv = false;
  private rqAts = false;
  private rqSize = 0;
  private rqData: Uint8Array | undefined;
  private rqNeed = 0;
  private xHi = 0;
  private xLo = 0;
  // The last configuration used (one-entry memo in front of the STE and CD caches).
  private mSid = -1;
  private mSc: StreamConfig | undefined;
  private mCcIdx = -1;
  private mCc: ContextConfig | undefined;
  private cr0v = 0;
  private strtabBase = 0;
  private strtabCfg = 0;
  private readonly oasHiLimit: number;

  /** @param options - memory, identification registers, profile, cache sizes, interrupt handler */
  constructor(options: SmmuV3Options) {
    this.memory = options.memory;
    this.profile = options.profile ?? 'default';
    const base = this.profile === 'qemu' ? QEMU_IDR : DEFAULT_IDR;
    this.idr = { ...base, ...options.idr };
    this.f = decodeFeatures(this.idr.idr0, this.idr.idr1, this.idr.idr3, this.idr.idr5, this.profile === 'qemu');
    this.tlb = new Tlb(options.tlbEntries ?? 4096);
    this.steCache = new SteCache(options.configCacheEntries ?? 1024);
    this.cdCache = new CdCache((options.configCacheEntries ?? 1024) * 4);
    this.walker = new Walker(this.memory);
    this.oasHiLimit = 2 ** Math.max(0, this.f.oasBits - 32);
    this.onInterrupt = options.onInterrupt;
    // Reset values: GBPA 0 except QEMU's 0x1000 (SHCFG=incoming, bypass). Queues and tables
    // reset to UNKNOWN: modelled as 0.
    this.regs.set(SMMU_GBPA, this.profile === 'qemu' ? 0x1000 : 0);
    this.mmio = {
      read32: (o) => this.read32(o),
      write32: (o, v) => {
        this.enter();
        try {
          this.write32(o, v);
        } finally {
          this.leave();
        }
      },
      read64: (o) => BigInt(this.read32(o)) | (BigInt(this.read32(o + 4)) << 32n),
      write64: (o, v) => {
        const x = BigInt.asUintN(64, v);
        this.enter();
        try {
          this.write32(o, Number(x & 0xffffffffn));
          this.write32(o + 4, Number(x >> 32n));
        } finally {
          this.leave();
        }
      },
    };
  }

  /** Translations cached in the TLB. */
  get tlbSize(): number {
    return this.tlb.size;
  }

  /** Entries held by each cache: STEs, CDs and TLB translations. */
  cacheSizes(): { readonly ste: number; readonly cd: number; readonly tlb: number } {
    return { ste: this.steCache.size, cd: this.cdCache.size, tlb: this.tlb.size };
  }

  /**
   * Empties every configuration and translation cache (STE, CD, TLB), as CMD_CFGI_ALL followed
   * by CMD_TLBI_NSNH_ALL would, without going through the command queue: the next DMA of every
   * stream fetches its STE and CD and walks the tables again. For cold-cache benchmarks and tests.
   */
  flushCaches(): void {
    this.gen++;
    this.forgetMemo();
    this.steCache.clear();
    this.cdCache.clear();
    this.tlb.invalidateAll();
  }

  /**
   * Empties the translation caches only — the TLB (stage-1, stage-2 and combined entries) and
   * the last-translation cache — as CMD_TLBI_NSNH_ALL would, without going through the command
   * queue. The configuration caches (STEs, CDs) stay warm: the next DMA walks the translation
   * tables but fetches no STE or CD. The model has no separate walk (paging-structure) cache.
   */
  flushTranslationCaches(): void {
    this.gen++;
    this.tlb.invalidateAll();
  }

  /** Transactions stalled and waiting for CMD_RESUME. */
  stalled(): StalledTransaction[] {
    return [...this.stalls].map(([stag, s]) => ({ stag, request: s.request }));
  }

  // ---------------------------------------------------------------- registers

  private reg(o: number): number {
    return this.regs.get(o) ?? 0;
  }

  private read32(o: number): number {
    switch (o) {
      case SMMU_IDR0:
        return this.idr.idr0;
      case SMMU_IDR1:
        return this.idr.idr1;
      case SMMU_IDR2:
      case SMMU_IDR4:
        return 0;
      case SMMU_IDR3:
        return this.idr.idr3;
      case SMMU_IDR5:
        return this.idr.idr5;
      case SMMU_IIDR:
        return this.idr.iidr;
      case SMMU_AIDR:
        return this.idr.aidr;
      case SMMU_CR0ACK:
        return this.reg(SMMU_CR0);
      case SMMU_IRQ_CTRLACK:
        return this.reg(SMMU_IRQ_CTRL);
      case SMMU_GERROR:
        return this.gerror;
      case SMMU_STATUSR:
        return 0;
      default:
        return STORED.has(o) ? this.reg(o) : 0;
    }
  }

  private get cr0(): number {
    return this.cr0v;
  }

  private write32(o: number, value: number): void {
    this.gen++; // CR0.SMMUEN, GBPA, STRTAB_BASE…: any register may change what a translation gives
    const v = value >>> 0;
    const cr0 = this.cr0;
    switch (o) {
      case SMMU_CR0: {
        const next = v & CR0_WRITABLE;
        this.regs.set(SMMU_CR0, next); // CR0ACK follows at once: the model completes every change synchronously
        this.cr0v = next;
        if ((next & CR0_CMDQEN) !== 0 && (cr0 & CR0_CMDQEN) === 0) this.processCmdq();
        return;
      }
      case SMMU_GBPA:
        // Fields change only through the update protocol: a write with Update=1 applies them, and
        // the SMMU clears Update when done (immediately here).
        if ((v & GBPA_UPDATE) !== 0) this.regs.set(SMMU_GBPA, (v & ~GBPA_UPDATE) & 0x1f3f1f);
        return;
      case SMMU_STRTAB_BASE:
      case SMMU_STRTAB_BASE + 4:
      case SMMU_STRTAB_BASE_CFG:
        if ((cr0 & CR0_SMMUEN) === 0) {
          this.regs.set(o, v); // RO while SMMUEN
          this.strtabBase = this.base64(SMMU_STRTAB_BASE, 6);
          this.strtabCfg = this.reg(SMMU_STRTAB_BASE_CFG);
        }
        return;
      case SMMU_CMDQ_BASE:
      case SMMU_CMDQ_BASE + 4:
      case SMMU_CMDQ_CONS:
        if ((cr0 & CR0_CMDQEN) === 0) this.regs.set(o, v);
        return;
      case SMMU_CMDQ_PROD:
        this.regs.set(o, v);
        this.processCmdq();
        return;
      case SMMU_EVENTQ_BASE:
      case SMMU_EVENTQ_BASE + 4:
      case SMMU_EVENTQ_PROD:
        if ((cr0 & CR0_EVENTQEN) === 0) this.regs.set(o, v);
        return;
      case SMMU_PRIQ_BASE:
      case SMMU_PRIQ_BASE + 4:
      case SMMU_PRIQ_PROD:
        if ((cr0 & CR0_PRIQEN) === 0) this.regs.set(o, v);
        return;
      default:
        if (STORED.has(o)) this.regs.set(o, v);
        return;
    }
  }

  private base64(o: number, lsb: number): number {
    const lo = this.reg(o);
    const hi = this.reg(o + 4) & 0xfffff; // ADDR up to bit 51
    return hi * TWO32 + (((lo >>> lsb) << lsb) >>> 0);
  }

  private qLog2(o: number, max: number): number {
    return Math.min(this.reg(o) & 0x1f, max);
  }

  // ---------------------------------------------------------------- interrupts

  private enter(): void {
    this.depth++;
  }

  private leave(): void {
    if (--this.depth !== 0 || this.pendingIrq === 0) return;
    this.deliverInterrupts();
  }

  /** Calls the interrupt handler for every pending line, once the outermost access is done. */
  private deliverInterrupts(): void {
    while (this.depth === 0 && this.pendingIrq !== 0) {
      const p = this.pendingIrq;
      this.pendingIrq = 0;
      const h = this.onInterrupt;
      if (h === undefined) return;
      this.depth++;
      try {
        if (p & 4) h('gerror');
        if (p & 1) h('eventq');
        if (p & 2) h('priq');
      } finally {
        this.depth--;
      }
    }
  }

  private irq(bit: number, enable: number): void {
    if ((this.reg(SMMU_IRQ_CTRL) & enable) !== 0) this.pendingIrq |= bit;
  }

  private toggleGerror(bit: number): void {
    // A global error becomes active when GERROR differs from GERRORN; it is raised only if not already active.
    if (((this.gerror ^ this.reg(SMMU_GERRORN)) & bit) !== 0) return;
    this.gerror ^= bit;
    this.irq(4, IRQ_CTRL_GERROR_IRQEN);
  }

  private gerrorActive(bit: number): boolean {
    return ((this.gerror ^ this.reg(SMMU_GERRORN)) & bit) !== 0;
  }

  // ---------------------------------------------------------------- command queue

  private processCmdq(): void {
    if ((this.cr0 & CR0_CMDQEN) === 0 || this.gerrorActive(GERROR_CMDQ_ERR)) return;
    const log2 = this.qLog2(SMMU_CMDQ_BASE, regField(this.idr.idr1, IDR1.CMDQS));
    const base = this.base64(SMMU_CMDQ_BASE, 5);
    let cons = qPtr(this.reg(SMMU_CMDQ_CONS), log2);
    const limit = 2 << log2;
    for (let n = 0; n < limit; n++) {
      const prod = this.reg(SMMU_CMDQ_PROD);
      if (qEmpty(prod, cons, log2)) break;
      const addr = base + qIndex(cons, log2) * CMDQ_ENT_SIZE;
      let err: number;
      if (!this.memory.contains(addr, CMDQ_ENT_SIZE)) err = CERROR_ABT;
      else {
        for (let i = 0; i < 4; i++) this.cmd[i] = this.memory.read32At(addr + i * 4);
        err = this.execCommand(this.cmd);
      }
      if (err !== 0) {
        // The queue stops at the failing command: CONS points at it, ERR says why.
        this.regs.set(SMMU_CMDQ_CONS, (cons | (err << 24)) >>> 0);
        this.toggleGerror(GERROR_CMDQ_ERR);
        return;
      }
      cons = qInc(cons, log2);
      this.regs.set(SMMU_CMDQ_CONS, cons);
    }
  }

  private execCommand(w: Uint32Array): number {
    this.gen++; // every invalidation (and, harmlessly, every other command) drops the last translation
    const F = CMD_FIELDS;
    const op = getField(w, F.OP);
    const f = this.f;
    if (op >= CMD_CFGI_STE && op <= CMD_CFGI_CD_ALL) this.forgetMemo(); // configuration invalidations
    switch (op) {
      case CMD_PREFETCH_CONFIG:
      case CMD_PREFETCH_ADDR:
        return 0;
      case CMD_CFGI_STE:
        if (getField(w, F.SSec) !== 0) return CERROR_ILL;
        this.invalidateSte(getField(w, F.StreamID));
        return 0;
      case CMD_CFGI_STE_RANGE: {
        if (getField(w, F.SSec) !== 0) return CERROR_ILL;
        const range = getField(w, F.Range);
        if (range === CMD_CFGI_ALL_RANGE) {
          this.steCache.clear();
          this.cdCache.clear();
          return 0;
        }
        const span = 2 ** (range + 1);
        const first = getField(w, F.StreamID) - (getField(w, F.StreamID) % span);
        this.steCache.deleteRange(first, span);
        if (span >= 65536) this.cdCache.clear();
        else for (let sid = first; sid < first + span; sid++) this.cdCache.deleteSid(sid);
        return 0;
      }
      case CMD_CFGI_CD: {
        if (!f.s1p || getField(w, F.SSec) !== 0) return CERROR_ILL;
        this.cdCache.delete(getField(w, F.StreamID), getField(w, F.SubstreamID));
        return 0;
      }
      case CMD_CFGI_CD_ALL: {
        if (!f.s1p) return CERROR_ILL;
        this.cdCache.deleteSid(getField(w, F.StreamID));
        return 0;
      }
      case CMD_TLBI_NH_ALL: {
        if (!f.s1p) return CERROR_ILL;
        const vmid = getField(w, F.VMID);
        this.tlb.invalidateWhere((k, v) => k !== TLB_KIND_S2 && v === vmid);
        return 0;
      }
      case CMD_TLBI_NH_ASID: {
        if (!f.s1p) return CERROR_ILL;
        const vmid = getField(w, F.VMID);
        const asid = getField(w, F.ASID);
        this.tlb.invalidateWhere((k, v, a) => k === TLB_KIND_S1 && v === vmid && a === asid);
        return 0;
      }
      case CMD_TLBI_NH_VA:
      case CMD_TLBI_NH_VAA: {
        if (!f.s1p) return CERROR_ILL;
        const vmid = getField(w, F.VMID);
        const asid = getField(w, F.ASID);
        const all = op === CMD_TLBI_NH_VAA;
        const r = this.tlbiRange(w);
        if (r < 0) return CERROR_ILL;
        this.tlb.invalidateRange(
          (k, v, a) => v === vmid && (k === TLB_KIND_S1_GLOBAL || (k === TLB_KIND_S1 && (all || a === asid))),
          commandAddr(w),
          r,
        );
        return 0;
      }
      case CMD_TLBI_S12_VMALL: {
        if (!f.s2p) return CERROR_ILL;
        const vmid = getField(w, F.VMID);
        this.tlb.invalidateWhere((_k, v) => v === vmid);
        return 0;
      }
      case CMD_TLBI_S2_IPA: {
        if (!f.s2p) return CERROR_ILL;
        const vmid = getField(w, F.VMID);
        const r = this.tlbiRange(w);
        if (r < 0) return CERROR_ILL;
        // Only stage-2 entries: combined (nested) entries need TLBI_S12_VMALL or TLBI_NH_* too.
        this.tlb.invalidateRange((k, v) => k === TLB_KIND_S2 && v === vmid, commandAddr(w) % 2 ** 52, r);
        return 0;
      }
      case CMD_TLBI_NSNH_ALL:
        this.tlb.invalidateAll();
        return 0;
      case CMD_TLBI_EL2_ALL:
      case CMD_TLBI_EL2_ASID:
      case CMD_TLBI_EL2_VA:
      case CMD_TLBI_EL2_VAA:
        // No EL2 StreamWorld entries exist in this model (STRW=EL2 needs IDR0.HYP).
        return f.hyp ? 0 : CERROR_ILL;
      case CMD_ATC_INV:
        // Endpoints here keep no ATC: nothing to invalidate, but the command needs ATS.
        return f.ats ? 0 : CERROR_ILL;
      case CMD_PRI_RESP: {
        if (!f.pri) return CERROR_ILL;
        const resp = getField(w, CMD_PRI_RESP_RESP);
        if (resp === 3) return CERROR_ILL;
        const code = resp === PRI_RESP_DENY ? PRG_RESPONSE_FAILURE : resp === PRI_RESP_FAIL ? PRG_RESPONSE_INVALID_REQUEST : PRG_RESPONSE_SUCCESS;
        this.respond({
          streamId: getField(w, F.StreamID),
          substreamId: getField(w, F.SSV) === 1 ? getField(w, F.SubstreamID) : undefined,
          prgi: getField(w, CMD_FIELDS.PRGI),
          code,
          auto: false,
        });
        return 0;
      }
      case CMD_RESUME: {
        if (f.stallModel === 1) return CERROR_ILL;
        this.resume(getField(w, F.StreamID), getField(w, F.STAG), getField(w, F.Ac) === 1, getField(w, F.Ab) === 1);
        return 0;
      }
      case CMD_STALL_TERM: {
        if (f.stallModel === 1) return CERROR_ILL;
        const sid = getField(w, F.StreamID);
        for (const [stag, s] of [...this.stalls]) if (s.sid === sid) this.resume(sid, stag, false, true);
        return 0;
      }
      case CMD_SYNC: {
        const cs = getField(w, F.CS);
        if (cs === 3) return CERROR_ILL;
        const msiAddr = getAddr(w, 1, 2, 51);
        // CS=SIG_IRQ with an MSI address: the completion is a 32-bit write of MSIData there.
        if (cs === 1 && msiAddr !== 0 && this.memory.contains(msiAddr, 4)) {
          this.memory.write32At(msiAddr, getField(w, F.MSIData));
        }
        return 0;
      }
      default:
        return CERROR_ILL;
    }
  }

  /** Bytes covered by a TLBI by address (range form with IDR3.RIL), or −1 when reserved. */
  private tlbiRange(w: Uint32Array): number {
    const F = CMD_FIELDS;
    const tg = getField(w, F.TG);
    if (!this.f.ril || tg === 0) return 1; // one address: every entry containing it
    const num = getField(w, F.NUM);
    const scale = getField(w, F.SCALE);
    if (num === 0 && scale === 0 && getField(w, F.TTL) === 0) return -1;
    const granule = tg === 1 ? 12 : tg === 2 ? 14 : 16;
    return (num + 1) * POW2[scale + granule]!;
  }

  private invalidateSte(sid: number): void {
    this.steCache.delete(sid);
    // CMD_CFGI_STE also invalidates every CD (and L1CD) cached through that StreamID (§4.3.1).
    this.cdCache.deleteSid(sid);
  }


  // ---------------------------------------------------------------- event and PRI queues

  private recordEvent(e: SmmuEventFields): boolean {
    if ((this.cr0 & CR0_EVENTQEN) === 0 || (this.cr0 & CR0_SMMUEN) === 0 || this.gerrorActive(GERROR_EVTQ_ABT_ERR)) return false;
    const log2 = this.qLog2(SMMU_EVENTQ_BASE, regField(this.idr.idr1, IDR1.EVENTQS));
    const prod = this.reg(SMMU_EVENTQ_PROD);
    const cons = this.reg(SMMU_EVENTQ_CONS);
    if (qFull(prod, cons, log2)) {
      // Overflow: the record is lost; OVFLG toggles unless an overflow is already unacknowledged.
      if (((prod ^ cons) & Q_OVF) === 0) this.regs.set(SMMU_EVENTQ_PROD, (prod ^ Q_OVF) >>> 0);
      this.irq(1, IRQ_CTRL_EVENTQ_IRQEN);
      return false;
    }
    const addr = this.base64(SMMU_EVENTQ_BASE, 5) + qIndex(prod, log2) * EVTQ_ENT_SIZE;
    if (!this.memory.contains(addr, EVTQ_ENT_SIZE)) {
      this.toggleGerror(GERROR_EVTQ_ABT_ERR);
      return false;
    }
    encodeEventWords(e, this.evt);
    for (let i = 0; i < EVT_WORDS; i++) this.memory.write32At(addr + i * 4, this.evt[i]!);
    this.regs.set(SMMU_EVENTQ_PROD, ((prod & Q_OVF) | qInc(prod, log2)) >>> 0);
    this.irq(1, IRQ_CTRL_EVENTQ_IRQEN);
    return true;
  }

  private respond(r: PriResponse): void {
    this.priResponses.push(r);
    if (this.priResponses.length > 1024) this.priResponses.shift();
    this.onPriResponse?.(r);
  }

  /**
   * Delivers a PCIe PRI Page Request: recorded in the PRI queue in memory, or answered
   * automatically when the queue is disabled, in error or overflowing (IHI0070 §8.1, §8.2).
   */
  pageRequest(req: SmmuPageRequest): void {
    this.enter();
    try {
      this.doPageRequest(req);
    } finally {
      this.leave();
    }
  }

  private doPageRequest(req: SmmuPageRequest): void {
    const sid = req.streamId >>> 0;
    const ssv = req.substreamId !== undefined && this.f.ssidBits > 0;
    const prgi = req.prgi & 0x1ff;
    const stop = ssv && req.last && !req.read && !req.write;
    const enabled = (this.cr0 & CR0_SMMUEN) !== 0 && (this.cr0 & CR0_PRIQEN) !== 0 && this.f.pri;
    if (!enabled || this.gerrorActive(GERROR_PRIQ_ABT_ERR)) {
      if (!stop) this.respond({ streamId: sid, substreamId: undefined, prgi, code: PRG_RESPONSE_FAILURE, auto: true });
      return;
    }
    const log2 = this.qLog2(SMMU_PRIQ_BASE, regField(this.idr.idr1, IDR1.PRIQS));
    const prod = this.reg(SMMU_PRIQ_PROD);
    const cons = this.reg(SMMU_PRIQ_CONS);
    const overflowActive = ((prod ^ cons) & Q_OVF) !== 0;
    if (overflowActive || qFull(prod, cons, log2)) {
      if (!overflowActive) this.regs.set(SMMU_PRIQ_PROD, (prod ^ Q_OVF) >>> 0);
      if (req.last && !stop) this.autoRespondOverflow(sid, ssv ? req.substreamId : undefined, prgi);
      this.irq(2, IRQ_CTRL_PRIQ_IRQEN);
      return;
    }
    const addr = this.base64(SMMU_PRIQ_BASE, 5) + qIndex(prod, log2) * PRIQ_ENT_SIZE;
    if (!this.memory.contains(addr, PRIQ_ENT_SIZE)) {
      this.toggleGerror(GERROR_PRIQ_ABT_ERR);
      if (!stop) this.respond({ streamId: sid, substreamId: undefined, prgi, code: PRG_RESPONSE_FAILURE, auto: true });
      return;
    }
    const iova = BigInt.asUintN(64, req.iova);
    encodePriWords(
      {
        StreamID: sid,
        SSV: ssv ? 1 : 0,
        SubstreamID: ssv ? req.substreamId & 0xfffff : 0,
        Priv: ssv && req.priv === true ? 1 : 0,
        X: ssv && req.exec === true ? 1 : 0,
        R: req.read ? 1 : 0,
        W: req.write ? 1 : 0,
        Last: req.last ? 1 : 0,
        PRGIndex: prgi,
        Addr: 0,
      },
      this.pri,
    );
    this.pri[2] = (this.pri[2]! & 0xfff) | (Number(iova & 0xfffff000n) >>> 0);
    this.pri[3] = Number(iova >> 32n) >>> 0;
    for (let i = 0; i < 4; i++) this.memory.write32At(addr + i * 4, this.pri[i]!);
    this.regs.set(SMMU_PRIQ_PROD, ((prod & Q_OVF) | qInc(prod, log2)) >>> 0);
    this.irq(2, IRQ_CTRL_PRIQ_IRQEN);
  }

  private autoRespondOverflow(sid: number, ssid: number | undefined, prgi: number): void {
    // IDR3.PPS decides whether the PASID is echoed; otherwise STE.PPAR, and an STE that cannot
    // be checked gives a Failure without PASID.
    if (ssid === undefined) {
      this.respond({ streamId: sid, substreamId: undefined, prgi, code: PRG_RESPONSE_SUCCESS, auto: true });
      return;
    }
    if (regField(this.idr.idr3, IDR3.PPS) === 1) {
      this.respond({ streamId: sid, substreamId: ssid, prgi, code: PRG_RESPONSE_SUCCESS, auto: true });
      return;
    }
    const sc = this.streamConfig(sid, false);
    this.pending = undefined;
    if (sc === undefined) this.respond({ streamId: sid, substreamId: undefined, prgi, code: PRG_RESPONSE_FAILURE, auto: true });
    else this.respond({ streamId: sid, substreamId: sc.ppar === 1 ? ssid : undefined, prgi, code: PRG_RESPONSE_SUCCESS, auto: true });
  }

  private resume(sid: number, stag: number, retry: boolean, abort: boolean): void {
    const s = this.stalls.get(stag);
    if (s?.sid !== sid) return; // no such stall: ignored
    this.stalls.delete(stag);
    let result: DmaResult;
    if (retry) result = dmaResultOf(s.request, (into) => this.runRequest(s.request, into));
    else if (abort) {
      result = {
        ok: false,
        fault: { class: 'translation', name: 'CMD_RESUME abort', code: 0, iova: s.request.iova, record: { STAG: stag } },
      };
    } else result = { ok: true, data: new Uint8Array(s.request.write ? 0 : s.request.size) };
    this.resumed.set(stag, result);
    if (this.resumed.size > 1024) this.resumed.delete(this.resumed.keys().next().value!);
  }

  // ---------------------------------------------------------------- configuration

  private fault(
    e: SmmuEventFields,
    record: boolean,
    iova: bigint,
    cls: FaultClass = faultClassOf(e.EventID),
    extra?: Record<string, unknown>,
  ): DmaFault {
    const recorded = record && this.recordEvent(e);
    const ev = decodeEventWords(encodeEventWords(e, this.evt));
    return {
      class: cls,
      name: ev.name,
      code: e.EventID,
      iova,
      record: { ...ev, recorded, ...extra },
    };
  }

  private silent(name: string, cls: FaultClass, iova: bigint): DmaFault {
    return { class: cls, name, code: 0, iova, record: { recorded: false } };
  }

  /** The input address of the page being translated (built only when a fault needs it). */
  private get fi(): bigint {
    return BigInt.asUintN(64, this.curIova) + BigInt(this.curOff);
  }

  /** The event record fields of the transaction being translated (built on fault paths only). */
  private ev(EventID: number, S2 = 0, CLASS = 0, TTRnW = 0, Addr = 0): SmmuEventFields {
    return {
      EventID,
      StreamID: this.rqSid,
      SSV: this.rqSsv ? 1 : 0,
      SubstreamID: this.rqSsid,
      PnU: this.rqPriv ? 1 : 0,
      InD: this.rqExec ? 1 : 0,
      RnW: this.rqWrite ? 0 : 1,
      InputAddrHi: this.xHi,
      InputAddrLo: this.xLo,
      S2,
      CLASS,
      TTRnW,
      Addr,
    };
  }

  /** Forgets the last-used configuration (after any change to the STE or CD caches). */
  private forgetMemo(): void {
    this.mSc = undefined;
    this.mCc = undefined;
  }

  /** The StreamConfig of `sid`, from the cache or fetched; undefined with `pending` set on a fault. */
  private streamConfig(sid: number, record: boolean): StreamConfig | undefined {
    this.gen++; // may fill (and evict from) the STE cache
    const cached = this.steCache.get(sid);
    if (cached !== undefined) return cached;
    const mem = this.memory;
    const cfg = this.strtabCfg;
    const log2 = Math.min(cfg & 0x3f, this.f.sidBits);
    const base = this.strtabBase;
    const bad = (id: number, addr: number, rec: boolean): StreamConfig | undefined => {
      const e = this.ev(id, 0, 0, 0, addr);
      this.pending = this.fault(sid === e.StreamID ? e : { ...e, StreamID: sid }, rec, this.fi);
      return undefined;
    };
    const badSid = (): StreamConfig | undefined => bad(C_BAD_STREAMID, 0, record && (this.reg(SMMU_CR2) & CR2_RECINVSID) !== 0);
    if (sid >= SIZE[log2]!) return badSid();
    let steAddr: number;
    if (((cfg >>> 16) & 3) === 1) {
      let split = (cfg >>> 6) & 0x1f;
      if (split !== 6 && split !== 8 && split !== 10) split = 6;
      const l1 = base + (sid >>> split) * 8;
      if (!mem.contains(l1, 8)) return bad(F_STE_FETCH, l1, record);
      const lo = mem.read32At(l1);
      const hi = mem.read32At(l1 + 4);
      const span = lo & 0x1f;
      if (span === 0 || span > 11 || span > split + 1) return badSid();
      const l2idx = sid & ((1 << split) - 1);
      if (l2idx >= 1 << (span - 1)) return badSid();
      // L2Ptr [51:6], aligned down to the level-2 array's size (2^(Span-1) STEs of 64 bytes).
      steAddr = (hi & 0xfffff) * TWO32 + ((lo & ~((1 << (span + 5)) - 1)) >>> 0) + l2idx * 64;
    } else steAddr = base + sid * 64;
    if (!mem.contains(steAddr, 64)) return bad(F_STE_FETCH, steAddr, record);
    // Qwords 0-3 hold every field the model decodes.
    for (let i = 0; i < 8; i++) this.words16[i] = mem.read32At(steAddr + i * 4);
    const sc = decodeStreamConfig(this.words16, this.f);
    if (sc === undefined) return bad(C_BAD_STE, 0, record);
    this.steCache.set(sid, sc);
    return sc;
  }

  /** Stage-2 translation of a configuration-structure IPA (nested CD fetch). */
  private s2Fetch(sc: StreamConfig, ipa: number): number {
    const o = this.walker.walk(sc.s2p!, ipa, PERM_R_PRIV | PERM_R_USER, this.w2);
    if (o.fault === 0 && (o.perms & (PERM_R_PRIV | PERM_R_USER)) === 0) o.fault = F_PERMISSION;
    if (o.fault !== 0) {
      if (o.fault === F_WALK_EABT) this.pending = this.fault(this.ev(F_WALK_EABT, 0, 0, 0, o.fetchAddr), true, this.fi);
      else this.pending = this.fault(this.ev(o.fault, 1, EVT_CLASS_CD, 1, ipa), sc.s2r, this.fi);
      return -1;
    }
    return o.oa + ((ipa >>> 0) & (SIZE[o.shift]! - 1));
  }

  private contextConfig(sid: number, sc: StreamConfig, idx: number): ContextConfig | undefined {
    const cached = this.cdCache.get(sid, idx);
    if (cached !== undefined) return cached;
    const mem = this.memory;
    const ptr = sc.s1ContextPtr;
    let cdAddr: number;
    if (sc.cdMax === 0 || sc.s1Fmt === 0) cdAddr = ptr + idx * 64;
    else {
      const leafBits = sc.s1Fmt === 1 ? 6 : 10;
      let l1 = ptr + (idx >>> leafBits) * 8;
      if (sc.s2) {
        l1 = this.s2Fetch(sc, l1);
        if (l1 < 0) return undefined;
      }
      if (!mem.contains(l1, 8)) {
        this.pending = this.fault(this.ev(F_CD_FETCH, 0, 0, 0, l1), true, this.fi);
        return undefined;
      }
      const lo = mem.read32At(l1);
      const hi = mem.read32At(l1 + 4);
      if ((lo & 1) === 0) {
        this.pending = this.fault(this.ev(C_BAD_SUBSTREAMID), true, this.fi);
        return undefined;
      }
      // L2Ptr [51:12]; [15:12] are RES0 for 64 KB leaves.
      const l2 = (hi & 0xfffff) * TWO32 + ((lo & (leafBits === 10 ? 0xffff0000 : 0xfffff000)) >>> 0);
      cdAddr = l2 + (idx & ((1 << leafBits) - 1)) * 64;
    }
    if (sc.s2) {
      cdAddr = this.s2Fetch(sc, cdAddr);
      if (cdAddr < 0) return undefined;
    }
    if (!mem.contains(cdAddr, 64)) {
      this.pending = this.fault(this.ev(F_CD_FETCH, 0, 0, 0, cdAddr), true, this.fi);
      return undefined;
    }
    // Qwords 0-2 hold every field the model decodes (MAIR and the rest do not change a translation).
    for (let i = 0; i < 6; i++) this.words16[i] = mem.read32At(cdAddr + i * 4);
    const cc = decodeContextConfig(this.words16, this.f, sc.s1StallD);
    if (cc === undefined) {
      this.pending = this.fault(this.ev(C_BAD_CD), true, this.fi);
      return undefined;
    }
    this.cdCache.set(sid, idx, cc);
    return cc;
  }

  // ---------------------------------------------------------------- translation

  /** The transaction being translated, as an object (built for a stall only). */
  private request(): SmmuDmaRequest {
    if (this.rqReq !== undefined) return this.rqReq;
    return {
      streamId: this.rqSid,
      ...(this.rqSsv ? { substreamId: this.rqSsid } : {}),
      iova: BigInt.asUintN(64, this.curIova),
      size: this.rqSize,
      write: this.rqWrite,
      ...(this.rqData === undefined ? {} : { data: this.rqData }),
      exec: this.rqExec,
      priv: this.rqPriv,
      ats: this.rqAts,
    };
  }

  /**
   * A translation-related fault at stage 1 (CD.A/R/S) or stage 2 (STE.S2R/S2S, A=1): recorded,
   * stalled, aborted or completed RAZ/WI as IHI0070 §5.5 says. Returns undefined for RAZ/WI.
   */
  private translationFault(e: SmmuEventFields, stall: boolean, recordBit: boolean, abort: boolean): DmaFault | undefined {
    const iova = this.fi;
    if (this.rqAts) {
      // ATS Translation Request: the failure goes back to the endpoint, no event.
      return this.fault(e, false, iova, faultClassOf(e.EventID), { ats: true });
    }
    if (stall && this.stalls.size < Math.max(1, regField(this.idr.idr5, IDR5.STALL_MAX))) {
      const stag = this.nextStag;
      this.nextStag = (this.nextStag % 0xffff) + 1;
      const recorded = this.recordEvent({ ...e, Stall: 1, STAG: stag });
      if (recorded) {
        this.stalls.set(stag, { sid: this.rqSid, request: this.request() });
        const ev = decodeEventWords(encodeEventWords({ ...e, Stall: 1, STAG: stag }, this.evt));
        return { class: 'page-request', name: ev.name, code: e.EventID, iova, record: { ...ev, recorded } };
      }
      // A stall that cannot be recorded is terminated.
      return this.fault(e, false, iova);
    }
    if (!abort) {
      if (recordBit) this.recordEvent(e);
      this.xlRaz = true;
      return undefined;
    }
    return this.fault(e, recordBit, iova);
  }

  /** A stage-2 translation fault (STE.S2S/S2R, always aborting). */
  private s2Fault(id: number, cls: number, addr: number, ttrnw = 0): DmaFault | undefined {
    const sc = this.mSc!;
    return this.translationFault(this.ev(id, 1, cls, ttrnw, addr), sc.s2s, sc.s2r, true);
  }

  /** A stage-1 translation fault (CD.S/R/A). */
  private s1Fault(id: number, cc: ContextConfig): DmaFault | undefined {
    return this.translationFault(this.ev(id, 0, EVT_CLASS_IN), cc.s, cc.r || cc.s, cc.a);
  }

  /**
   * Translates the input address `hi:lo` of the transaction described by the `rq*` fields; on
   * success sets xlPa/xlLimit/xlRaz and returns undefined, on a fault returns it (recorded as
   * the architecture says). The hit path allocates nothing.
   */
  private translate(hi: number, lo: number): DmaFault | undefined {
    // The TLB and the configuration caches may change below (fills, evictions, HTTU): the
    // last-translation cache no longer mirrors them.
    this.gen++;
    this.xlRaz = false;
    this.xHi = hi;
    this.xLo = lo;
    const f = this.f;
    const need = this.rqNeed;
    const cr0 = this.cr0v;
    if ((cr0 & CR0_SMMUEN) === 0) {
      if ((this.reg(SMMU_GBPA) & GBPA_ABORT) !== 0) return this.silent('GBPA.ABORT', 'blocked', this.fi);
      // Global bypass: an address above OAS is aborted with no event.
      if (hi >= this.oasHiLimit) return this.silent('GBPA bypass beyond OAS', 'address-size', this.fi);
      this.xlPa = hi * TWO32 + lo;
      this.xlLimit = 4096 - (lo & 0xfff);
      this.xlShift = 12;
      this.xlPerms = PERM_ALL;
      return undefined;
    }
    const sid = this.rqSid;
    const ssv = this.rqSsv;
    const ssid = this.rqSsid;
    let sc = this.mSc;
    if (sc === undefined || this.mSid !== sid) {
      sc = this.streamConfig(sid, true);
      if (sc === undefined) return this.pending;
      this.mSc = sc;
      this.mSid = sid;
      this.mCc = undefined;
    }
    if (!sc.s1 && !sc.s2) {
      if (sc.config < 4) return this.silent('STE.Config abort', 'blocked', this.fi); // no event (§5.2)
      if (ssv) return this.fault(this.ev(C_BAD_SUBSTREAMID), true, this.fi);
      if (this.rqAts) return this.fault(this.ev(F_BAD_ATS_TREQ), true, this.fi);
      if (hi >= this.oasHiLimit) return this.fault(this.ev(F_ADDR_SIZE, 0, EVT_CLASS_IN), true, this.fi);
      this.xlPa = hi * TWO32 + lo;
      this.xlLimit = 4096 - (lo & 0xfff);
      this.xlShift = 12;
      this.xlPerms = PERM_ALL;
      return undefined;
    }
    if (this.rqAts && sc.eats === 0) return this.fault(this.ev(F_BAD_ATS_TREQ), true, this.fi);
    let s1 = sc.s1;
    let cdIdx = 0;
    if (sc.s1) {
      if (ssv) {
        if (f.ssidBits === 0 || sc.cdMax === 0 || ssid >= SIZE[sc.cdMax]!) return this.fault(this.ev(C_BAD_SUBSTREAMID), true, this.fi);
        if (ssid === 0 && sc.s1dss === STE_S1DSS_SSID0) return this.fault(this.ev(F_STREAM_DISABLED), true, this.fi);
        cdIdx = ssid;
      } else if (sc.cdMax > 0) {
        if (sc.s1dss === STE_S1DSS_BYPASS) s1 = false;
        else if (sc.s1dss !== STE_S1DSS_SSID0) return this.fault(this.ev(F_STREAM_DISABLED), true, this.fi);
      }
    } else if (ssv) return this.fault(this.ev(C_BAD_SUBSTREAMID), true, this.fi);

    const tlb = this.tlb;
    if (!s1) {
      if (!sc.s2) {
        // Stage 1 bypassed by S1DSS and no stage 2: the output is the input.
        if (hi >= this.oasHiLimit) return this.fault(this.ev(F_ADDR_SIZE, 0, EVT_CLASS_IN), true, this.fi);
        this.xlPa = hi * TWO32 + lo;
        this.xlLimit = 4096 - (lo & 0xfff);
        this.xlShift = 12;
        this.xlPerms = PERM_ALL;
        return undefined;
      }
      const s2p = sc.s2p!;
      if (s2p.inputBits >= 32 ? hi >= s2p.inHiLimit : hi !== 0) return this.s2Fault(F_TRANSLATION, EVT_CLASS_IN, 0);
      let c = sc.s2Ctx;
      if (c === undefined) c = sc.s2Ctx = tlb.context(TLB_KIND_S2, sc.vmid, 0);
      let i = tlb.lookup(c, hi, lo, 0);
      let pa: number;
      let shift: number;
      let perms: number;
      if (i >= 0) {
        perms = tlb.permsAt(i);
        if ((perms & need) === 0 && (perms & PERM_W_DBM) !== 0) i = -1; // a write to a clean DBM page re-walks
      }
      if (i < 0) {
        const o = this.walker.walkHL(s2p, hi, lo, need, this.w1);
        if (o.fault !== 0) {
          if (o.fault === F_WALK_EABT) return this.fault(this.ev(F_WALK_EABT, 0, 0, 0, o.fetchAddr), true, this.fi);
          return this.s2Fault(o.fault, EVT_CLASS_IN, (hi * TWO32 + lo) - (lo & 0xfff));
        }
        pa = o.oa;
        shift = o.shift;
        perms = o.perms;
        tlb.insert(c, hi, lo, 0, shift, pa, perms);
      } else {
        pa = tlb.pa(i);
        shift = tlb.shiftAt(i);
        perms = tlb.permsAt(i);
      }
      if ((perms & need) === 0) return this.s2Fault(F_PERMISSION, EVT_CLASS_IN, (hi * TWO32 + lo) - (lo & 0xfff));
      const off = (lo & (SIZE[shift]! - 1)) >>> 0;
      this.xlPa = pa + off;
      this.xlLimit = SIZE[shift]! - off;
      this.xlShift = shift;
      this.xlPerms = perms;
      return undefined;
    }

    let cc = this.mCc;
    if (cc === undefined || this.mCcIdx !== cdIdx) {
      cc = this.contextConfig(sid, sc, cdIdx);
      if (cc === undefined) return this.pending;
      this.mCc = cc;
      this.mCcIdx = cdIdx;
    }
    // TTB0 or TTB1 by the top bit (bit 55 with TBI), the rest of the top bits must match it.
    const tbi = cc.tbi0 || cc.tbi1;
    const upper = (tbi ? (hi >>> 23) & 1 : hi >>> 31) === 1;
    const tt = upper ? cc.tt1 : cc.tt0;
    if (tt === undefined) return this.s1Fault(F_TRANSLATION, cc); // EPD0/EPD1
    const topHi = (hi & tt.topHiMask) >>> 0;
    const topLo = (lo & tt.topLoMask) >>> 0;
    if (upper ? topHi !== tt.topHiMask || topLo !== tt.topLoMask : (topHi | topLo) !== 0) return this.s1Fault(F_TRANSLATION, cc);
    const vhi = (hi & tt.keepHiMask) >>> 0;
    const vlo = (lo & tt.keepLoMask) >>> 0;
    const region = upper ? 1 : 0;
    let c = cc.ctx;
    if (c === undefined || cc.ctxVmid !== sc.vmid) {
      c = cc.ctx = tlb.context(TLB_KIND_S1, sc.vmid, cc.asid);
      cc.ctxVmid = sc.vmid;
    }
    let i = tlb.lookup(c, vhi, vlo, region);
    if (i < 0) {
      let g = sc.globalCtx;
      if (g === undefined) g = sc.globalCtx = tlb.context(TLB_KIND_S1_GLOBAL, sc.vmid, 0);
      if (g.shifts !== 0) i = tlb.lookup(g, vhi, vlo, region);
    }
    let pa: number;
    let shift: number;
    let perms: number;
    if (i >= 0) {
      perms = tlb.permsAt(i);
      if ((perms & need) === 0 && (perms & PERM_W_DBM) !== 0) i = -1; // a write to a clean DBM page re-walks
    }
    if (i < 0) {
      const o = this.walker.walkHL(tt, vhi, vlo, need, this.w1, sc.s2 ? sc.s2p : undefined);
      if (o.fault !== 0) {
        if (o.fault === F_WALK_EABT) return this.fault(this.ev(F_WALK_EABT, 0, 0, 0, o.fetchAddr), true, this.fi);
        if (o.s2) return this.s2Fault(o.fault, o.cls, o.ipa, 1);
        return this.s1Fault(o.fault, cc);
      }
      const global = o.global;
      pa = o.oa;
      shift = o.shift;
      perms = o.perms;
      if (sc.s2) {
        const ipa = o.oa + ((vlo & (SIZE[shift]! - 1)) >>> 0);
        if ((perms & need) === 0) return this.s1Fault(F_PERMISSION, cc);
        const o2 = this.walker.walk(sc.s2p!, ipa, need, this.w2);
        if (o2.fault !== 0) {
          if (o2.fault === F_WALK_EABT) return this.fault(this.ev(F_WALK_EABT, 0, 0, 0, o2.fetchAddr), true, this.fi);
          return this.s2Fault(o2.fault, EVT_CLASS_IN, ipa - ((ipa >>> 0) & 0xfff));
        }
        if ((o2.perms & need) === 0) return this.s2Fault(F_PERMISSION, EVT_CLASS_IN, ipa - ((ipa >>> 0) & 0xfff));
        // The combined entry covers the smaller of the two leaves.
        shift = Math.min(o.shift, o2.shift);
        const ipaBase = ipa - ((ipa >>> 0) & (SIZE[shift]! - 1));
        pa = o2.oa + ((ipaBase >>> 0) & (SIZE[o2.shift]! - 1));
        const s1p = perms;
        perms = s1p & o2.perms & ~PERM_W_DBM;
        const wr = PERM_W_PRIV | PERM_W_USER;
        if ((perms & wr) === 0 && (s1p & (wr | PERM_W_DBM)) !== 0 && (o2.perms & (wr | PERM_W_DBM)) !== 0) perms |= PERM_W_DBM;
      }
      let ctx = c;
      if (global) {
        ctx = sc.globalCtx ?? tlb.context(TLB_KIND_S1_GLOBAL, sc.vmid, 0);
        sc.globalCtx = ctx;
      }
      tlb.insert(ctx, vhi, vlo, region, shift, pa, perms);
    } else {
      pa = tlb.pa(i);
      shift = tlb.shiftAt(i);
      perms = tlb.permsAt(i);
    }
    if ((perms & need) === 0) return this.s1Fault(F_PERMISSION, cc);
    const off = (vlo & (SIZE[shift]! - 1)) >>> 0;
    this.xlPa = pa + off;
    this.xlLimit = SIZE[shift]! - off;
    this.xlShift = shift;
    this.xlPerms = perms;
    return undefined;
  }

  // ---------------------------------------------------------------- DMA

  /**
   * A DMA from an endpoint: translated page by page, then performed on memory. Returns the data
   * read (or an empty array for a write), or the fault (also written to the event queue when the
   * architecture records it). The allocating form of {@link dmaInto}.
   */
  dma(req: SmmuDmaRequest): DmaResult {
    return dmaResultOf(req, (into) => this.dmaInto(req, into));
  }

  /**
   * A DMA from an endpoint that allocates nothing when it succeeds: a read's bytes land in
   * `into[0 … size)` (`into` must hold them: a shorter one is a RangeError before anything is
   * issued), a write takes `req.data` and does not use `into`. Returns undefined on success or
   * the fault — the same outcome, bytes and event record as {@link dma}.
   */
  dmaInto(req: SmmuDmaRequest, into: Uint8Array): DmaFault | undefined {
    this.enter();
    try {
      return this.runRequest(req, into);
    } finally {
      this.leave();
    }
  }

  /**
   * The endpoint side of a DMA as system.ts routes it: StreamID, the platform's request (its
   * `pasid` is the SubstreamID) and whether the endpoint translates through ATS. Same as
   * {@link dma}, without building a request object. The allocating form of
   * {@link endpointDmaInto}.
   */
  endpointDma(streamId: number, req: DmaRequest, ats: boolean): DmaResult {
    return dmaResultOf(req, (into) => this.endpointDmaInto(streamId, req, ats, into));
  }

  /**
   * {@link endpointDma} without allocating on success: a read's bytes land in `into[0 … size)`.
   * Returns undefined on success or the fault. Nothing is allocated on the success path: the
   * input address is split into its two 32-bit halves through a scratch `BigUint64Array`.
   */
  endpointDmaInto(streamId: number, req: DmaRequest, ats: boolean, into: Uint8Array): DmaFault | undefined {
    this.enter();
    try {
      this.rqReq = undefined;
      return this.run(streamId >>> 0, req.pasid, req.iova, req.size, req.write, req.data, req.exec === true, req.priv === true, ats, into);
    } finally {
      this.leave();
    }
  }

  /** Runs `req` (a stalled transaction is kept as this very object). */
  private runRequest(req: SmmuDmaRequest, into: Uint8Array): DmaFault | undefined {
    this.rqReq = req;
    return this.run(req.streamId >>> 0, req.substreamId, req.iova, req.size, req.write, req.data, req.exec === true, req.priv === true, req.ats === true, into);
  }

  private run(
    sid: number, substreamId: number | undefined, iova: bigint, reqSize: number, write: boolean, data: Uint8Array | undefined,
    exec: boolean, priv: boolean, ats: boolean, into: Uint8Array,
  ): DmaFault | undefined {
    let size: number;
    if (write) size = data === undefined ? 0 : data.length;
    else {
      // As core's dmaReadSize: rounded down, and a negative or non-numeric size reads nothing.
      size = Math.floor(reqSize);
      if (!(size > 0)) size = 0;
      else if (into.length < size) throw new RangeError(`a ${String(size)}-byte read needs a buffer of at least ${String(size)} bytes`);
    }
    const need = priv ? (exec ? PERM_X_PRIV : write ? PERM_W_PRIV : PERM_R_PRIV) : exec ? PERM_X_USER : write ? PERM_W_USER : PERM_R_USER;
    const ssid = substreamId === undefined ? -1 : substreamId & 0xfffff;
    // The input address modulo 2^64 as two 32-bit halves: one typed-array store, no BigInt
    // arithmetic and no Number(bigint) (which costs more than the whole IOTLB lookup).
    this.iova64[0] = iova;
    const lo = this.iova32[0]!;
    const hi = this.iova32[1]!;
    if (
      this.ltGen === this.gen && hi === this.ltHi && ((lo ^ this.ltLo) & ~this.ltOffMask) === 0 && sid === this.ltSid &&
      ssid === this.ltSsid && ats === this.ltAts && (this.ltPerms & need) !== 0
    ) {
      // The leaf of the last translation (it lies in memory whole), and the transfer stays in it.
      const off = lo & this.ltOffMask;
      if (size <= this.ltOffMask + 1 - off) {
        if (size !== 0) {
          if (write) this.memory.writeFrom(this.ltPa + off, data!, 0, size);
          else this.readData(this.ltPa + off, into, 0, size);
        }
        return undefined;
      }
    }
    this.rqSid = sid;
    this.rqSsv = ssid >= 0;
    this.rqSsid = ssid >= 0 ? ssid : 0;
    this.rqWrite = write;
    this.rqExec = exec;
    this.rqPriv = priv;
    this.rqAts = ats;
    this.rqSize = reqSize;
    this.rqData = data;
    this.rqNeed = need;
    this.curIova = iova;
    this.curOff = 0;
    const fault = this.translate(hi, lo);
    if (fault !== undefined) return fault;
    if (!this.xlRaz && this.xlLimit >= size) {
      // The whole transfer lies in one translation (the common case).
      const pa = this.xlPa;
      const mem = this.memory;
      const offMask = SIZE[this.xlShift]! - 1;
      const base = pa - (lo & offMask); // every success path adds the input's offset in the leaf
      if (this.xlShift <= 30 && mem.contains(base, offMask + 1)) {
        // Remember the leaf (only one that lies in memory whole: a hit needs no bounds check).
        this.ltGen = this.gen;
        this.ltSid = sid;
        this.ltSsid = ssid;
        this.ltAts = ats;
        this.ltPerms = this.xlPerms;
        this.ltHi = hi;
        this.ltLo = lo;
        this.ltOffMask = offMask;
        this.ltPa = base;
      }
      if (size === 0) return undefined;
      if (!mem.contains(pa, size)) return this.externalAbort();
      if (write) mem.writeFrom(pa, data!, 0, size);
      else this.readData(pa, into, 0, size);
      return undefined;
    }
    return this.runPages(hi, lo, size, write, data, into);
  }

  /**
   * Copies `n` bytes of memory at `pa` (inside memory) into `out[offset…]`. A small read inside
   * one frame takes the bytes from the frame's words (a frame never written reads as zero).
   */
  private readData(pa: number, out: Uint8Array, offset: number, n: number): void {
    const off = (pa >>> 0) & 0xfff;
    if (n > 16 || off + n > 4096) {
      this.memory.readInto(pa, out, offset, n);
      return;
    }
    // pa / 4096 as a multiplication by its exact reciprocal: no division.
    copyFrameBytes(this.memory.frameWords(Math.floor(pa * INV_PAGE)), off, out, offset, n);
  }

  /**
   * A transfer spanning several translations: every page is translated before any byte moves
   * (the pieces are kept in scratch arrays the model reuses). A RAZ piece reads as zeros.
   */
  private runPages(hi: number, lo: number, size: number, write: boolean, data: Uint8Array | undefined, into: Uint8Array): DmaFault | undefined {
    let count = 0;
    let done = 0;
    for (;;) {
      // A RAZ/WI termination covers the rest of the 4 KB page; every step makes progress.
      const limit = this.xlRaz ? 4096 - (lo & 0xfff) : this.xlLimit;
      const n = size === 0 ? 0 : Math.max(1, Math.min(limit, size - done));
      if (!this.xlRaz && n > 0 && !this.memory.contains(this.xlPa, n)) return this.externalAbort();
      if (count === this.piecePa.length) this.growPieces();
      this.piecePa[count] = this.xlRaz ? -1 : this.xlPa;
      this.pieceLen[count] = n;
      count++;
      done += n;
      if (done >= size) break;
      this.curOff = done;
      lo += n;
      if (lo >= TWO32) {
        lo -= TWO32;
        hi = (hi + 1) >>> 0;
      }
      const fault = this.translate(hi, lo);
      if (fault !== undefined) return fault;
    }
    let off = 0;
    for (let i = 0; i < count; i++) {
      const pa = this.piecePa[i]!;
      const n = this.pieceLen[i]!;
      if (n > 0) {
        if (write) {
          if (pa >= 0) this.memory.writeFrom(pa, data!, off, n);
        } else if (pa >= 0) this.readData(pa, into, off, n);
        else into.fill(0, off, off + n);
      }
      off += n;
    }
    return undefined;
  }

  /** Doubles the scratch arrays of {@link runPages} (a transfer of more pieces than ever before). */
  private growPieces(): void {
    const pa = new Float64Array(this.piecePa.length * 2);
    const len = new Float64Array(this.pieceLen.length * 2);
    pa.set(this.piecePa);
    len.set(this.pieceLen);
    this.piecePa = pa;
    this.pieceLen = len;
  }

  private externalAbort(): DmaFault {
    return { class: 'external-abort', name: 'EXTERNAL_ABORT', code: 0, iova: this.fi, record: { pa: this.xlPa } };
  }
}

/** Re-exported for tests that check the event names. */
export { EVENT_NAMES };
