/**
 * The VT-d remapping hardware unit: the MMIO register file with its command protocols, the
 * translation of DMA requests through root/context/PASID structures and page tables (legacy
 * and scalable mode), the context/PASID/IOTLB/paging-structure caches, register-based and
 * queued invalidation, fault recording and page requests. It reads and writes only physical
 * memory and its registers, never throws at a DMA, and returns synchronously.
 */

import { IoasidError, type DmaFault, type DmaRequest, type DmaResult, type PhysicalMemoryLike } from '@ioasid/uapi';
import * as core from '@ioasid/core';
import * as registers from '../spec/registers.js';
import { DEFAULT_CAP, DEFAULT_ECAP, DEFAULT_VER } from '../spec/defaults.js';
import * as fields from '../spec/fields.js';
import * as faults from '../spec/faults.js';
import { faultClass, faultIsQualified, faultReasonName, legacyFaultReason } from '../spec/faults.js';
import * as rootEntry from '../spec/root-entry.js';
import * as contextEntry from '../spec/context-entry.js';
import type { ScalableContextEntry } from '../spec/context-entry.js';
import * as pasidEntry from '../spec/pasid-entry.js';
import * as firstStage from '../spec/first-stage.js';
import * as invalidation from '../spec/invalidation.js';
import { Capabilities } from './capabilities.js';
import { CacheEpoch } from './cache-epoch.js';
import { ContextCache, type CachedContext } from './context-cache.js';
import { FaultRecorder } from './fault-recorder.js';
import * as iotlbBits from './iotlb.js';
import { Iotlb } from './iotlb.js';
import { PageRequestQueue, type PageRequestRecord } from './page-request-queue.js';
import { PageWalker } from './page-walker.js';
import { PagingStructureCache } from './paging-structure-cache.js';
import { PasidCache } from './pasid-cache.js';
import { RegisterFile } from './register-file.js';
import * as tags from './tags.js';
import type { TranslationConfig } from './translation-config.js';

// The imported names the DMA path, the register writes and the invalidation queue use, bound
// once as module-local constants. Natively an import binding costs no more than a local; under a
// module runner that implements live bindings as getters (vitest's, which runs the tests and the
// benchmarks) every read would be a call — about half the cost of an IOTLB hit, and a call per
// `case` a register write's switch tries.
const { entryAddress, TWO32 } = fields;
const { copyFrameBytes, dmaResultOf } = core;
const { SM_FAULT } = faults;
const { legacyRootEntryReserved, scalableRootHalfReserved } = rootEntry;
const {
  CONTEXT_TT_DEV_IOTLB,
  CONTEXT_TT_PASS_THROUGH,
  decodeLegacyContextEntry,
  decodeScalableContextEntry,
  legacyContextEntryReserved,
  pdtsMaxPasid,
  scalableContextEntryReserved,
} = contextEntry;
const {
  PGTT_FIRST_STAGE,
  PGTT_NESTED,
  PGTT_PASS_THROUGH,
  PGTT_SECOND_STAGE,
  pasidDirEntryReserved,
  pasidEntryReserved,
} = pasidEntry;
const { fsCanonical } = firstStage;
const { PERM_DIRTY, PERM_U, PERM_W, PERM_XD } = iotlbBits;
const { PAGES_PER_SIZE, cacheTag } = tags;
const {
  CCMD_REG,
  ECAP_REG,
  ECTL_IM,
  ECTL_IP,
  FECTL_REG,
  FEADDR_REG,
  FEDATA_REG,
  FEUADDR_REG,
  FRCD_REG_SIZE,
  FSTS_ICE,
  FSTS_IQE,
  FSTS_ITE,
  FSTS_PFO,
  FSTS_PPF,
  FSTS_PRO,
  FSTS_REG,
  GCMD_QIE,
  GCMD_SRTP,
  GCMD_TE,
  GCMD_REG,
  GSTS_QIES,
  GSTS_RTPS,
  GSTS_TES,
  GSTS_REG,
  ICS_IWC,
  ICS_REG,
  IECTL_REG,
  IEADDR_REG,
  IEDATA_REG,
  IEUADDR_REG,
  IQA_DW,
  IQA_REG,
  IQEI_INVALID_DESCRIPTOR,
  IQEI_INVALID_QUEUE,
  IQEI_TAIL_MISALIGNED,
  IQER_REG,
  IQH_REG,
  IQT_REG,
  IOTLB_REG_OFFSET,
  IVA_REG_OFFSET,
  PECTL_REG,
  PEADDR_REG,
  PEDATA_REG,
  PEUADDR_REG,
  PQA_REG,
  PQH_REG,
  PRS_REG,
  RTADDR_REG,
  TTM_LEGACY,
  TTM_SCALABLE,
  VER_REG,
  CAP_REG,
} = registers;
const {
  QI_CC_TYPE,
  QI_DEIOTLB_TYPE,
  QI_DIOTLB_TYPE,
  QI_EIOTLB_TYPE,
  QI_IEC_TYPE,
  QI_IOTLB_TYPE,
  QI_IWD_TYPE,
  QI_PC_TYPE,
  QI_PGRP_RESP_TYPE,
  QI_RESERVED,
  descriptorType,
} = invalidation;

/** Which fault reason codes the model reports. */
export type VtdProfile =
  /** The specification's scalable-mode codes (0x30–0x91) in scalable mode. */
  | 'spec'
  /** QEMU's behaviour: legacy codes for root/context/second-stage faults even in scalable mode, per-SID fault compression. */
  | 'qemu';

/** An interrupt the unit signals (as an MSI would). */
export type VtdInterrupt = 'fault' | 'page-request' | 'invalidation';

/** Options of {@link VtdHardware}. */
export interface VtdHardwareOptions {
  /** Physical memory the unit reads tables from and DMAs into. */
  readonly memory: PhysicalMemoryLike;
  /** CAP_REG (default {@link DEFAULT_CAP}). */
  readonly cap?: bigint;
  /** ECAP_REG (default {@link DEFAULT_ECAP}). */
  readonly ecap?: bigint;
  /** Fault-code profile (default 'spec'). */
  readonly profile?: VtdProfile;
  /** IOTLB entries (default 1024, QEMU's `VTD_IOTLB_MAX_SIZE`). */
  readonly iotlbSize?: number;
  /** Called when the unit signals an interrupt (the fault, page-request or invalidation-completion event). */
  readonly onInterrupt?: (source: VtdInterrupt) => void;
}

/** A DMA request as an endpoint puts it on the bus. */
export interface VtdDmaRequest {
  /** Requester id (bus << 8 | devfn). */
  readonly sourceId: number;
  /** PASID prefix, if any. */
  readonly pasid?: number;
  /** The address. */
  readonly iova: bigint;
  /** Bytes to read (ignored for writes). */
  readonly size: number;
  /** Write (true) or read. */
  readonly write: boolean;
  /** Data to write. */
  readonly data?: Uint8Array;
  /** Execute requested (with PASID). */
  readonly exec?: boolean;
  /** Privileged-mode requested (with PASID). */
  readonly priv?: boolean;
}

/** MMIO access to the register file. Offsets are numbers; 32-bit values numbers, 64-bit values bigints. */
export interface VtdMmio {
  /** Reads a 32-bit register. */
  read32(offset: number): number;
  /** Writes a 32-bit register. */
  write32(offset: number, value: number): void;
  /** Reads a 64-bit register. */
  read64(offset: number): bigint;
  /** Writes a 64-bit register (low dword first). */
  write64(offset: number, value: bigint): void;
}

/** Counters of what the unit did (for tests and reports). */
export interface VtdStats {
  /** IOTLB hits. */
  iotlbHits: number;
  /** IOTLB misses (walks). */
  iotlbMisses: number;
  /** Invalidation descriptors processed. */
  descriptors: number;
  /** Device-TLB / interrupt-entry-cache descriptors accepted (no device-TLB or IR cache is modelled). */
  forwardedDescriptors: number;
  /** Interrupt messages (writes without PASID to 0xFEEx_xxxx) seen. */
  interruptMessages: number;
}

/** 2^k for k = 0 … 64 (a table: `2 **` with a variable exponent is a slow pow() call). */
const POW2 = Array.from({ length: 65 }, (_, k) => 2 ** k);
/** Index of the low dword of a 64-bit word viewed as two Uint32Array elements (platform byte order). */
const LO_WORD = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1 ? 0 : 1;
const MSI_BASE = 0xfee00000;
/** Reads up to this many bytes straight from a frame's words (larger ones through `readInto`). */
const SMALL_COPY = 64;
const MSI_END = 0xfef00000;
const RECOVERABLE = new Set([0x71, 0x79, 0x81, 0x82, 0x85, 0x86, 0x75, 0x76]);
/** The words a frame never written reads as (all zero; only ever read). */
const ZERO_FRAME = new Uint32Array(1024);

/**
 * The index in its frame's words of the dword at the 4-byte aligned address `addr`
 * (`& 0xfff` keeps the offset exactly for any address below 2^53: ToInt32 wraps modulo 2^32).
 */
function wordIndex(addr: number): number {
  return (addr & 0xfff) >>> 2;
}

/** One VT-d remapping hardware unit. */
export class VtdHardware {
  /** The register interface. */
  readonly mmio: VtdMmio;
  /** Decoded capabilities. */
  readonly caps: Capabilities;
  /** The fault-code profile. */
  readonly profile: VtdProfile;
  /** Activity counters. */
  readonly stats: VtdStats = { iotlbHits: 0, iotlbMisses: 0, descriptors: 0, forwardedDescriptors: 0, interruptMessages: 0 };
  /** The interrupt line (assignable after construction). */
  onInterrupt: ((source: VtdInterrupt) => void) | undefined;

  private readonly memory: PhysicalMemoryLike;
  private readonly regs: RegisterFile;
  private readonly iotlb: Iotlb;
  private readonly psc = new PagingStructureCache();
  /** Bumped by every change of the context or PASID cache (see {@link CacheEpoch}). */
  private readonly configEpoch = new CacheEpoch();
  private readonly contextCache = new ContextCache(256, this.configEpoch);
  private readonly pasidCache = new PasidCache(1024, this.configEpoch);
  private readonly walker: PageWalker;
  private readonly faults: FaultRecorder;
  private readonly prq: PageRequestQueue;
  private readonly scratch = new Uint32Array(16);
  /** The decoded legacy context entry a fetch works in (refilled per fetch; the cache keeps what it needs). */
  private readonly legacyEntry = decodeLegacyContextEntry(new Uint32Array(4));
  private readonly iovaSplit = new BigUint64Array(1);
  private readonly iovaWords = new Uint32Array(this.iovaSplit.buffer);
  /** (address, length) pairs of a multi-page write, moved once every page translated. */
  private deferred = new Float64Array(16);
  /** 4 KiB pages below the host address width (pass-through output limit). */
  private readonly hawPages: number;
  private rootTable = 0;
  private ttm = TTM_LEGACY;
  private cfg: TranslationConfig | undefined;
  private ctx: ScalableContextEntry | undefined;
  private pathFpd = false;
  // The last successful resolve() (see there), valid while the configuration epoch is.
  private memoSid = -1;
  private memoPasid = -1;
  private memoEpoch = -1;
  private memoCfg: TranslationConfig | undefined;
  private memoCtx: ScalableContextEntry | undefined;
  private memoFpd = false;
  /** A request without PASID is privileged (RID_PRIV with ECAP.RPRIVS) under the remembered resolution. */
  private memoRidPriv = false;
  // The last IOTLB hit of translatePage() (see there): the configuration, page and access
  // kind it answered, the epochs it is valid in, and the physical page it gave.
  private lastCfg: TranslationConfig | undefined;
  private lastVpn = -1;
  private lastAccess = -1;
  private lastEpoch = -1;
  private lastIotlbVersion = -1;
  private lastPa = 0;

  /** @param options - memory, capabilities, profile and the interrupt line */
  constructor(options: VtdHardwareOptions) {
    this.memory = options.memory;
    this.caps = new Capabilities(options.cap ?? DEFAULT_CAP, options.ecap ?? DEFAULT_ECAP);
    this.profile = options.profile ?? 'spec';
    this.onInterrupt = options.onInterrupt;
    this.iotlb = new Iotlb(options.iotlbSize ?? 1024);
    const caps = this.caps;
    this.hawPages = 2 ** (caps.haw - 12);
    const end = Math.max(0x100, caps.froBytes + caps.nfr * FRCD_REG_SIZE, caps.iroBytes + 16);
    this.regs = new RegisterFile(Math.ceil(end / 4096) * 4096);
    const r = this.regs;
    r.set(VER_REG, DEFAULT_VER);
    r.set(CAP_REG, Number(caps.cap & 0xffffffffn));
    r.set(CAP_REG + 4, Number(caps.cap >> 32n));
    r.set(ECAP_REG, Number(caps.ecap & 0xffffffffn));
    r.set(ECAP_REG + 4, Number(caps.ecap >> 32n));
    r.set(FECTL_REG, ECTL_IM);
    r.set(IECTL_REG, ECTL_IM);
    r.set(PECTL_REG, ECTL_IM);
    this.walker = new PageWalker(this.memory, caps, this.psc);
    this.faults = new FaultRecorder(r, caps.froBytes, caps.nfr, () => {
      this.raise(FECTL_REG, 'fault');
    }, this.profile === 'qemu');
    this.prq = new PageRequestQueue(r, this.memory, () => {
      this.raise(PECTL_REG, 'page-request');
    });
    this.mmio = {
      read32: (off) => this.read32(off),
      write32: (off, v) => {
        this.write32(off, v);
      },
      read64: (off) => (BigInt(this.read32(off + 4)) << 32n) | BigInt(this.read32(off)),
      write64: (off, v) => {
        const x = BigInt.asUintN(64, v);
        this.write32(off, Number(x & 0xffffffffn));
        this.write32(off + 4, Number(x >> 32n));
      },
    };
  }

  /** Page requests raised (pending ones and recent history), oldest first. */
  pageRequests(): PageRequestRecord[] {
    return this.prq.records();
  }

  /**
   * Empties every translation cache at once — what a global context-cache invalidation plus a
   * global IOTLB invalidation do — so that the next DMA walks from the root (benchmarks of cold
   * walks use it).
   */
  flushCaches(): void {
    this.contextCache.invalidateAll();
    this.pasidCache.invalidateAll();
    this.iotlb.invalidateAll();
    this.psc.invalidateAll();
  }

  /**
   * Empties the translation caches only — the IOTLB and the paging-structure caches, what a
   * global IOTLB invalidation (IIRG = 01b) drops — while the context and PASID caches stay
   * warm, so that the next DMA walks the page table from its root but not the root, context
   * and PASID tables (benchmarks of table walks use it).
   */
  flushTranslationCaches(): void {
    this.iotlbGlobal();
  }

  /** Entries currently cached, per cache. */
  cacheSizes(): { iotlb: number; pagingStructure: number; context: number; pasid: number } {
    return { iotlb: this.iotlb.size, pagingStructure: this.psc.size, context: this.contextCache.size, pasid: this.pasidCache.size };
  }

  // ─── MMIO ────────────────────────────────────────────────────────────────────────────────

  private read32(off: number): number {
    if ((off & 3) !== 0 || off < 0 || off >= this.regs.size) return 0;
    if (off === GCMD_REG) return 0; // write-only
    return this.regs.get(off);
  }

  private write32(off: number, value: number): void {
    if ((off & 3) !== 0 || off < 0 || off >= this.regs.size) return;
    const v = value >>> 0;
    const r = this.regs;
    const caps = this.caps;
    switch (off) {
      case GCMD_REG:
        this.globalCommand(v);
        return;
      case RTADDR_REG:
        r.set(off, v & 0xfffffc00);
        return;
      case RTADDR_REG + 4:
      case FEUADDR_REG:
      case IEUADDR_REG:
      case PEUADDR_REG:
      case IVA_REG_OFFSET + 4:
        if (off === IVA_REG_OFFSET + 4) return;
        r.set(off, v);
        return;
      case CCMD_REG:
        r.set(off, v);
        return;
      case CCMD_REG + 4:
        r.set(off, v & 0xe0000003);
        if ((v & 0x80000000) !== 0) this.contextCommand();
        return;
      case FSTS_REG: {
        const w1c = v & (FSTS_PFO | FSTS_IQE | FSTS_ICE | FSTS_ITE | FSTS_PRO | 0xc);
        r.clear(off, w1c);
        if ((w1c & FSTS_IQE) !== 0) this.processQueue();
        return;
      }
      case FECTL_REG:
      case IECTL_REG:
      case PECTL_REG:
        this.eventControl(off, v);
        return;
      case FEDATA_REG:
      case FEADDR_REG:
      case IEDATA_REG:
      case IEADDR_REG:
      case PEDATA_REG:
      case PEADDR_REG:
        r.set(off, v);
        return;
      case IQT_REG:
        r.set(off, v & 0x7fff0);
        this.processQueue();
        return;
      case IQA_REG:
      case IQA_REG + 4:
        if ((r.get(GSTS_REG) & GSTS_QIES) === 0) r.set(off, off === IQA_REG ? v & 0xfffff807 : v);
        return;
      case ICS_REG:
        if ((v & ICS_IWC) !== 0) r.clear(off, ICS_IWC);
        return;
      case PQH_REG:
        r.set(off, v & 0x7ffe0);
        return;
      case PQA_REG:
      case PQA_REG + 4:
        r.set(off, off === PQA_REG ? v & 0xfffff007 : v);
        return;
      case PRS_REG:
        r.clear(off, v & 3);
        return;
      default:
        break;
    }
    if (off === caps.iroBytes + IVA_REG_OFFSET || off === caps.iroBytes + IVA_REG_OFFSET + 4) {
      r.set(off, off === caps.iroBytes ? v & 0xfffff07f : v);
      return;
    }
    if (off === caps.iroBytes + IOTLB_REG_OFFSET + 4) {
      r.set(off, v & 0xb003ffff);
      if ((v & 0x80000000) !== 0) this.iotlbCommand();
      return;
    }
    const fr = off - caps.froBytes;
    if (fr >= 0 && fr < caps.nfr * FRCD_REG_SIZE && (fr & 15) === 12 && (v & 0x80000000) !== 0) {
      this.faults.clear(fr >>> 4);
    }
  }

  private raise(ctl: number, source: VtdInterrupt): void {
    const v = this.regs.get(ctl);
    if ((v & ECTL_IM) !== 0) this.regs.set(ctl, v | ECTL_IP);
    else this.onInterrupt?.(source);
  }

  private eventControl(off: number, v: number): void {
    const old = this.regs.get(off);
    const im = v & ECTL_IM;
    if (im === 0 && (old & ECTL_IP) !== 0) {
      this.regs.set(off, 0);
      this.onInterrupt?.(off === FECTL_REG ? 'fault' : off === IECTL_REG ? 'invalidation' : 'page-request');
    } else this.regs.set(off, im | (old & ECTL_IP));
  }

  private globalCommand(v: number): void {
    const r = this.regs;
    let sts = r.get(GSTS_REG);
    if ((v & GCMD_SRTP) !== 0) {
      const lo = r.get(RTADDR_REG);
      this.rootTable = entryAddress(lo, r.get(RTADDR_REG + 4));
      this.ttm = (lo >>> 10) & 3;
      this.memoSid = -1; // a resolution remembered under the old TTM no longer applies
      sts |= GSTS_RTPS;
    }
    if ((v & GCMD_QIE) !== 0 && (sts & GSTS_QIES) === 0 && this.caps.qi) {
      r.set(IQH_REG, 0);
      r.set(IQH_REG + 4, 0);
      sts |= GSTS_QIES;
    } else if ((v & GCMD_QIE) === 0) sts &= ~GSTS_QIES;
    if ((v & GCMD_TE) !== 0) sts |= GSTS_TES;
    else sts &= ~GSTS_TES;
    r.set(GSTS_REG, sts);
    if ((sts & GSTS_QIES) !== 0) this.processQueue();
  }

  private contextCommand(): void {
    const r = this.regs;
    const lo = r.get(CCMD_REG);
    const hi = r.get(CCMD_REG + 4);
    const cirg = (hi >>> 29) & 3;
    if (cirg === 1) this.ccGlobal();
    else if (cirg === 2) this.ccDomain(lo & 0xffff);
    else if (cirg === 3) this.ccDevice(lo >>> 16, hi & 3);
    // CAIG (bits 60:59) reports the granularity performed; ICC (bit 63) clears on completion.
    r.set(CCMD_REG + 4, (hi & 0x7fffffff & ~(3 << 27)) | (cirg << 27));
  }

  private iotlbCommand(): void {
    const r = this.regs;
    const base = this.caps.iroBytes;
    const hi = r.get(base + IOTLB_REG_OFFSET + 4);
    const iirg = (hi >>> 28) & 3;
    const did = hi & 0xffff;
    const ivaLo = r.get(base + IVA_REG_OFFSET);
    const ivaHi = r.get(base + IVA_REG_OFFSET + 4);
    let done = iirg;
    if (iirg === 1) this.iotlbGlobal();
    else if (iirg === 2) this.iotlbDomain(did);
    else if (iirg === 3) {
      const am = ivaLo & 0x3f;
      if (!this.caps.psi || am > this.caps.mamv) {
        this.iotlbDomain(did);
        done = 2;
      } else this.iotlbPage(did, ivaHi * 1048576 + (ivaLo >>> 12), am, (ivaLo & 0x40) !== 0);
    }
    r.set(base + IOTLB_REG_OFFSET + 4, (hi & 0x7fffffff & ~(3 << 25)) | (done << 25));
  }

  // ─── cache invalidation semantics ───────────────────────────────────────────────────────

  private ccGlobal(): void {
    this.contextCache.invalidateAll();
    this.pasidCache.invalidateAll(); // PASID-cache entries hang off the context entry's PASIDDIRPTR
  }

  private ccDomain(did: number): void {
    this.contextCache.invalidateDomain(did);
    if (this.ttm === TTM_SCALABLE) this.pasidCache.invalidateAll();
  }

  private ccDevice(sid: number, fm: number): void {
    const match = this.contextCache.invalidateDevice(sid, fm);
    this.pasidCache.invalidateSources(match);
  }

  private iotlbGlobal(): void {
    this.iotlb.invalidateAll();
    this.psc.invalidateAll();
  }

  private iotlbDomain(did: number): void {
    this.iotlb.invalidateDid(did);
    this.psc.invalidateDid(did);
  }

  private iotlbPage(did: number, vpn: number, am: number, ih: boolean): void {
    const pages = POW2[am]!;
    const first = Math.floor(vpn / pages) * pages;
    this.iotlb.invalidateDidRange(did, first, pages);
    if (!ih) this.psc.invalidateDidRange(did, first, pages);
  }

  /** PASID-based IOTLB invalidation: all of (DID, PASID), or with `am` ≥ 0 the 2^am pages at `vpn` (IH: keep the paging-structure cache). */
  private piotlb(did: number, pasid: number, vpn: number, am: number, ih: boolean): void {
    const tag = cacheTag(did, pasid + 1);
    if (am < 0) {
      this.iotlb.invalidateTag(tag);
      this.psc.invalidateTag(tag);
      return;
    }
    const pages = POW2[am]!;
    const first = Math.floor(vpn / pages) * pages;
    this.iotlb.invalidateTagRange(tag, first, pages);
    if (!ih) this.psc.invalidateTagRange(tag, first, pages);
  }

  // ─── queued invalidation ────────────────────────────────────────────────────────────────

  private queueError(code: number): void {
    const r = this.regs;
    const before = r.get(FSTS_REG);
    r.set(FSTS_REG, before | FSTS_IQE);
    r.set(IQER_REG, (r.get(IQER_REG) & ~0xf) | code);
    if ((before & (FSTS_PFO | FSTS_PPF | FSTS_IQE | FSTS_ICE | FSTS_ITE)) === 0) this.raise(FECTL_REG, 'fault');
  }

  private processQueue(): void {
    const r = this.regs;
    if ((r.get(GSTS_REG) & GSTS_QIES) === 0 || (r.get(FSTS_REG) & FSTS_IQE) !== 0) return;
    const iqaLo = r.get(IQA_REG);
    const base = entryAddress(iqaLo, r.get(IQA_REG + 4));
    const dw = (iqaLo & IQA_DW) !== 0;
    const qsize = 4096 * 2 ** (iqaLo & 7);
    const dsz = dw ? 32 : 16;
    let head = r.get(IQH_REG) & 0x7fff0;
    const tail = r.get(IQT_REG) & 0x7fff0;
    if (head === tail) return;
    if (dw && !this.caps.smts) {
      this.queueError(IQEI_INVALID_QUEUE);
      return;
    }
    if (tail >= qsize || (dw && (tail & 0x10) !== 0)) {
      this.queueError(IQEI_TAIL_MISALIGNED);
      return;
    }
    const d = this.scratch;
    for (let guard = qsize / dsz; head !== tail && guard > 0; guard--) {
      const a = base + head;
      if (!this.memory.contains(a, dsz)) {
        this.queueError(IQEI_INVALID_QUEUE);
        return;
      }
      for (let i = 0; i < dsz >>> 2; i++) d[i] = this.memory.read32At(a + i * 4);
      if (!this.execute(d, dw)) {
        this.queueError(IQEI_INVALID_DESCRIPTOR);
        return;
      }
      this.stats.descriptors++;
      head = (head + dsz) % qsize;
      r.set(IQH_REG, head);
    }
  }

  /** Executes one descriptor; false when it is invalid (→ IQE). */
  private execute(d: Uint32Array, wide: boolean): boolean {
    const d0 = d[0]!;
    const d1 = d[1]!;
    const d2 = d[2]!;
    const d3 = d[3]!;
    const type = descriptorType(d0);
    const rsvd = QI_RESERVED[type];
    if (rsvd === undefined) return false;
    if ((d0 & rsvd[0]) !== 0 || (d1 & rsvd[1]) !== 0 || (d2 & rsvd[2]) !== 0 || (d3 & rsvd[3]) !== 0) return false;
    if (wide) for (let i = 4; i < 8; i++) if (d[i] !== 0) return false;
    if (type >= QI_EIOTLB_TYPE && !this.caps.smts) return false;
    const g = (d0 >>> 4) & 3;
    const did = d0 >>> 16;
    switch (type) {
      case QI_CC_TYPE:
        if (g === 0) return false;
        if (g === 1) this.ccGlobal();
        else if (g === 2) this.ccDomain(did);
        else this.ccDevice(d1 & 0xffff, (d1 >>> 16) & 3);
        return true;
      case QI_IOTLB_TYPE: {
        if (g === 0) return false;
        if (g === 1) this.iotlbGlobal();
        else if (g === 2) this.iotlbDomain(did);
        else {
          const am = d2 & 0x3f;
          if (!this.caps.psi || am > this.caps.mamv) return false;
          this.iotlbPage(did, d3 * 1048576 + (d2 >>> 12), am, (d2 & 0x40) !== 0);
        }
        return true;
      }
      case QI_DIOTLB_TYPE:
      case QI_IEC_TYPE:
      case QI_DEIOTLB_TYPE:
        this.stats.forwardedDescriptors++;
        return true;
      case QI_IWD_TYPE: {
        if ((d0 & 0x80) !== 0 && !this.caps.pds) return false;
        if ((d0 & 0x20) !== 0) {
          const addr = d3 * TWO32 + ((d2 & 0xfffffffc) >>> 0);
          if (this.memory.contains(addr, 4)) this.memory.write32At(addr, d1);
        }
        if ((d0 & 0x10) !== 0) {
          this.regs.or(ICS_REG, ICS_IWC);
          this.raise(IECTL_REG, 'invalidation');
        }
        return true;
      }
      case QI_EIOTLB_TYPE: {
        if (g < 2) return false;
        const pasid = d1 & 0xfffff;
        if (g === 2) this.piotlb(did, pasid, 0, -1, false);
        else this.piotlb(did, pasid, d3 * 1048576 + (d2 >>> 12), d2 & 0x3f, (d2 & 0x40) !== 0);
        return true;
      }
      case QI_PC_TYPE: {
        if (g === 2) return false;
        if (g === 3) this.pasidCache.invalidateAll();
        else if (g === 0) this.pasidCache.invalidateDomain(did);
        else this.pasidCache.invalidatePasid(did, d1 & 0xfffff);
        return true;
      }
      case QI_PGRP_RESP_TYPE:
        this.prq.respond(did, (d0 & 0x10) !== 0 ? d1 & 0xfffff : undefined, (d2 >>> 3) & 0x1ff, (d0 >>> 12) & 0xf);
        return true;
      default:
        return false;
    }
  }

  // ─── translation structures ─────────────────────────────────────────────────────────────

  /**
   * The words of the frame holding the table entry at `addr` (a frame never written reads as
   * {@link ZERO_FRAME}); the entry's first dword is at index {@link wordIndex}(addr). The root,
   * context, PASID-directory and PASID-table entries are read in place, with no copy: each is
   * naturally aligned in a 4 KiB-aligned table, so it never crosses a frame. The caller has
   * checked that the entry lies inside memory (the external-abort faults).
   */
  private frameOf(addr: number): Uint32Array {
    return this.memory.frameWords(Math.floor(addr / 4096)) ?? ZERO_FRAME;
  }

  /**
   * Resolves the configuration of (sid, PASID) into `this.cfg`; returns 0 or −reason. The
   * last successful resolution is remembered with the configuration epoch it was made in
   * (bumped by every change of the context and PASID caches): while it holds, the same request
   * resolves the same way (the result depends only on their contents, the request and the
   * TTM; SRTP forgets it), so a run of DMAs from one device skips the lookups. `dmaInto`
   * checks the remembered resolution inline before it calls this.
   */
  private resolve(sid: number, pasidPresent: boolean, pasid: number): number {
    const rc = this.resolveUncached(sid, pasidPresent, pasid);
    if (rc === 0) {
      this.memoSid = sid;
      this.memoPasid = pasidPresent ? pasid : -1;
      this.memoEpoch = this.configEpoch.value;
      this.memoCfg = this.cfg;
      this.memoCtx = this.ctx;
      this.memoFpd = this.pathFpd;
      this.memoRidPriv = this.ctx !== undefined && this.caps.rprivs && this.ctx.ridPriv;
    } else this.memoSid = -1;
    return rc;
  }

  private resolveUncached(sid: number, pasidPresent: boolean, pasid: number): number {
    const caps = this.caps;
    this.pathFpd = false;
    this.ctx = undefined;
    const ttm = this.ttm;
    if (ttm === TTM_LEGACY) {
      if (pasidPresent) return -SM_FAULT.TTM0_WITH_PASID;
      const cc = this.contextCache;
      const c = cc.record(sid);
      if (!cc.isLive(c)) {
        const f = this.fetchLegacy(sid, c);
        if (f < 0) return f;
        cc.insert(sid, c);
      }
      if (!c.legacy) return -SM_FAULT.CONTEXT_ENTRY_INVALID;
      this.cfg = c.config;
      this.pathFpd = c.config.fpd;
      return 0;
    }
    if (ttm !== TTM_SCALABLE || !caps.smts) return -SM_FAULT.INVALID_ROOT_TABLE_ADDRESS;
    const cc = this.contextCache;
    const c = cc.record(sid);
    if (!cc.isLive(c)) {
      const f = this.fetchScalableContext(sid, c);
      if (f < 0) return f;
      cc.insert(sid, c);
    }
    if (c.legacy) return -SM_FAULT.CONTEXT_ENTRY_INVALID;
    const ctx = c.entry;
    this.ctx = ctx;
    this.pathFpd = ctx.fpd;
    if (pasidPresent && !ctx.paside) return -SM_FAULT.CONTEXT_PASIDE_CLEAR;
    const eff = pasidPresent ? pasid : caps.rps ? ctx.ridPasid : 0;
    if (eff >= pdtsMaxPasid(ctx.pdts)) return pasidPresent ? -SM_FAULT.PASID_TOO_LARGE : -SM_FAULT.CONTEXT_ENTRY_INVALID;
    const pc = this.pasidCache;
    const cfg = pc.record(sid, eff);
    if (!pc.isLive(cfg)) {
      const f = this.fetchPasidEntry(ctx, eff, cfg);
      if (f < 0) return f;
      pc.insert(sid, eff, cfg);
    }
    this.cfg = cfg;
    this.pathFpd = cfg.fpd;
    return 0;
  }

  /** Fetches a legacy root + context entry into the context-cache record `rec`: 0 or −reason. */
  private fetchLegacy(sid: number, rec: CachedContext): number {
    const caps = this.caps;
    const bus = sid >>> 8;
    const ra = this.rootTable + bus * 16;
    if (!this.memory.contains(ra, 16)) return -SM_FAULT.ROOT_ENTRY_ACCESS;
    const rw = this.frameOf(ra);
    const ri = wordIndex(ra);
    const rlo = rw[ri]!;
    if ((rlo & 1) === 0) return -SM_FAULT.ROOT_ENTRY_NOT_PRESENT;
    if (legacyRootEntryReserved(rw, caps.haw, ri)) return -SM_FAULT.ROOT_ENTRY_RESERVED;
    const ca = entryAddress(rlo, rw[ri + 1]!) + (sid & 0xff) * 16;
    if (!this.memory.contains(ca, 16)) return -SM_FAULT.CONTEXT_ENTRY_ACCESS;
    const cw = this.frameOf(ca);
    const ci = wordIndex(ca);
    const e = decodeLegacyContextEntry(cw, this.legacyEntry, ci);
    this.pathFpd = e.fpd;
    if (!e.present) return -SM_FAULT.CONTEXT_ENTRY_NOT_PRESENT;
    if (legacyContextEntryReserved(cw, caps.haw, ci)) return -SM_FAULT.CONTEXT_ENTRY_RESERVED;
    const pt = e.tt === CONTEXT_TT_PASS_THROUGH;
    if (e.tt === 3 || (e.tt === CONTEXT_TT_DEV_IOTLB && !caps.dt) || (pt && !caps.pt) || (!pt && !caps.supportsAw(e.aw))) {
      return -SM_FAULT.CONTEXT_ENTRY_INVALID;
    }
    rec.legacy = true;
    const cfg = rec.config;
    cfg.pgtt = pt ? PGTT_PASS_THROUGH : PGTT_SECOND_STAGE;
    cfg.did = e.did;
    cfg.pasid = 0;
    cfg.tag = cacheTag(e.did, 0);
    cfg.fpd = e.fpd;
    cfg.ssRoot = e.ssptptr;
    cfg.ssLevels = e.aw + 2;
    cfg.ssWidth = Math.min(30 + 9 * e.aw, caps.mgaw);
    cfg.ssPages = POW2[cfg.ssWidth - 12]!;
    cfg.ssade = false;
    cfg.fsRoot = 0;
    cfg.fsLevels = 0;
    cfg.sre = false;
    cfg.wpe = false;
    cfg.eafe = false;
    return 0;
  }

  /** Fetches a scalable-mode root half + context entry into the context-cache record `rec`: 0 or −reason. */
  private fetchScalableContext(sid: number, rec: CachedContext): number {
    const caps = this.caps;
    const bus = sid >>> 8;
    const devfn = sid & 0xff;
    const ra = this.rootTable + bus * 16;
    if (!this.memory.contains(ra, 16)) return -SM_FAULT.ROOT_ENTRY_ACCESS;
    // The half of the root entry the devfn selects: dwords 0–1 (lower) or 2–3 (upper).
    const rw = this.frameOf(ra);
    const ri = wordIndex(ra) + (devfn >= 0x80 ? 2 : 0);
    const lo = rw[ri]!;
    const hi = rw[ri + 1]!;
    if ((lo & 1) === 0) return -SM_FAULT.ROOT_ENTRY_NOT_PRESENT;
    if (scalableRootHalfReserved(lo, hi, caps.haw)) return -SM_FAULT.ROOT_ENTRY_RESERVED;
    const ca = entryAddress(lo, hi) + (devfn & 0x7f) * 32;
    if (!this.memory.contains(ca, 32)) return -SM_FAULT.CONTEXT_ENTRY_ACCESS;
    const cw = this.frameOf(ca);
    const ci = wordIndex(ca);
    rec.legacy = false;
    const e = decodeScalableContextEntry(cw, rec.entry, ci);
    this.pathFpd = e.fpd;
    if (!e.present) return -SM_FAULT.CONTEXT_ENTRY_NOT_PRESENT;
    if (
      scalableContextEntryReserved(cw, caps.haw, caps.rprivs, ci) ||
      (e.dte && !caps.dt) ||
      (e.pre && !caps.prs) ||
      (e.paside && !caps.pasid)
    ) {
      return -SM_FAULT.CONTEXT_ENTRY_RESERVED;
    }
    return 0;
  }

  /** Fetches the PASID directory and table entries of `pasid` into the PASID-cache record `out`: 0 or −reason. */
  private fetchPasidEntry(ctx: ScalableContextEntry, pasid: number, out: TranslationConfig): number {
    const caps = this.caps;
    const mem = this.memory;
    const da = ctx.pasidDirPtr + (pasid >>> 6) * 8; // PASID[19:6]
    if (!mem.contains(da, 8)) return -SM_FAULT.PASID_DIR_ACCESS;
    const dw = this.frameOf(da);
    const di = wordIndex(da);
    const dlo = dw[di]!;
    const dhi = dw[di + 1]!;
    if ((dlo & 2) !== 0) this.pathFpd = true; // FPD
    if ((dlo & 1) === 0) return -SM_FAULT.PASID_DIR_NOT_PRESENT;
    if (pasidDirEntryReserved(dlo, dhi, caps.haw)) return -SM_FAULT.PASID_DIR_RESERVED;
    const pa = entryAddress(dlo, dhi) + (pasid & 63) * 64; // SMPTBLPTR + PASID[5:0]
    if (!mem.contains(pa, 64)) return -SM_FAULT.PASID_ENTRY_ACCESS;
    const pw = this.frameOf(pa);
    const pi = wordIndex(pa);
    // The fields the checks and the cache record use, straight from the entry's dwords (the
    // layout of decodePasidEntry: val[0] P, FPD, AW, PGTT, SSADE, SSPTPTR; val[1] DID; val[2]
    // SRE, FSPM, WPE, EAFE, FSPTPTR), with no decoded object in between.
    const d0 = pw[pi]!;
    const d4 = pw[pi + 4]!;
    if ((d0 & 2) !== 0) this.pathFpd = true; // FPD
    if ((d0 & 1) === 0) return -SM_FAULT.PASID_ENTRY_NOT_PRESENT;
    if (pasidEntryReserved(pw, caps, pi)) return -SM_FAULT.PASID_ENTRY_RESERVED;
    const pgtt = (d0 >>> 6) & 7;
    const aw = (d0 >>> 2) & 7;
    const fspm = (d4 >>> 2) & 3;
    const usesSs = pgtt === PGTT_SECOND_STAGE || pgtt === PGTT_NESTED;
    const usesFs = pgtt === PGTT_FIRST_STAGE || pgtt === PGTT_NESTED;
    const invalid =
      (pgtt === PGTT_FIRST_STAGE && !caps.fsts) ||
      (pgtt === PGTT_SECOND_STAGE && !caps.ssts) ||
      (pgtt === PGTT_NESTED && (!caps.nest || !caps.fsts || !caps.ssts)) ||
      (pgtt === PGTT_PASS_THROUGH && !caps.pt) ||
      pgtt === 0 ||
      pgtt > 4 ||
      (usesSs && !caps.supportsAw(aw)) ||
      (usesFs && (fspm > 1 || (fspm === 1 && !caps.fl5lp)));
    if (invalid) return -SM_FAULT.PASID_ENTRY_INVALID;
    const did = pw[pi + 2]! & 0xffff;
    const pasidTag = pgtt === PGTT_SECOND_STAGE ? 0 : pasid + 1;
    const ssWidth = Math.min(30 + 9 * aw, caps.mgaw);
    out.pgtt = pgtt;
    out.did = did;
    out.pasid = pasid;
    out.tag = cacheTag(did, pasidTag);
    out.fpd = this.pathFpd;
    out.ssRoot = entryAddress(d0, pw[pi + 1]!);
    out.ssLevels = aw + 2;
    out.ssWidth = ssWidth;
    out.ssPages = POW2[ssWidth - 12]!;
    out.ssade = (d0 & 0x200) !== 0;
    out.fsRoot = entryAddress(d4, pw[pi + 5]!);
    out.fsLevels = fspm === 1 ? 5 : 4;
    out.sre = (d4 & 1) !== 0;
    out.wpe = (d4 & 0x10) !== 0;
    out.eafe = (d4 & 0x80) !== 0;
    return 0;
  }

  // ─── DMA ─────────────────────────────────────────────────────────────────────────────────

  private readonly fsReq = { write: false, user: true, exec: false };

  /**
   * Translates one 4 KiB page: returns the physical page address or −reason. `iovaHi` is
   * the high dword of the page's address (for the first-stage canonical check). An IOTLB hit
   * allocates nothing; a miss walks and fills the IOTLB.
   */
  private translatePage(cfg: TranslationConfig, vpn: number, iovaHi: number, write: boolean, user: boolean, exec: boolean, access: number): number {
    const pgtt = cfg.pgtt;
    if (pgtt === PGTT_PASS_THROUGH) {
      if (vpn >= this.hawPages) return -SM_FAULT.BEYOND_HAW;
      return interruptRange(vpn * 4096, 0) ? -SM_FAULT.INTERRUPT_RANGE : vpn * 4096;
    }
    if (pgtt === PGTT_SECOND_STAGE) {
      if (vpn >= cfg.ssPages) return -SM_FAULT.SS_BEYOND_AW;
    } else if (!fsCanonical(iovaHi, cfg.fsLevels === 5)) {
      return -SM_FAULT.FS_NON_CANONICAL;
    }
    const iotlb = this.iotlb;
    if (iotlb.lookup(cfg.tag, vpn)) {
      const p = iotlb.hitPerm;
      const denied =
        pgtt === PGTT_SECOND_STAGE
          ? write
            ? (p & PERM_W) === 0 || (p & PERM_DIRTY) === 0
            : false
          : (user && (p & PERM_U) === 0) ||
            (write && ((p & PERM_DIRTY) === 0 || ((p & PERM_W) === 0 && (user || cfg.wpe)))) ||
            (exec && (p & PERM_XD) !== 0);
      if (!denied) {
        this.stats.iotlbHits++;
        const size = iotlb.hitSize;
        const base = iotlb.hitBase;
        if (interruptRange(base, size)) return -SM_FAULT.INTERRUPT_RANGE;
        const pa = size === 0 ? base : base + ((vpn >>> 0) & (PAGES_PER_SIZE[size]! - 1)) * 4096;
        // Remember the hit: while neither the IOTLB nor the configuration changes, the same
        // (configuration, page, access) finds the same entry and passes the same checks.
        this.lastCfg = cfg;
        this.lastVpn = vpn;
        this.lastAccess = access;
        this.lastIotlbVersion = iotlb.version;
        this.lastEpoch = this.configEpoch.value;
        this.lastPa = pa;
        return pa;
      }
      iotlb.remove(cfg.tag, vpn, iotlb.hitSize);
    }
    this.stats.iotlbMisses++;
    const walker = this.walker;
    let pa: number;
    let dirty: boolean;
    if (pgtt === PGTT_SECOND_STAGE) {
      pa = walker.secondStage(cfg.ssRoot, cfg.ssLevels, vpn, write, cfg.ssade, cfg.tag);
      dirty = !cfg.ssade || write || walker.ssLeafWasDirty();
    } else {
      const req = this.fsReq;
      req.write = write;
      req.user = user;
      req.exec = exec;
      pa = walker.firstStage(cfg.fsRoot, cfg.fsLevels, vpn, req, cfg, pgtt === PGTT_NESTED ? cfg : undefined, pgtt === PGTT_NESTED ? -1 : cfg.tag);
      dirty = write || walker.fsLeafWasDirty();
    }
    if (pa < 0) return pa;
    const size = walker.size;
    const base = size === 0 ? pa : pa - ((vpn >>> 0) & (PAGES_PER_SIZE[size]! - 1)) * 4096;
    iotlb.insert(cfg.tag, vpn, base, size, walker.perm | (dirty ? PERM_DIRTY : 0));
    return interruptRange(base, size) ? -SM_FAULT.INTERRUPT_RANGE : pa;
  }

  /**
   * Performs a DMA: translates each page and reads or writes memory. Returns the data read
   * (empty for writes) or the fault, which is also logged in the FRCD registers (unless
   * FPD suppresses it) or becomes a page request when the context entry has PRE set.
   */
  dma(request: VtdDmaRequest): DmaResult {
    return this.dmaFrom(request.sourceId, request);
  }

  /**
   * {@link dma} with the requester id given apart, as an endpoint puts its own RID on the
   * bus. A thin wrapper of {@link dmaInto} that allocates the result.
   */
  dmaFrom(sourceId: number, request: DmaRequest): DmaResult {
    return dmaResultOf(request, (into) => this.dmaInto(sourceId, request, into));
  }

  /**
   * {@link dmaFrom} without allocating on success: a read's bytes land in `into[0 … size)`, a
   * write takes `request.data` (`into` is not used). Returns `undefined`, or the fault (the
   * same record {@link dma} returns; a fault record is built only on the fault path). The
   * system's endpoints call this. A read whose `into` is shorter than `size` is a caller
   * error (EINVAL, argument `into`), not a DMA outcome: nothing is issued.
   */
  dmaInto(sourceId: number, request: DmaRequest, into: Uint8Array): DmaFault | undefined {
    const sid = sourceId & 0xffff;
    const write = request.write;
    const data = request.data;
    let size: number;
    if (write) size = data === undefined ? 0 : data.length;
    else {
      const n = Math.floor(request.size);
      size = n > 0 ? n : 0;
      if (into.length < size) throw shortBuffer(size, into.length);
    }
    // The IOVA's 32-bit halves, modulo 2^64 as BigInt.asUintN(64) would give them, without
    // allocating: a BigUint64Array store wraps, and the halves are read back as words.
    const split = this.iovaSplit;
    split[0] = request.iova;
    const lo = this.iovaWords[LO_WORD]!;
    const hi = this.iovaWords[LO_WORD ^ 1]!;
    const pasid = request.pasid;
    const pasidPresent = pasid !== undefined;
    const pasidNum = pasidPresent ? pasid & 0xfffff : 0;
    const exec = pasidPresent && request.exec === true;
    let priv = pasidPresent && request.priv === true;
    if (!pasidPresent && write && hi === 0 && lo >= MSI_BASE && lo < MSI_END) {
      this.stats.interruptMessages++; // an interrupt message, not DMA (no interrupt remapping is modelled)
      return undefined;
    }
    if ((this.regs.dw[GSTS_REG >>> 2]! & GSTS_TES) === 0) return this.untranslated(hi * TWO32 + lo, request.iova, size, write, data, into);
    let cfg: TranslationConfig;
    if (sid === this.memoSid && (pasidPresent ? pasidNum : -1) === this.memoPasid && this.configEpoch.value === this.memoEpoch) {
      cfg = this.memoCfg!;
      this.cfg = cfg;
      this.ctx = this.memoCtx;
      this.pathFpd = this.memoFpd;
    } else {
      const rc = this.resolve(sid, pasidPresent, pasidNum);
      if (rc < 0) return this.fault(-rc, sid, pasidPresent, pasidNum, BigInt.asUintN(64, request.iova), write, exec, priv);
      cfg = this.cfg!;
    }
    if (!pasidPresent && this.memoRidPriv) priv = true;
    const fsInvolved = cfg.pgtt === PGTT_FIRST_STAGE || cfg.pgtt === PGTT_NESTED;
    if (priv && pasidPresent && fsInvolved && !cfg.sre) {
      return this.fault(SM_FAULT.PASID_SRE_CLEAR, sid, pasidPresent, pasidNum, BigInt.asUintN(64, request.iova), write, exec, priv);
    }
    if (exec && !this.caps.ers) return this.fault(SM_FAULT.PASID_ERE_CLEAR, sid, pasidPresent, pasidNum, BigInt.asUintN(64, request.iova), write, exec, priv);
    let vpn = hi * 1048576 + (lo >>> 12);
    let vpnHi = hi;
    let off = lo & 0xfff;
    let done = 0;
    const mem = this.memory;
    // A write that crosses a page boundary is translated page by page first and moves its
    // bytes only when every page translated: the remapping hardware blocks a request that
    // faults (VT-d spec ch. 7, address translation faults), so memory stays untouched, and one
    // result per request cannot say "the first page was written". Single-page writes and all
    // reads move as they translate (a read has no side effect to undo). The deferred
    // (address, length) pairs go to a scratch array the unit keeps.
    const deferring = write && off + size > 4096;
    let deferredN = 0;
    const user = !priv;
    const execute = exec && fsInvolved;
    const access = (write ? 1 : 0) | (user ? 2 : 0) | (execute ? 4 : 0);
    do {
      let pa: number;
      if (
        vpn === this.lastVpn &&
        cfg === this.lastCfg &&
        access === this.lastAccess &&
        this.iotlb.version === this.lastIotlbVersion &&
        this.configEpoch.value === this.lastEpoch
      ) {
        // The same IOTLB hit as last time: nothing it depends on has changed.
        this.stats.iotlbHits++;
        pa = this.lastPa;
      } else pa = this.translatePage(cfg, vpn, vpnHi, write, user, execute, access);
      if (pa < 0) {
        const at = done === 0 ? BigInt.asUintN(64, request.iova) : BigInt(vpn) * 4096n;
        return this.fault(-pa, sid, pasidPresent, pasidNum, at, write, exec, priv);
      }
      const n = Math.min(size - done, 4096 - off);
      if (n > 0) {
        if (!mem.contains(pa + off, n)) return unsupportedRequest(BigInt(vpn) * 4096n + BigInt(off));
        if (deferring) deferredN = this.defer(deferredN, pa + off, n);
        else if (write) writeBytes(mem, pa + off, data!, done, n);
        else this.readBytes(pa, off, into, done, n);
      }
      done += n;
      vpn++;
      if (((vpn >>> 0) & 0xfffff) === 0) vpnHi = (vpnHi + 1) >>> 0; // the next page crosses into the next 4 GiB
      off = 0;
    } while (done < size);
    if (deferring) {
      const deferred = this.deferred;
      for (let i = 0, at = 0; i < deferredN; i += 2) {
        const n = deferred[i + 1]!;
        writeBytes(mem, deferred[i]!, data!, at, n);
        at += n;
      }
    }
    return undefined;
  }

  /** Appends (address, length) to the deferred writes at `count`; returns the new count. */
  private defer(count: number, addr: number, n: number): number {
    let d = this.deferred;
    if (count + 2 > d.length) {
      const grown = new Float64Array(d.length * 2);
      grown.set(d);
      this.deferred = d = grown;
    }
    d[count] = addr;
    d[count + 1] = n;
    return count + 2;
  }

  /**
   * Copies `n` bytes at offset `off` of the 4 KiB page at `page` into `out[at…]`. Up to
   * {@link SMALL_COPY} bytes come straight from the frame's words (`frameWords`: a frame never
   * written reads as zero); larger transfers go through `readInto`.
   */
  private readBytes(page: number, off: number, out: Uint8Array, at: number, n: number): void {
    if (n > SMALL_COPY) {
      this.memory.readInto(page + off, out, at, n);
      return;
    }
    copyFrameBytes(this.memory.frameWords(page / 4096), off, out, at, n);
  }

  private untranslated(a: number, iova: bigint, size: number, write: boolean, data: Uint8Array | undefined, into: Uint8Array): DmaFault | undefined {
    if (!this.memory.contains(a, size)) return unsupportedRequest(BigInt.asUintN(64, iova));
    if (write) this.memory.writeFrom(a, data!, 0, size);
    else this.memory.readInto(a, into, 0, size);
    return undefined;
  }

  private fault(
    smCode: number,
    sid: number,
    pasidPresent: boolean,
    pasid: number,
    iova: bigint,
    write: boolean,
    exec: boolean,
    priv: boolean,
  ): DmaFault {
    const page = iova & ~0xfffn;
    const fiLo = Number(page & 0xffffffffn);
    const fiHi = Number(page >> 32n);
    if (RECOVERABLE.has(smCode) && this.ctx?.pre === true && this.caps.prs) {
      const rec = this.prq.submit({ sid, pasid: pasidPresent ? pasid : undefined, addrLo: fiLo, addrHi: fiHi, write, exec, priv });
      return {
        class: 'page-request',
        name: rec.status === 'overflow' ? 'Page request queue overflow' : 'Page request',
        code: smCode,
        iova,
        record: { ...rec, reason: smCode, reasonName: faultReasonName(smCode) },
      };
    }
    const legacy = this.ttm === TTM_LEGACY || this.profile === 'qemu';
    const code = legacy ? legacyFaultReason(smCode, write) : smCode;
    const suppressed = this.pathFpd && faultIsQualified(smCode);
    const index = suppressed
      ? -1
      : this.faults.record({ reason: code, sid, fiLo, fiHi, pasid: pasidPresent ? pasid : -1, write, exec, priv });
    return {
      class: faultClass(smCode),
      name: faultReasonName(code),
      code,
      iova,
      record: {
        reason: code,
        sourceId: sid,
        pasid: pasidPresent ? pasid : undefined,
        faultAddress: page,
        type: write ? 'write' : 'read',
        exec,
        priv,
        recorded: index >= 0,
        suppressed,
        frcdIndex: index >= 0 ? index : undefined,
      },
    };
  }
}

/** Copies `data[at…at+n)` to memory at `pa` (inside one page); small word-aligned transfers word by word. */
function writeBytes(mem: PhysicalMemoryLike, pa: number, data: Uint8Array, at: number, n: number): void {
  if ((pa & 3) !== 0 || (n & 3) !== 0 || n > 64) {
    mem.writeFrom(pa, data, at, n);
    return;
  }
  for (let k = 0; k < n; k += 4) {
    const i = at + k;
    mem.write32At(pa + k, (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) >>> 0);
  }
}

/** True when the page of size index `size` at `base` overlaps the interrupt range 0xFEEx_xxxx (→ 0x87). */
function interruptRange(base: number, size: number): boolean {
  return base < MSI_END && base + PAGES_PER_SIZE[size]! * 4096 > MSI_BASE;
}

function unsupportedRequest(addr: bigint): DmaFault {
  return {
    class: 'external-abort',
    name: 'Unsupported Request (no memory at the output address)',
    code: 0,
    iova: addr,
    record: { address: addr },
  };
}

function shortBuffer(size: number, length: number): IoasidError {
  return new IoasidError('EINVAL', 'into', `a ${String(size)}-byte read needs a buffer of at least ${String(size)} bytes (got ${String(length)})`);
}
