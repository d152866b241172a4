/**
 * The virtio-iommu device model: feature negotiation, the 40-byte config space, the request
 * virtqueue (requests in as device-readable bytes, device-writable bytes out), the event
 * virtqueue (24-byte fault records), and the DMA path of the endpoints it manages. With the
 * non-standard ioasid extension negotiated it also holds guest-managed tables (ATTACH_TABLE),
 * caches their translations until INVALIDATE, raises page requests answered by PAGE_RESP, and
 * nests domains. Everything is synchronous; nothing here throws for a request or a DMA.
 */

import { copyFrameBytes, dmaResultOf } from '@ioasid/core';
import { U64_MAX, type DmaFault, type DmaRequest, type DmaResult, type FaultClass, type PhysicalMemoryLike } from '@ioasid/uapi';
import { allZero, le16, le32, le64 } from '../spec/bytes.js';
import { CD_SIZE, CD_W0_EPD0, CD_W0_ENDI, CD_W0_V, CD_W1_AA64, CD_W1_AFFD } from '../spec/cd.js';
import { CONFIG_BYPASS, encodeConfig } from '../spec/config.js';
import {
  ATTACH_TABLE_FLAGS, ATTACH_X_PASID, VIRTIO_IOMMU_ATTACH_F_X_IOPF, AT_DESC, AT_ENDPOINT, AT_EP_PASID, AT_FLAGS, AT_FORMAT, AT_PARENT, AT_PASID, AT_RESERVED,
  CDT_S1CDMAX, CDT_S1CONTEXTPTR, CDT_S1DSS, CDT_S1FMT, DETACH_X_FLAGS, DETACH_X_PASID, INV_DOMAIN, INV_FLAGS, INV_GRANULE,
  INV_NR_PAGES, INV_PASID, INV_RESERVED, INV_SCOPE, INV_VIRT_START, LPAE_TCR, LPAE_TTBR0, PR_CODE, PR_ENDPOINT, PR_FLAGS,
  PR_GRPID, PR_PASID, S1DSS_BYPASS, S1DSS_SSID0, VIRTIO_IOMMU_ATTACH_F_X_NO_DEFAULT, VIRTIO_IOMMU_ATTACH_F_X_PASID,
  VIRTIO_IOMMU_ATTACH_TABLE_F_EP_PASID, VIRTIO_IOMMU_ATTACH_TABLE_F_IOPF, VIRTIO_IOMMU_ATTACH_TABLE_F_PARENT,
  VIRTIO_IOMMU_ATTACH_TABLE_F_PASID, VIRTIO_IOMMU_DETACH_F_X_PASID, VIRTIO_IOMMU_FAULT_F_PRIV, VIRTIO_IOMMU_FAULT_F_X_PAGE_REQ,
  VIRTIO_IOMMU_FAULT_F_X_PASID, VIRTIO_IOMMU_F_X_IOASID, VIRTIO_IOMMU_INVAL_F_CONFIG, VIRTIO_IOMMU_INVAL_F_LEAF,
  VIRTIO_IOMMU_INVAL_F_X_PASID, VIRTIO_IOMMU_INVAL_S_DOMAIN, VIRTIO_IOMMU_INVAL_S_PASID, VIRTIO_IOMMU_INVAL_S_VA,
  VIRTIO_IOMMU_PAGE_RESP_FAILURE, VIRTIO_IOMMU_PAGE_RESP_PASID_VALID, VIRTIO_IOMMU_T_ATTACH_TABLE, VIRTIO_IOMMU_T_INVALIDATE,
  VIRTIO_IOMMU_X_FORMAT_ARM_LPAE_S1, VIRTIO_IOMMU_X_FORMAT_SMMUV3_CD, extensionReadableSize,
} from '../spec/extension.js';
import {
  VIRTIO_IOMMU_FAULT_F_ADDRESS, VIRTIO_IOMMU_FAULT_F_EXEC, VIRTIO_IOMMU_FAULT_F_READ, VIRTIO_IOMMU_FAULT_F_WRITE,
  VIRTIO_IOMMU_FAULT_R_DOMAIN, VIRTIO_IOMMU_FAULT_R_MAPPING, VIRTIO_IOMMU_FAULT_R_UNKNOWN, FAULT_REASON_NAMES, encodeFault,
} from '../spec/fault.js';
import {
  VIRTIO_IOMMU_F_BYPASS, VIRTIO_IOMMU_F_BYPASS_CONFIG, VIRTIO_IOMMU_F_DOMAIN_RANGE, VIRTIO_IOMMU_F_INPUT_RANGE,
  VIRTIO_IOMMU_F_MAP_UNMAP, VIRTIO_IOMMU_F_MMIO, VIRTIO_IOMMU_F_PROBE, hasFeature,
} from '../spec/features.js';
import { PROBE_PROPERTY_HEADER_SIZE, RESV_MEM_LENGTH, VIRTIO_IOMMU_RESV_MEM_T_MSI, writeResvMem, type ResvMem } from '../spec/probe.js';
import {
  ATTACH_FLAGS, ATTACH_RESERVED, HEAD_SIZE, MAP_FLAGS, MAP_PHYS_START, PROBE_ENDPOINT,
  REQ_DOMAIN, REQ_ENDPOINT, REQ_VIRT_END, REQ_VIRT_START, TAIL_SIZE, UNMAP_RESERVED, VIRTIO_IOMMU_ATTACH_F_BYPASS,
  VIRTIO_IOMMU_MAP_F_MMIO, VIRTIO_IOMMU_MAP_F_READ, VIRTIO_IOMMU_MAP_F_WRITE, VIRTIO_IOMMU_T_ATTACH, VIRTIO_IOMMU_T_DETACH,
  VIRTIO_IOMMU_T_MAP, VIRTIO_IOMMU_T_PROBE, VIRTIO_IOMMU_T_UNMAP, readableSize,
} from '../spec/requests.js';
import {
  VIRTIO_IOMMU_S_DEVERR, VIRTIO_IOMMU_S_INVAL, VIRTIO_IOMMU_S_NOENT, VIRTIO_IOMMU_S_NOMEM, VIRTIO_IOMMU_S_OK,
  VIRTIO_IOMMU_S_RANGE, VIRTIO_IOMMU_S_UNSUPP,
} from '../spec/status.js';
import { Iotlb } from './iotlb.js';
import { MapCache } from './map-cache.js';
import { MAPPING, MappingTree } from './mapping-tree.js';
import { PROFILES, type VirtioIommuProfile, type VirtioIommuProfileName } from './profile.js';
import {
  P_PXN, P_UNPRIV, P_UXN, P_WRITE, W_ACCESS, W_ADDR_SIZE, W_EXT_ABORT, W_OK, W_STAGE2, W_TRANSLATION, walkStage1,
  type Stage1Config, type Stage2Read, type WalkOut,
} from './stage1.js';

const TWO32 = 0x100000000;
const PAGE = 4096;
/** Pages per 4 GiB: the page number of `hi:lo` is `hi × HI_PAGES + (lo >>> 12)`. */
const HI_PAGES = 0x100000;
/** Index of the low and high 32-bit word of a 64-bit value stored in a typed array on this host. */
const LO_WORD = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;
const HI_WORD = LO_WORD ^ 1;
// The DMA path reads imported constants through module-level bindings: a test runner's module
// transform turns each read of an imported name into a property read of the module namespace.
const MAP_F_READ = VIRTIO_IOMMU_MAP_F_READ;
const MAP_F_WRITE = VIRTIO_IOMMU_MAP_F_WRITE;
const MAP_RW = MAP_F_READ | MAP_F_WRITE;
const { S_HI: M_S_HI, S_LO: M_S_LO, E_HI: M_E_HI, E_LO: M_E_LO, P_HI: M_P_HI, P_LO: M_P_LO, FLAGS: M_FLAGS } = MAPPING;
const PERM_WRITE = P_WRITE;
const PERM_UNPRIV = P_UNPRIV;
const PERM_UXN = P_UXN;
const PERM_PXN = P_PXN;
const walk = walkStage1;
/** PASIDs are 20 bits (PCIe). */
const PASID_LIMIT = 1 << 20;
/** Outstanding page-request groups per endpoint (a PRI "outstanding page request allocation"). */
const PRI_OUTSTANDING = 32;

/** Options of {@link VirtioIommuDevice}. */
export interface VirtioIommuDeviceOptions {
  /** Guest-physical memory the endpoints' DMA reaches. */
  readonly memory: PhysicalMemoryLike;
  /** Endpoint IDs the device manages (PCI: requester ID `bus << 8 | devfn`). */
  readonly endpoints: readonly number[];
  /** Offered feature bits (bigint mask; VIRTIO_F_VERSION_1 is bit 32). Default: the profile's. */
  readonly features?: bigint;
  /** Behaviour profile (default `strict`). */
  readonly profile?: VirtioIommuProfileName | VirtioIommuProfile;
  /** Overrides of the profile's config values and RESV_MEM list. */
  readonly config?: Partial<Pick<VirtioIommuProfile, 'pageSizeMask' | 'inputStart' | 'inputEnd' | 'domainStart' | 'domainEnd' | 'probeSize' | 'bypass' | 'resvMem'>>;
  /** Stage-1 translation cache entries (extension tables; default 512). */
  readonly iotlbEntries?: number;
  /** MAP/UNMAP translation cache entries, one 4 KiB page each (0 or a power of two; default 1024). */
  readonly mapCacheEntries?: number;
  /** Event virtqueue size: records held before the device drops new ones (default 64). */
  readonly eventQueueSize?: number;
}

/** A DMA as an endpoint issues it. */
export interface VirtioIommuDma {
  /** Endpoint ID. */
  readonly endpoint: number;
  /** PASID (absent: no PASID prefix). */
  readonly pasid?: number;
  /** I/O virtual address. */
  readonly iova: bigint;
  /** Bytes to read (writes use `data.length`). */
  readonly size: number;
  /** A write. */
  readonly write: boolean;
  /** Bytes to write. */
  readonly data?: Uint8Array;
  /** Privileged access. */
  readonly priv?: boolean;
  /** Instruction fetch. */
  readonly exec?: boolean;
}

/** A table context (extension): an LPAE stage-1 table. */
interface TableContext {
  readonly kind: 'lpae';
  readonly ctx: number;
  readonly cfg: Stage1Config;
  readonly iopf: boolean;
}

/** A CD table (extension). */
interface CdTable {
  readonly kind: 'cd';
  readonly base: number;
  readonly cdmax: number;
  readonly s1dss: number;
  readonly iopf: boolean;
  readonly ctxs: Map<number, number>;
  readonly cache: Map<number, Stage1Config | string>;
}

interface Domain {
  readonly id: number;
  /** Unique for the device's lifetime (never reused): the key of the domain's translation-cache entries. */
  readonly tag: number;
  readonly bypass: boolean;
  /** The anonymous NO-PASID context (MAP/UNMAP) exists. */
  readonly anonymous: boolean;
  /** Extension F_X_IOPF: a miss in the anonymous context is a page request. */
  readonly iopf: boolean;
  readonly mappings: MappingTree;
  parent: Domain | undefined;
  children: number;
  attachments: number;
  noPasid: TableContext | CdTable | undefined;
  readonly pasidCtx: Map<number, TableContext>;
}

interface EndpointState {
  readonly id: number;
  readonly known: boolean;
  domain: Domain | undefined;
  readonly pasids: Map<number, Domain>;
  readonly groups: Map<number, number | undefined>;
  nextGroup: number;
}

/** Internal fault kinds of the DMA path. */
const F = {
  UnknownEndpoint: 0,
  NotAttached: 1,
  NoContext: 2,
  NoMapping: 3,
  MapPermission: 4,
  Reserved: 5,
  InputRange: 6,
  S1Translation: 7,
  S1AddrSize: 8,
  S1Access: 9,
  S1Permission: 10,
  S1ExtAbort: 11,
  S2Walk: 12,
  S2Output: 13,
  BadConfig: 14,
  BusError: 15,
  PasidUnsupported: 16,
} as const;

const FAULT_INFO: Readonly<Record<number, readonly [number, FaultClass, string]>> = {
  [F.UnknownEndpoint]: [VIRTIO_IOMMU_FAULT_R_UNKNOWN, 'blocked', 'endpoint not managed by the device'],
  [F.NotAttached]: [VIRTIO_IOMMU_FAULT_R_DOMAIN, 'blocked', 'endpoint not attached to a domain'],
  [F.NoContext]: [VIRTIO_IOMMU_FAULT_R_DOMAIN, 'blocked', 'the domain has no context for this request'],
  [F.NoMapping]: [VIRTIO_IOMMU_FAULT_R_MAPPING, 'translation', 'address not mapped'],
  [F.MapPermission]: [VIRTIO_IOMMU_FAULT_R_MAPPING, 'permission', 'mapping flags forbid the access'],
  [F.Reserved]: [VIRTIO_IOMMU_FAULT_R_MAPPING, 'translation', 'address in a RESV_MEM RESERVED region'],
  [F.InputRange]: [VIRTIO_IOMMU_FAULT_R_MAPPING, 'address-size', 'address outside input_range'],
  [F.S1Translation]: [VIRTIO_IOMMU_FAULT_R_MAPPING, 'translation', 'stage-1 translation fault'],
  [F.S1AddrSize]: [VIRTIO_IOMMU_FAULT_R_MAPPING, 'address-size', 'stage-1 address size fault'],
  [F.S1Access]: [VIRTIO_IOMMU_FAULT_R_MAPPING, 'translation', 'stage-1 access flag fault'],
  [F.S1Permission]: [VIRTIO_IOMMU_FAULT_R_MAPPING, 'permission', 'stage-1 permission fault'],
  [F.S1ExtAbort]: [VIRTIO_IOMMU_FAULT_R_UNKNOWN, 'external-abort', 'stage-1 table fetch outside memory'],
  [F.S2Walk]: [VIRTIO_IOMMU_FAULT_R_MAPPING, 'translation', 'stage-1 table address not mapped by the parent domain'],
  [F.S2Output]: [VIRTIO_IOMMU_FAULT_R_MAPPING, 'translation', 'stage-1 output not mapped (or not permitted) by the parent domain'],
  [F.BadConfig]: [VIRTIO_IOMMU_FAULT_R_UNKNOWN, 'bad-config', 'invalid table descriptor'],
  [F.BusError]: [VIRTIO_IOMMU_FAULT_R_UNKNOWN, 'external-abort', 'physical address beyond memory'],
  [F.PasidUnsupported]: [VIRTIO_IOMMU_FAULT_R_UNKNOWN, 'blocked', 'PASID-tagged request without the extension'],
};

/** Resolved translation for a DMA. */
const T = {
  Bypass: 0,
  Mappings: 1,
  Table: 2,
  Cd: 3,
} as const;

/** 1 / 4096: a page-aligned address times this is its frame number, exactly (no division). */
const INV_PAGE = 1 / PAGE;

/**
 * Copies `len` bytes at `pa` into `out[off …)`. A few bytes within one frame come straight from
 * the frame's 32-bit words (little-endian, as `PhysicalMemoryLike` stores them; a frame never
 * written reads as zero): integer arithmetic only, where the general copy works out page offsets
 * with float division. Longer reads go through `readInto`.
 */
function readBytes(mem: PhysicalMemoryLike, pa: number, out: Uint8Array, off: number, len: number): void {
  const o = pa & 0xfff; // the low bits survive ToInt32 for any address below 2^53
  if (len > 16 || o + len > PAGE) {
    mem.readInto(pa, out, off, len);
    return;
  }
  copyFrameBytes(mem.frameWords((pa - o) * INV_PAGE), o, out, off, len);
}


/** (h1:l1) < (h2:l2), 64-bit values as 32-bit halves. */
function lt64(h1: number, l1: number, h2: number, l2: number): boolean {
  return h1 < h2 || (h1 === h2 && l1 < l2);
}

/** `hi:lo` is a multiple of 2^shift. */
function lowBitsZero(hi: number, lo: number, shift: number): boolean {
  return shift <= 32 ? lo % 2 ** shift === 0 : lo === 0 && hi % 2 ** (shift - 32) === 0;
}

/** `hi:lo` + 1 is a multiple of 2^shift (modulo 2^64): its low `shift` bits are all ones. */
function lowBitsOnes(hi: number, lo: number, shift: number): boolean {
  return shift <= 32 ? lo % 2 ** shift === 2 ** shift - 1 : lo === 0xffffffff && hi % 2 ** (shift - 32) === 2 ** (shift - 32) - 1;
}

/** phys + (end − start) ≥ 2^64, for start ≤ end. */
function physEndOverflows(sHi: number, sLo: number, eHi: number, eLo: number, pHi: number, pLo: number): boolean {
  let dLo = eLo - sLo;
  let dHi = eHi - sHi;
  if (dLo < 0) {
    dLo += TWO32;
    dHi--;
  }
  const carry = pLo + dLo >= TWO32 ? 1 : 0;
  return pHi + dHi + carry >= TWO32;
}

/** The virtio-iommu device model. */
export class VirtioIommuDevice {
  /** The profile in force. */
  readonly profile: VirtioIommuProfile;
  /** Feature bits offered. */
  readonly deviceFeatures: bigint;
  /** Records dropped because the event queue was full. */
  eventsDropped = 0;
  /** DMA writes that hit an MSI doorbell region (interrupt messages, not memory writes). */
  msiWrites = 0;
  /** The stage-1 translation cache (extension tables). */
  readonly iotlb: Iotlb;
  /** The MAP/UNMAP translation cache (coherent: UNMAP drops what it removes). */
  readonly mapCache: MapCache;

  private readonly memory: PhysicalMemoryLike;
  private readonly endpoints = new Map<number, EndpointState>();
  private readonly domains = new Map<number, Domain>();
  private negotiated: bigint | undefined;
  private bypassByte: number;
  private readonly pageSizeMask: bigint;
  private readonly inputStart: bigint;
  private readonly inputEnd: bigint;
  private readonly domainStart: number;
  private readonly domainEnd: number;
  private readonly probeSize: number;
  private readonly resvMem: readonly ResvMem[];
  private readonly resvNum: readonly { readonly start: number; readonly end: number; readonly msi: boolean }[];
  private readonly events: Uint8Array[] = [];
  private readonly eventQueueSize: number;
  private interrupt: (() => void) | undefined;
  private nextCtx = 1;
  private nextTag = 1;
  /** The page of the last {@link lookupMapped} is one the translation cache takes. */
  private cleanPage = false;
  /** Bits 31:0 and 63:32 of the features in force. */
  private readonly featureWords = new Uint32Array(2);
  /** The last endpoint a DMA came from (a known one). */
  private lastEp: EndpointState | undefined;
  /**
   * The resolution of the last DMA without PASID, kept for the hit path of {@link dmaInto}: the
   * endpoint ID (-1: none) whose requests go to the MAP/UNMAP mappings of the domain with this
   * translation-cache tag. It is a configuration cache: every request that can change what an
   * endpoint is attached to or how its domain translates (any but MAP and UNMAP, which change
   * only mappings — the translation cache is coherent with those), a reset, feature
   * negotiation, a config-space write and {@link flushCaches} drop it.
   */
  private resolvedEndpoint = -1;
  private resolvedTag = 0;
  private resolvedDomain: Domain | undefined;
  /** The IOVA of the DMA in progress, split into 32-bit words without allocating. */
  private readonly iovaSplit = new BigUint64Array(1);
  private readonly iovaWords = new Uint32Array(this.iovaSplit.buffer);
  /** log2 of the granule (the smallest page size). */
  private readonly granuleShift: number;
  /** input_range start and end as 32-bit halves. */
  private readonly inputWords: readonly [number, number, number, number];
  /** RESV_MEM regions as 32-bit halves: start hi, lo, end hi, lo. */
  private readonly resvWords: Float64Array;
  /** RESV_MEM regions as the 4 KiB page numbers of their first and last byte (exact: below 2^52). */
  private readonly resvPages: Float64Array;
  /** The parent of the nested walk in progress, and the walker's view of it (one function for the device's lifetime). */
  private walkParent: Domain | undefined;
  private readonly walkStage2: Stage2Read = (ipa) => this.stage2(this.walkParent!, ipa, false);
  private readonly walkOut: WalkOut = { opfn: 0, perms: 0, level: 0, where: 0 };
  private segPa = new Float64Array(16);
  private segLen = new Int32Array(16);
  // Scratch of the DMA in progress (avoids allocation per page).
  private curDomain: Domain | undefined;
  private curTable: TableContext | undefined;
  private curCd: Stage1Config | undefined;
  private curCdCtx = 0;
  private curIopf = false;
  private curFaultLevel = -1;

  /** @param options - memory, endpoints, features, profile */
  constructor(options: VirtioIommuDeviceOptions) {
    const p = typeof options.profile === 'object' ? options.profile : PROFILES[options.profile ?? 'strict'];
    this.profile = p;
    this.memory = options.memory;
    this.deviceFeatures = options.features ?? p.features;
    this.syncFeatures();
    const c = options.config ?? {};
    this.pageSizeMask = c.pageSizeMask ?? p.pageSizeMask;
    this.inputStart = c.inputStart ?? p.inputStart;
    this.inputEnd = c.inputEnd ?? p.inputEnd;
    this.domainStart = c.domainStart ?? p.domainStart;
    this.domainEnd = c.domainEnd ?? p.domainEnd;
    this.probeSize = c.probeSize ?? p.probeSize;
    this.bypassByte = (c.bypass ?? p.bypass) & 1;
    this.resvMem = c.resvMem ?? p.resvMem;
    this.resvNum = this.resvMem.map((r) => ({ start: Number(r.start), end: Number(r.end), msi: r.subtype === VIRTIO_IOMMU_RESV_MEM_T_MSI }));
    let g = 1n;
    while (g < 1n << 63n && (this.pageSizeMask & g) === 0n) g <<= 1n;
    let shift = 0;
    while (1n << BigInt(shift) < g) shift++;
    this.granuleShift = shift;
    this.inputWords = [Number(this.inputStart >> 32n) >>> 0, Number(this.inputStart & 0xffffffffn), Number(this.inputEnd >> 32n) >>> 0, Number(this.inputEnd & 0xffffffffn)];
    this.resvWords = new Float64Array(this.resvMem.length * 4);
    this.resvPages = Float64Array.from(this.resvMem.flatMap((r) => [Number(r.start >> 12n), Number(r.end >> 12n)]));
    this.resvMem.forEach((r, i) => {
      this.resvWords.set([Number(r.start >> 32n), Number(r.start & 0xffffffffn), Number(r.end >> 32n), Number(r.end & 0xffffffffn)], i * 4);
    });
    this.iotlb = new Iotlb(options.iotlbEntries ?? 512);
    this.mapCache = new MapCache(options.mapCacheEntries ?? 1024);
    this.eventQueueSize = options.eventQueueSize ?? 64;
    for (const id of options.endpoints) this.endpoints.set(id >>> 0, this.newEndpoint(id >>> 0, true));
  }

  private newEndpoint(id: number, known: boolean): EndpointState {
    return { id, known, domain: undefined, pasids: new Map(), groups: new Map(), nextGroup: 0 };
  }

  // ---------------------------------------------------------------- transport surface

  /** Negotiated features (the offered ones until the driver negotiates). */
  get features(): bigint {
    return this.negotiated ?? this.deviceFeatures;
  }

  /**
   * The driver writes the features it accepts and sets FEATURES_OK: the device keeps
   * FEATURES_OK (returns true) only when every accepted bit was offered.
   */
  negotiate(driverFeatures: bigint): boolean {
    if ((driverFeatures & ~this.deviceFeatures) !== 0n) return false;
    this.negotiated = driverFeatures;
    this.syncFeatures();
    this.resolvedEndpoint = -1;
    return true;
  }

  /** Device reset: no endpoint attached, no domain, features to renegotiate; `bypass` is kept (spec: sticky over device reset). */
  reset(): void {
    for (const ep of this.endpoints.values()) {
      ep.domain = undefined;
      ep.pasids.clear();
      ep.groups.clear();
    }
    for (const [id, ep] of this.endpoints) if (!ep.known) this.endpoints.delete(id);
    this.domains.clear();
    this.iotlb.clear();
    this.mapCache.clear();
    this.lastEp = undefined;
    this.resolvedEndpoint = -1;
    this.negotiated = undefined;
    this.syncFeatures();
    this.events.length = 0;
  }

  /** The 40-byte config space. */
  readConfig(): Uint8Array {
    return encodeConfig({
      pageSizeMask: this.pageSizeMask,
      inputStart: hasFeature(this.deviceFeatures, VIRTIO_IOMMU_F_INPUT_RANGE) ? this.inputStart : 0n,
      inputEnd: hasFeature(this.deviceFeatures, VIRTIO_IOMMU_F_INPUT_RANGE) ? this.inputEnd : U64_MAX,
      domainStart: hasFeature(this.deviceFeatures, VIRTIO_IOMMU_F_DOMAIN_RANGE) ? this.domainStart : 0,
      domainEnd: hasFeature(this.deviceFeatures, VIRTIO_IOMMU_F_DOMAIN_RANGE) ? this.domainEnd : 0xffffffff,
      probeSize: hasFeature(this.deviceFeatures, VIRTIO_IOMMU_F_PROBE) ? this.probeSize : 0,
      bypass: hasFeature(this.deviceFeatures, VIRTIO_IOMMU_F_BYPASS_CONFIG) ? this.bypassByte : 0,
    });
  }

  /**
   * A driver write to the config space. Only `bypass` is writable, and only with
   * BYPASS_CONFIG negotiated; the device keeps bit 0 (it never presents anything but 0 or 1).
   * Other writes are ignored.
   */
  writeConfig(offset: number, data: Uint8Array): void {
    if (offset !== CONFIG_BYPASS || data.length < 1 || !this.neg(VIRTIO_IOMMU_F_BYPASS_CONFIG)) return;
    this.bypassByte = data[0]! & 1;
    this.resolvedEndpoint = -1;
  }

  /** Registers the eventq notification (called after each record the device writes). */
  setEventNotifier(notify: (() => void) | undefined): void {
    this.interrupt = notify;
  }

  /** The fault records (24 bytes each) written since the last call. */
  takeEvents(): Uint8Array[] {
    return this.events.splice(0, this.events.length);
  }

  /** Keeps the 32-bit words of {@link features} that {@link neg} tests (no BigInt per request). */
  private syncFeatures(): void {
    const f = this.features;
    this.featureWords[0] = Number(f & 0xffffffffn);
    this.featureWords[1] = Number((f >> 32n) & 0xffffffffn);
  }

  private neg(bit: number): boolean {
    return bit < 64 && ((this.featureWords[bit >>> 5]! >>> (bit & 31)) & 1) === 1;
  }

  private get ext(): boolean {
    return this.neg(VIRTIO_IOMMU_F_X_IOASID);
  }

  // ---------------------------------------------------------------- request virtqueue

  /**
   * Processes one request: `readable` is its device-readable part; `writableLength` the size of
   * the device-writable buffer (default: what the type needs — the tail, or properties and tail
   * for PROBE). Returns the bytes the device wrote (empty: used length 0, nothing written).
   */
  request(readable: Uint8Array, writableLength?: number): Uint8Array {
    const p = this.profile;
    // Any request but MAP/UNMAP may change what an endpoint resolves to: the hit path's copy goes.
    const t0 = readable[0];
    if (t0 !== VIRTIO_IOMMU_T_MAP && t0 !== VIRTIO_IOMMU_T_UNMAP) this.resolvedEndpoint = -1;
    if (readable.length < HEAD_SIZE) {
      if (p.shortRequest === 'unwritten') return new Uint8Array(0);
      return this.tail(writableLength ?? TAIL_SIZE, p.shortRequest === 'qemu' ? VIRTIO_IOMMU_S_DEVERR : VIRTIO_IOMMU_S_INVAL);
    }
    const type = readable[0]!;
    const size = readableSize(type) ?? (this.ext ? extensionReadableSize(type) : undefined);
    if (size === undefined) {
      // Spec: an unrecognised type is not written and the used length is 0. QEMU writes UNSUPP.
      return p.unknownType === 'unsupp' ? this.tail(writableLength ?? TAIL_SIZE, VIRTIO_IOMMU_S_UNSUPP) : new Uint8Array(0);
    }
    if (type === VIRTIO_IOMMU_T_PROBE && !hasFeature(this.deviceFeatures, VIRTIO_IOMMU_F_PROBE)) return new Uint8Array(0);
    const expectedWritable = type === VIRTIO_IOMMU_T_PROBE ? this.probeSize + TAIL_SIZE : TAIL_SIZE;
    const wlen = writableLength ?? expectedWritable;
    if (wlen < TAIL_SIZE) return new Uint8Array(0);
    if (readable.length < size) {
      if (p.shortRequest === 'unwritten') return new Uint8Array(0);
      return this.tail(wlen, VIRTIO_IOMMU_S_INVAL);
    }
    if (p.exactSize && (readable.length !== size || wlen !== expectedWritable)) return this.tail(wlen, VIRTIO_IOMMU_S_INVAL);
    if (type === VIRTIO_IOMMU_T_PROBE) return this.probe(readable, wlen);
    let status: number;
    switch (type) {
      case VIRTIO_IOMMU_T_ATTACH:
        status = this.attach(readable);
        break;
      case VIRTIO_IOMMU_T_DETACH:
        status = this.detach(readable);
        break;
      case VIRTIO_IOMMU_T_MAP:
        status = this.neg(VIRTIO_IOMMU_F_MAP_UNMAP) ? this.map(readable) : VIRTIO_IOMMU_S_UNSUPP;
        break;
      case VIRTIO_IOMMU_T_UNMAP:
        status = this.neg(VIRTIO_IOMMU_F_MAP_UNMAP) ? this.unmap(readable) : VIRTIO_IOMMU_S_UNSUPP;
        break;
      case VIRTIO_IOMMU_T_ATTACH_TABLE:
        status = this.attachTable(readable);
        break;
      case VIRTIO_IOMMU_T_INVALIDATE:
        status = this.invalidate(readable);
        break;
      default: // VIRTIO_IOMMU_T_PAGE_RESP
        status = this.pageResp(readable);
    }
    return this.tail(wlen, status);
  }

  private tail(wlen: number, status: number): Uint8Array {
    if (wlen < TAIL_SIZE) return new Uint8Array(0);
    const out = new Uint8Array(wlen);
    out[wlen - TAIL_SIZE] = status;
    return out;
  }

  private endpoint(id: number): EndpointState | undefined {
    const ep = this.endpoints.get(id);
    if (ep !== undefined || this.profile.checksEndpoint) return ep;
    // cloud-hypervisor keeps no endpoint list: any ID is accepted.
    const made = this.newEndpoint(id, false);
    this.endpoints.set(id, made);
    return made;
  }

  private domainInRange(id: number): boolean {
    return !this.profile.checksDomainRange || !hasFeature(this.deviceFeatures, VIRTIO_IOMMU_F_DOMAIN_RANGE) ||
      (id >= this.domainStart && id <= this.domainEnd);
  }

  /** True when moving `ep` out of `from` is impossible for this device (crosvm). */
  private cannotLeave(from: Domain | undefined, to: Domain | undefined): boolean {
    return this.profile.cannotLeaveSharedDomain && from !== undefined && from !== to && from.attachments > 1;
  }

  private createDomain(id: number, bypass: boolean, anonymous: boolean, parent: Domain | undefined, iopf = false): Domain | undefined {
    if (this.domains.size >= this.profile.maxDomains) return undefined;
    const d: Domain = { id, tag: this.nextTag++, bypass, anonymous, iopf, mappings: new MappingTree(), parent, children: 0, attachments: 0, noPasid: undefined, pasidCtx: new Map() };
    if (parent) parent.children++;
    this.domains.set(id, d);
    return d;
  }

  private release(d: Domain): void {
    if (d.attachments > 0 || d.children > 0) return;
    // The last endpoint left: the domain ceases to exist with its mappings and contexts.
    this.domains.delete(d.id);
    d.mappings.clear();
    this.dropContexts(d);
    const parent = d.parent;
    d.parent = undefined;
    if (parent) {
      parent.children--;
      this.release(parent);
    }
  }

  private dropContexts(d: Domain): void {
    const n = d.noPasid;
    if (n?.kind === 'lpae') this.iotlb.invalidateContext(n.ctx);
    if (n?.kind === 'cd') for (const c of n.ctxs.values()) this.iotlb.invalidateContext(c);
    for (const c of d.pasidCtx.values()) this.iotlb.invalidateContext(c.ctx);
    d.noPasid = undefined;
    d.pasidCtx.clear();
  }

  private allocCtx(): number {
    if (this.nextCtx >= 0xffff) {
      this.iotlb.clear();
      this.nextCtx = 1;
    }
    return this.nextCtx++;
  }

  /** Attaches `ep` (or its PASID) to `d`, detaching it from where it was. */
  private bind(ep: EndpointState, pasid: number | undefined, d: Domain): void {
    const old = pasid === undefined ? ep.domain : ep.pasids.get(pasid);
    if (old === d) return;
    d.attachments++;
    if (pasid === undefined) ep.domain = d;
    else ep.pasids.set(pasid, d);
    if (old) {
      old.attachments--;
      this.release(old);
    }
  }

  private unbind(ep: EndpointState, pasid: number | undefined): void {
    const old = pasid === undefined ? ep.domain : ep.pasids.get(pasid);
    if (old === undefined) return;
    if (pasid === undefined) ep.domain = undefined;
    else ep.pasids.delete(pasid);
    old.attachments--;
    this.release(old);
  }

  private attach(r: Uint8Array): number {
    const p = this.profile;
    const domainId = le32(r, REQ_DOMAIN);
    const flags = le32(r, ATTACH_FLAGS);
    let known = 0;
    if (this.neg(VIRTIO_IOMMU_F_BYPASS_CONFIG)) known |= VIRTIO_IOMMU_ATTACH_F_BYPASS;
    if (this.ext) known |= VIRTIO_IOMMU_ATTACH_F_X_NO_DEFAULT | VIRTIO_IOMMU_ATTACH_F_X_PASID | VIRTIO_IOMMU_ATTACH_F_X_IOPF;
    const pasidMode = (flags & VIRTIO_IOMMU_ATTACH_F_X_PASID) !== 0 && this.ext;
    const reservedBad = !pasidMode && p.attachChecksReserved && le32(r, ATTACH_RESERVED) !== 0;
    // Spec: reserved ≠ 0 → INVAL (MUST); unknown flag → INVAL (MUST).
    if (reservedBad || (flags & ~known) !== 0) return VIRTIO_IOMMU_S_INVAL;
    const ep = this.endpoint(le32(r, REQ_ENDPOINT));
    if (ep === undefined) return VIRTIO_IOMMU_S_NOENT;
    // Spec gives no status for a domain outside domain_range; RANGE ("out-of-range parameters").
    if (!this.domainInRange(domainId)) return VIRTIO_IOMMU_S_RANGE;
    const pasid = pasidMode ? le32(r, ATTACH_X_PASID) : undefined;
    if (pasid !== undefined && pasid >= PASID_LIMIT) return VIRTIO_IOMMU_S_RANGE;
    const bypass = (flags & VIRTIO_IOMMU_ATTACH_F_BYPASS) !== 0;
    const anonymous = (flags & VIRTIO_IOMMU_ATTACH_F_X_NO_DEFAULT) === 0;
    const iopf = (flags & VIRTIO_IOMMU_ATTACH_F_X_IOPF) !== 0;
    // Extension: F_X_IOPF needs the anonymous MAP/UNMAP context to fault in.
    if (iopf && (bypass || !anonymous)) return VIRTIO_IOMMU_S_INVAL;
    const existing = this.domains.get(domainId);
    const current = pasid === undefined ? ep.domain : ep.pasids.get(pasid);
    if (this.cannotLeave(current, existing)) return VIRTIO_IOMMU_S_UNSUPP;
    if (p.detachBeforeBypassCheck && current !== existing) {
      // QEMU detaches first and checks the bypass flag afterwards: an INVAL leaves the endpoint detached.
      this.unbind(ep, pasid);
    }
    const target = this.domains.get(domainId);
    // Spec: the BYPASS flag disagrees with the existing domain → INVAL (SHOULD); likewise the
    // extension's NO_DEFAULT and IOPF flags.
    if (target && (target.bypass !== bypass || (!bypass && (target.anonymous !== anonymous || target.iopf !== iopf)))) return VIRTIO_IOMMU_S_INVAL;
    const d = target ?? this.createDomain(domainId, bypass, anonymous && !bypass, undefined, iopf);
    if (d === undefined) return VIRTIO_IOMMU_S_NOMEM;
    this.bind(ep, pasid, d);
    return VIRTIO_IOMMU_S_OK;
  }

  private detach(r: Uint8Array): number {
    const ep = this.endpoint(le32(r, REQ_ENDPOINT));
    if (ep === undefined) return VIRTIO_IOMMU_S_NOENT;
    let pasid: number | undefined;
    if (this.ext) {
      const flags = le32(r, DETACH_X_FLAGS);
      if ((flags & ~VIRTIO_IOMMU_DETACH_F_X_PASID) !== 0) return VIRTIO_IOMMU_S_INVAL;
      if (flags !== 0) pasid = le32(r, DETACH_X_PASID);
    } // else reserved[8] (DETACH_RESERVED): the device MUST ignore it
    const d = this.domains.get(le32(r, REQ_DOMAIN));
    const current = pasid === undefined ? ep.domain : ep.pasids.get(pasid);
    // Spec: no such domain, or the endpoint is not attached to it → INVAL (MAY).
    if (d === undefined || current !== d) return VIRTIO_IOMMU_S_INVAL;
    if (this.cannotLeave(d, undefined)) return VIRTIO_IOMMU_S_UNSUPP;
    this.unbind(ep, pasid);
    return VIRTIO_IOMMU_S_OK;
  }

  private map(r: Uint8Array): number {
    const p = this.profile;
    const flags = le32(r, MAP_FLAGS);
    // 64-bit fields as 32-bit halves: a MAP allocates no BigInt.
    const sLo = le32(r, REQ_VIRT_START);
    const sHi = le32(r, REQ_VIRT_START + 4);
    const eLo = le32(r, REQ_VIRT_END);
    const eHi = le32(r, REQ_VIRT_END + 4);
    const pLo = le32(r, MAP_PHYS_START);
    const pHi = le32(r, MAP_PHYS_START + 4);
    let known = VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE;
    if (this.neg(VIRTIO_IOMMU_F_MMIO)) known |= VIRTIO_IOMMU_MAP_F_MMIO;
    const g = this.granuleShift;
    const misaligned = p.mapChecksAlignment && (!lowBitsZero(sHi, sLo, g) || !lowBitsZero(pHi, pLo, g) || !lowBitsOnes(eHi, eLo, g));
    if (p.alignmentBeforeFlags && misaligned) return VIRTIO_IOMMU_S_RANGE;
    // Spec: unrecognised flag → INVAL (MUST); MMIO is unrecognised without F_MMIO negotiated.
    if ((flags & ~known) !== 0) return VIRTIO_IOMMU_S_INVAL;
    const d = this.domains.get(le32(r, REQ_DOMAIN));
    if (d === undefined) return VIRTIO_IOMMU_S_NOENT;
    if (d.bypass || !d.anonymous) return VIRTIO_IOMMU_S_INVAL;
    // Spec: virt_start, phys_start or virt_end + 1 not aligned on the granule → RANGE (SHOULD).
    if (misaligned) return VIRTIO_IOMMU_S_RANGE;
    const inverted = lt64(eHi, eLo, sHi, sLo);
    // virt_end MUST be > virt_start (driver rule); the device answers RANGE (reasoned choice).
    if (p.mapChecksOrder && inverted) return VIRTIO_IOMMU_S_RANGE;
    // "Any mapping request to virtual addresses outside of this range fails": RANGE.
    const iw = this.inputWords;
    if (p.checksInputRange && (lt64(sHi, sLo, iw[0], iw[1]) || lt64(iw[2], iw[3], eHi, eLo))) return VIRTIO_IOMMU_S_RANGE;
    if (!inverted && physEndOverflows(sHi, sLo, eHi, eLo, pHi, pLo)) return VIRTIO_IOMMU_S_RANGE;
    // Spec: the device SHOULD reject a MAP overlapping a RESV_MEM region (no status given): INVAL.
    if (p.mapChecksResvMem && this.resvOverlaps(sHi, sLo, eHi, eLo)) return VIRTIO_IOMMU_S_INVAL;
    // Spec: a mapping already exists in the range → INVAL (SHOULD).
    if (d.mappings.intersects(sHi, sLo, eHi, eLo)) return VIRTIO_IOMMU_S_INVAL;
    if (d.mappings.size >= p.maxMappings) return VIRTIO_IOMMU_S_NOMEM;
    d.mappings.insert(sHi, sLo, eHi, eLo, pHi, pLo, flags);
    return VIRTIO_IOMMU_S_OK;
  }

  /** Some RESV_MEM region has a byte in the 4 KiB page `vpn` (page numbers only: no 64-bit compare). */
  private resvTouchesPage(vpn: number): boolean {
    const r = this.resvPages;
    for (let i = 0; i < r.length; i += 2) if (vpn >= r[i]! && vpn <= r[i + 1]!) return true;
    return false;
  }

  /** Some RESV_MEM region intersects `[start, end]`. */
  private resvOverlaps(sHi: number, sLo: number, eHi: number, eLo: number): boolean {
    const w = this.resvWords;
    for (let i = 0; i < w.length; i += 4) {
      if (!lt64(eHi, eLo, w[i]!, w[i + 1]!) && !lt64(w[i + 2]!, w[i + 3]!, sHi, sLo)) return true;
    }
    return false;
  }

  private unmap(r: Uint8Array): number {
    const p = this.profile;
    const sLo = le32(r, REQ_VIRT_START);
    const sHi = le32(r, REQ_VIRT_START + 4);
    const eLo = le32(r, REQ_VIRT_END);
    const eHi = le32(r, REQ_VIRT_END + 4);
    // Spec: reserved ≠ 0 MAY be INVAL; strict answers INVAL and changes nothing.
    if (p.attachChecksReserved && le32(r, UNMAP_RESERVED) !== 0) return VIRTIO_IOMMU_S_INVAL;
    const d = this.domains.get(le32(r, REQ_DOMAIN));
    if (d === undefined) return VIRTIO_IOMMU_S_NOENT;
    if (d.bypass || !d.anonymous) return VIRTIO_IOMMU_S_INVAL;
    const iw = this.inputWords;
    if (p.unmapChecksInputRange && (lt64(sHi, sLo, iw[0], iw[1]) || lt64(iw[2], iw[3], eHi, eLo))) return VIRTIO_IOMMU_S_RANGE;
    const inverted = lt64(eHi, eLo, sHi, sLo);
    if (p.mapChecksOrder && inverted) return VIRTIO_IOMMU_S_RANGE;
    // Nothing is split: every mapping inside the range goes. A split: RANGE, and QEMU still
    // removes the inside mappings met before the one it would split.
    const ok = d.mappings.unmap(sHi, sLo, eHi, eLo, p.unmapPartial);
    // Whatever went lies inside the range: its pages leave the translation cache before the request completes.
    if (!inverted) this.mapCache.invalidate(d.tag, sHi, sLo, eHi, eLo);
    return ok ? VIRTIO_IOMMU_S_OK : VIRTIO_IOMMU_S_RANGE;
  }

  private probe(r: Uint8Array, wlen: number): Uint8Array {
    const out = new Uint8Array(wlen);
    const tailAt = wlen - TAIL_SIZE;
    // reserved[64] after the endpoint is ignored (MUST)
    const ep = this.endpoint(le32(r, PROBE_ENDPOINT));
    if (ep === undefined) {
      out[tailAt] = VIRTIO_IOMMU_S_NOENT;
      return out;
    }
    const need = this.resvMem.length * (PROBE_PROPERTY_HEADER_SIZE + RESV_MEM_LENGTH);
    // Spec: properties[] smaller than probe_size → write no property, INVAL (SHOULD). A device
    // whose properties do not fit probe_size answers INVAL too (QEMU).
    if (tailAt < this.probeSize || need > this.probeSize) {
      out[tailAt] = VIRTIO_IOMMU_S_INVAL;
      return out;
    }
    let off = 0;
    for (const m of this.resvMem) off = writeResvMem(out, off, m);
    out[tailAt] = VIRTIO_IOMMU_S_OK;
    return out;
  }

  // ---------------------------------------------------------------- extension requests

  private attachTable(r: Uint8Array): number {
    const flags = le32(r, AT_FLAGS);
    const format = le16(r, AT_FORMAT);
    if ((flags & ~ATTACH_TABLE_FLAGS) !== 0 || le16(r, AT_RESERVED) !== 0) return VIRTIO_IOMMU_S_INVAL;
    let lpae: Stage1Config | undefined;
    let cd: { base: number; cdmax: number; s1dss: number } | undefined;
    if (format === VIRTIO_IOMMU_X_FORMAT_ARM_LPAE_S1) {
      if (!allZero(r, AT_DESC + 2, LPAE_TCR) || !allZero(r, AT_DESC + 32, AT_DESC + 44)) return VIRTIO_IOMMU_S_INVAL;
      const tcrLo = le32(r, LPAE_TCR);
      const t0sz = tcrLo & 0x3f;
      // Only the 4 KiB granule (TG0 = 0b00) and T0SZ 16..39 (Arm ARM, no FEAT_TTST/LPA2).
      if (((tcrLo >>> 14) & 3) !== 0 || t0sz < 16 || t0sz > 39) return VIRTIO_IOMMU_S_INVAL;
      const ttbrLo = le32(r, LPAE_TTBR0);
      const ttbrHi = le32(r, LPAE_TTBR0 + 4) & 0xffff; // TTBR0 bits 63:48 are the ASID
      lpae = { root: ttbrHi * TWO32 + ((ttbrLo & 0xfffffffe) >>> 0), t0sz, startLevel: 4 - Math.ceil((64 - t0sz - 12) / 9), epd0: (tcrLo & (1 << 7)) !== 0, affd: false };
    } else if (format === VIRTIO_IOMMU_X_FORMAT_SMMUV3_CD) {
      if (!allZero(r, AT_DESC + 2, CDT_S1CDMAX) || !allZero(r, AT_DESC + 16, AT_DESC + 44)) return VIRTIO_IOMMU_S_INVAL;
      if ((flags & VIRTIO_IOMMU_ATTACH_TABLE_F_PASID) !== 0) return VIRTIO_IOMMU_S_INVAL;
      if (r[CDT_S1FMT] !== 0) return VIRTIO_IOMMU_S_UNSUPP; // only the linear CD table
      const s1dss = r[CDT_S1DSS]!;
      const cdmax = le32(r, CDT_S1CDMAX);
      if (s1dss > 2) return VIRTIO_IOMMU_S_INVAL;
      if (cdmax > 20) return VIRTIO_IOMMU_S_RANGE;
      const base = Number(le64(r, CDT_S1CONTEXTPTR) & 0xffffffffffc0n);
      // SMMUv3: a linear table is aligned to its size (S1ContextPtr[S1CDMax+5:6] RES0).
      if (base % (CD_SIZE * 2 ** cdmax) !== 0) return VIRTIO_IOMMU_S_INVAL;
      cd = { base, cdmax, s1dss };
    } else return VIRTIO_IOMMU_S_UNSUPP;
    const ep = this.endpoint(le32(r, AT_ENDPOINT));
    if (ep === undefined) return VIRTIO_IOMMU_S_NOENT;
    const domainId = le32(r, REQ_DOMAIN);
    if (!this.domainInRange(domainId)) return VIRTIO_IOMMU_S_RANGE;
    const pasid = (flags & VIRTIO_IOMMU_ATTACH_TABLE_F_PASID) !== 0 ? le32(r, AT_PASID) : undefined;
    const epPasid = (flags & VIRTIO_IOMMU_ATTACH_TABLE_F_EP_PASID) !== 0 ? le32(r, AT_EP_PASID) : undefined;
    if ((pasid ?? 0) >= PASID_LIMIT || (epPasid ?? 0) >= PASID_LIMIT) return VIRTIO_IOMMU_S_RANGE;
    let parent: Domain | undefined;
    if ((flags & VIRTIO_IOMMU_ATTACH_TABLE_F_PARENT) !== 0) {
      const parentId = le32(r, AT_PARENT);
      if (parentId === domainId) return VIRTIO_IOMMU_S_INVAL;
      parent = this.domains.get(parentId);
      if (parent === undefined) return VIRTIO_IOMMU_S_NOENT;
      // A parent provides the stage-2 mappings: it must be a MAP/UNMAP domain and not nested itself.
      if (parent.bypass || !parent.anonymous || parent.parent !== undefined) return VIRTIO_IOMMU_S_INVAL;
    }
    const existing = this.domains.get(domainId);
    if (existing) {
      if (existing.bypass) return VIRTIO_IOMMU_S_INVAL;
      if (parent !== undefined && existing.parent !== parent) return VIRTIO_IOMMU_S_INVAL;
      if (pasid === undefined && existing.anonymous) return VIRTIO_IOMMU_S_INVAL;
      if (cd && existing.pasidCtx.size > 0) return VIRTIO_IOMMU_S_INVAL;
      if (lpae && existing.noPasid?.kind === 'cd') return VIRTIO_IOMMU_S_INVAL;
    }
    const current = epPasid === undefined ? ep.domain : ep.pasids.get(epPasid);
    if (this.cannotLeave(current, existing)) return VIRTIO_IOMMU_S_UNSUPP;
    const d = existing ?? this.createDomain(domainId, false, false, parent);
    if (d === undefined) return VIRTIO_IOMMU_S_NOMEM;
    const iopf = (flags & VIRTIO_IOMMU_ATTACH_TABLE_F_IOPF) !== 0;
    if (lpae) {
      const ctx: TableContext = { kind: 'lpae', ctx: this.allocCtx(), cfg: lpae, iopf };
      const old = pasid === undefined ? d.noPasid : d.pasidCtx.get(pasid);
      if (old?.kind === 'lpae') this.iotlb.invalidateContext(old.ctx);
      if (pasid === undefined) d.noPasid = ctx;
      else d.pasidCtx.set(pasid, ctx);
    } else if (cd) {
      this.dropContexts(d);
      d.noPasid = { kind: 'cd', ...cd, iopf, ctxs: new Map(), cache: new Map() };
    }
    this.bind(ep, epPasid, d);
    return VIRTIO_IOMMU_S_OK;
  }

  private invalidate(r: Uint8Array): number {
    const scope = le16(r, INV_SCOPE);
    const flags = le16(r, INV_FLAGS);
    if (!allZero(r, INV_RESERVED, INV_RESERVED + 19)) return VIRTIO_IOMMU_S_INVAL;
    if ((flags & ~(VIRTIO_IOMMU_INVAL_F_CONFIG | VIRTIO_IOMMU_INVAL_F_LEAF | VIRTIO_IOMMU_INVAL_F_X_PASID)) !== 0) return VIRTIO_IOMMU_S_INVAL;
    if (scope !== VIRTIO_IOMMU_INVAL_S_DOMAIN && scope !== VIRTIO_IOMMU_INVAL_S_PASID && scope !== VIRTIO_IOMMU_INVAL_S_VA) return VIRTIO_IOMMU_S_INVAL;
    const d = this.domains.get(le32(r, INV_DOMAIN));
    if (d === undefined) return VIRTIO_IOMMU_S_NOENT;
    const hasPasid = (flags & VIRTIO_IOMMU_INVAL_F_X_PASID) !== 0;
    const pasid = le32(r, INV_PASID);
    if (scope === VIRTIO_IOMMU_INVAL_S_PASID && !hasPasid) return VIRTIO_IOMMU_S_INVAL;
    if (hasPasid && pasid >= PASID_LIMIT) return VIRTIO_IOMMU_S_RANGE;
    const config = (flags & VIRTIO_IOMMU_INVAL_F_CONFIG) !== 0;
    if (scope === VIRTIO_IOMMU_INVAL_S_DOMAIN) {
      const n = d.noPasid;
      if (n?.kind === 'cd') {
        for (const c of n.ctxs.values()) this.iotlb.invalidateContext(c);
        if (config) n.cache.clear();
      } else if (n) this.iotlb.invalidateContext(n.ctx);
      for (const c of d.pasidCtx.values()) this.iotlb.invalidateContext(c.ctx);
      return VIRTIO_IOMMU_S_OK;
    }
    let ctx: number | undefined;
    const n = d.noPasid;
    if (n?.kind === 'cd') {
      const ssid = hasPasid ? pasid : 0;
      ctx = n.ctxs.get(ssid);
      if (config) n.cache.delete(ssid);
    } else ctx = hasPasid ? d.pasidCtx.get(pasid)?.ctx : n?.ctx;
    if (ctx === undefined) return VIRTIO_IOMMU_S_OK;
    if (scope === VIRTIO_IOMMU_INVAL_S_PASID) {
      this.iotlb.invalidateContext(ctx);
      return VIRTIO_IOMMU_S_OK;
    }
    const granule = r[INV_GRANULE]!;
    if (granule !== 12 && granule !== 21 && granule !== 30) return VIRTIO_IOMMU_S_INVAL;
    const start = le64(r, INV_VIRT_START);
    const pages = le64(r, INV_NR_PAGES);
    if (start % (1n << BigInt(granule)) !== 0n) return VIRTIO_IOMMU_S_RANGE;
    if (start >= 1n << 48n) return VIRTIO_IOMMU_S_OK; // nothing cached above the 48-bit input range
    const vpn = Number(start >> 12n);
    const span = pages << BigInt(granule - 12);
    const count = span > 1n << 36n ? 2 ** 36 : Number(span);
    this.iotlb.invalidateRange(ctx, vpn, count);
    return VIRTIO_IOMMU_S_OK;
  }

  private pageResp(r: Uint8Array): number {
    const flags = le32(r, PR_FLAGS);
    const code = le16(r, PR_CODE);
    if ((flags & ~VIRTIO_IOMMU_PAGE_RESP_PASID_VALID) !== 0 || !allZero(r, PR_CODE + 2, PR_CODE + 8)) return VIRTIO_IOMMU_S_INVAL;
    if (code > VIRTIO_IOMMU_PAGE_RESP_FAILURE) return VIRTIO_IOMMU_S_INVAL;
    const ep = this.endpoint(le32(r, PR_ENDPOINT));
    if (ep === undefined) return VIRTIO_IOMMU_S_NOENT;
    const grpid = le32(r, PR_GRPID);
    const pasid = (flags & VIRTIO_IOMMU_PAGE_RESP_PASID_VALID) !== 0 ? le32(r, PR_PASID) : undefined;
    if (!ep.groups.has(grpid) || ep.groups.get(grpid) !== pasid) return VIRTIO_IOMMU_S_INVAL;
    ep.groups.delete(grpid);
    return VIRTIO_IOMMU_S_OK;
  }

  // ---------------------------------------------------------------- DMA path

  /**
   * What the device holds (for tests and reports): each domain with its attachments and its
   * MAP/UNMAP mappings (`[virt_start, virt_end] → phys_start`, flags), by domain ID.
   */
  snapshot(): Map<number, { readonly endpoints: string[]; readonly mappings: string[]; readonly parent: number | undefined }> {
    const out = new Map<number, { endpoints: string[]; mappings: string[]; parent: number | undefined }>();
    for (const d of this.domains.values()) {
      out.set(d.id, {
        endpoints: [],
        mappings: d.mappings.entries().map((m) => `${m.start.toString(16)}-${m.end.toString(16)}>${m.phys.toString(16)}/${m.flags}`),
        parent: d.parent?.id,
      });
    }
    for (const ep of this.endpoints.values()) {
      if (ep.domain) out.get(ep.domain.id)?.endpoints.push(ep.id.toString(16));
      for (const [pasid, d] of ep.pasids) out.get(d.id)?.endpoints.push(`${ep.id.toString(16)}:${pasid}`);
    }
    return out;
  }

  /**
   * Empties every cache the device keeps — the translation caches of
   * {@link flushTranslationCaches}, the fetched CDs and the last endpoint resolution — as if
   * they were cold: the next DMA resolves its endpoint, looks its domain's mappings up and
   * fetches and walks guest tables again. Nothing else changes.
   */
  flushCaches(): void {
    this.flushTranslationCaches();
    for (const d of this.domains.values()) if (d.noPasid?.kind === 'cd') d.noPasid.cache.clear();
    this.resolvedEndpoint = -1;
  }

  /**
   * Empties the translation caches only — the MAP/UNMAP translation cache and the stage-1 TLB,
   * stale entries included — and keeps the configuration caches warm (the fetched CDs, the last
   * endpoint-to-domain resolution): the next DMA looks its page up again, but not its
   * configuration. Nothing else changes.
   */
  flushTranslationCaches(): void {
    this.mapCache.clear();
    this.iotlb.clear();
  }

  /** Mappings the device holds in MAP/UNMAP domains, and the bytes their records take (for reports). */
  mappingStats(): { readonly mappings: number; readonly bytes: number } {
    let mappings = 0;
    let bytes = 0;
    for (const d of this.domains.values()) {
      mappings += d.mappings.size;
      bytes += d.mappings.bytes;
    }
    return { mappings, bytes };
  }

  /** Pending page-request groups of an endpoint (for tests and reports). */
  pendingPageRequests(endpoint: number): number {
    return this.endpoints.get(endpoint)?.groups.size ?? 0;
  }

  /**
   * An endpoint's DMA: translated page by page, all pages checked before memory is touched.
   * Returns the data read, or the fault (also written to the event queue as the profile says).
   */
  dma(req: VirtioIommuDma): DmaResult {
    return this.dmaFrom(req.endpoint, req);
  }

  /**
   * {@link dma} with the endpoint ID given apart, as an endpoint puts its own ID on the bus: a
   * fresh buffer for a read's bytes and a result object around {@link dmaInto}.
   */
  dmaFrom(endpoint: number, req: DmaRequest): DmaResult {
    return dmaResultOf(req, (into) => this.dmaInto(endpoint, req, into));
  }

  /**
   * {@link dmaFrom} without allocating when it succeeds — the system's endpoints call this: a
   * read's `⌊size⌋` bytes land in `into[0 …)` (a write takes `req.data` and leaves `into`
   * alone). Returns `undefined` on success, or the fault, whose record is built only then.
   * `into` shorter than the read is a caller error (RangeError; core's `Endpoint.dmaInto`
   * checks it first). Nothing is written to `into` or to memory unless every page translates.
   */
  dmaInto(endpoint: number, req: DmaRequest, into: Uint8Array): DmaFault | undefined {
    // The hit path, small enough to be inlined into the caller: a read of 1 … 16 bytes within
    // one page, without PASID, from the endpoint whose resolution is cached (a MAP/UNMAP
    // domain), of a page the translation cache holds. Anything else goes the general way.
    const size = req.size;
    if (endpoint === this.resolvedEndpoint && size >= 1 && size <= 16 && !req.write && req.pasid === undefined && into.length >= size) {
      const iova = req.iova;
      // In [0, 2^64) (asUintN returns an in-range IOVA itself: no allocation), then split into
      // 32-bit halves by a BigUint64Array store read back as words: no BigInt.
      if (BigInt.asUintN(64, iova) === iova) {
        this.iovaSplit[0] = iova;
        const lo = this.iovaWords[LO_WORD]!;
        const hi = this.iovaWords[HI_WORD]!;
        const len = size | 0; // ⌊size⌋ for 1 ≤ size ≤ 16
        const o = lo & 0xfff;
        const c = this.mapCache;
        const tag = this.resolvedTag;
        const i = ((lo >>> 12) ^ (hi << 11) ^ (tag << 5)) & c.mask;
        if (o + len <= PAGE && c.tags[i] === tag && c.vpns[i] === hi * HI_PAGES + (lo >>> 12) && (c.flags[i]! & MAP_F_READ) !== 0) {
          // A cached page lies inside memory: no bus error to check for.
          const words = this.memory.frameWords(c.pas[i]! * INV_PAGE);
          if (len === 4 && (o & 3) === 0 && words !== undefined) {
            // One aligned word, little-endian (a Uint8Array store keeps the low byte).
            const v = words[o >>> 2]!;
            into[0] = v;
            into[1] = v >>> 8;
            into[2] = v >>> 16;
            into[3] = v >>> 24;
          } else copyFrameBytes(words, o, into, 0, len);
          return undefined;
        }
        if (o + len <= PAGE) return this.dmaResolvedMiss(endpoint, req, into, hi, lo, len);
      }
    }
    return this.dmaGeneral(endpoint, req, into);
  }

  /**
   * The hit path's read when the translation cache misses: the resolved domain's mapping tree
   * (which fills the cache) for a page the cache takes; any other page goes the general way.
   */
  private dmaResolvedMiss(endpoint: number, req: DmaRequest, into: Uint8Array, hi: number, lo: number, len: number): DmaFault | undefined {
    const pa = this.lookupMapped(this.resolvedDomain!, hi, lo, false);
    if (pa < 0 || !this.cleanPage) return this.dmaGeneral(endpoint, req, into);
    const o = lo & 0xfff;
    copyFrameBytes(this.memory.frameWords((pa - o) * INV_PAGE), o, into, 0, len);
    return undefined;
  }

  /** {@link dmaInto} past its hit path: every check, the mapping tree or the guest's tables. */
  private dmaGeneral(endpoint: number, req: DmaRequest, into: Uint8Array): DmaFault | undefined {
    const write = req.write;
    const len = write ? (req.data?.length ?? 0) : Math.floor(req.size);
    if (!(len > 0)) return undefined;
    if (!write && into.length < len) throw new RangeError(`a ${String(len)}-byte read needs a buffer of at least ${String(len)} bytes`);
    const iova = req.iova;
    // Outside [0, 2^64): an address-size fault. (asUintN returns an in-range IOVA itself: no allocation.)
    if (BigInt.asUintN(64, iova) !== iova) return this.fault(F.InputRange, endpoint, req, iova);
    // The IOVA's 32-bit halves, without a BigInt: a BigUint64Array store, read back as words.
    this.iovaSplit[0] = iova;
    let lo = this.iovaWords[LO_WORD]!;
    let hi = this.iovaWords[HI_WORD]!;
    const id = endpoint >>> 0;
    let ep = this.lastEp;
    if (ep?.id !== id) {
      ep = this.endpoints.get(id);
      if (ep === undefined || !ep.known) return this.fault(F.UnknownEndpoint, endpoint, req, iova);
      this.lastEp = ep;
    }
    const pasid = req.pasid;
    // Fast path: no PASID, a MAP/UNMAP domain, one page, translated by the cache or else the
    // mapping tree (anything odd — a fault, a RESV_MEM region, a bus error — takes the general path).
    const d0 = pasid === undefined ? ep.domain : undefined;
    if (d0 !== undefined && d0.anonymous && !d0.bypass && d0.noPasid === undefined) {
      // The resolution the hit path takes until a configuration change drops it.
      if (endpoint === id) {
        this.resolvedEndpoint = id;
        this.resolvedTag = d0.tag;
        this.resolvedDomain = d0;
      }
    } else if (this.resolvedEndpoint === id) this.resolvedEndpoint = -1;
    if (d0 !== undefined && d0.anonymous && !d0.bypass && d0.noPasid === undefined && len <= PAGE - (lo & 0xfff)) {
      const c = this.mapCache;
      const tag = d0.tag;
      const i = ((lo >>> 12) ^ (hi << 11) ^ (tag << 5)) & c.mask;
      const mem = this.memory;
      let pa: number;
      if (c.tags[i] === tag && c.vpns[i] === hi * HI_PAGES + (lo >>> 12) && (c.flags[i]! & (write ? MAP_F_WRITE : MAP_F_READ)) !== 0) {
        pa = c.pas[i]! + (lo & 0xfff); // a cached page lies inside memory: no bus error to check for
      } else {
        // A page the tree's mapping covers whole, in memory and clear of RESV_MEM regions (the
        // pages the cache takes) needs no other check; any other goes the general way.
        pa = this.lookupMapped(d0, hi, lo, write);
        if (!this.cleanPage) pa = -1;
      }
      if (pa >= 0) {
        if (write) mem.writeFrom(pa, req.data!, 0, len);
        else readBytes(mem, pa, into, 0, len);
        return undefined;
      }
    }
    const mode = this.resolve(ep, pasid);
    if (mode < 0) return this.fault(-mode - 1, endpoint, req, iova);
    let remaining = len;
    let nseg = 0;
    const unpriv = req.priv !== true;
    const exec = req.exec === true;
    while (remaining > 0) {
      const inPage = PAGE - (lo & 0xfff);
      const n = remaining < inPage ? remaining : inPage;
      let pa: number;
      if (mode === T.Bypass) {
        pa = hi * TWO32 + lo;
      } else if (mode === T.Mappings) {
        const d = this.curDomain!;
        const resv = this.resvAt(hi, lo);
        if (resv === 1) pa = -1; // MSI doorbell: an interrupt message, not memory
        else if (resv === 2) return this.fault(F.Reserved, endpoint, req, iova, hi, lo);
        else {
          pa = this.translateMapped(d, hi, lo, write);
          if (pa < 0) {
            const kind = pa === -1 ? F.NoMapping : F.MapPermission;
            return this.curIopf ? this.pageRequest(ep, req, hi, lo, kind) : this.fault(kind, endpoint, req, iova, hi, lo);
          }
        }
      } else {
        const r = this.translateS1(hi, lo, write, unpriv, exec);
        if (r < 0) {
          const kind = -r - 1;
          if (this.curIopf && (kind === F.S1Translation || kind === F.S1Access || kind === F.S1Permission)) {
            return this.pageRequest(ep, req, hi, lo, kind);
          }
          return this.fault(kind, endpoint, req, iova, hi, lo);
        }
        pa = r;
      }
      if (pa >= 0 && !this.memory.contains(pa, n)) return this.fault(F.BusError, endpoint, req, iova, hi, lo);
      if (nseg === this.segPa.length) this.growSegments();
      this.segPa[nseg] = pa;
      this.segLen[nseg++] = n;
      remaining -= n;
      lo += n;
      if (lo >= TWO32) {
        lo -= TWO32;
        hi++;
        if (hi >= TWO32 && remaining > 0) return this.fault(F.InputRange, endpoint, req, iova);
      }
    }
    let off = 0;
    for (let i = 0; i < nseg; i++) {
      const pa = this.segPa[i]!;
      const n = this.segLen[i]!;
      if (pa < 0) {
        if (write) this.msiWrites++;
        else into.fill(0, off, off + n); // a read of an MSI doorbell returns no memory: zeros
      } else if (write) this.memory.writeFrom(pa, req.data!, off, n);
      else readBytes(this.memory, pa, into, off, n);
      off += n;
    }
    return undefined;
  }

  /**
   * The address `hi:lo` translates to through domain `d`'s mappings, or -1 (no mapping), -2
   * (the mapping's flags forbid the access). Goes through the translation cache, and fills it
   * when one mapping covers the whole page and no RESV_MEM region touches it.
   */
  private translateMapped(d: Domain, hi: number, lo: number, write: boolean): number {
    const c = this.mapCache;
    const tag = d.tag;
    const i = ((lo >>> 12) ^ (hi << 11) ^ (tag << 5)) & c.mask;
    if (c.tags[i] === tag && c.vpns[i] === hi * HI_PAGES + (lo >>> 12) && (c.flags[i]! & (write ? MAP_F_WRITE : MAP_F_READ)) !== 0) {
      return c.pas[i]! + (lo & 0xfff);
    }
    return this.lookupMapped(d, hi, lo, write);
  }

  /**
   * {@link translateMapped} past the cache: the mapping tree, then a cache fill when the page is
   * one the cache takes ({@link cleanPage} tells).
   */
  private lookupMapped(d: Domain, hi: number, lo: number, write: boolean): number {
    const perm = write ? MAP_F_WRITE : MAP_F_READ;
    const tree = d.mappings;
    this.cleanPage = false;
    const o = tree.find(hi, lo);
    if (o < 0) return -1;
    const w = tree.hitWords;
    const flags = w[o + M_FLAGS]!;
    if ((flags & perm) === 0) return -2;
    const sHi = w[o + M_S_HI]!;
    const sLo = w[o + M_S_LO]!;
    const pa = w[o + M_P_HI]! * TWO32 + w[o + M_P_LO]! + (hi - sHi) * TWO32 + (lo - sLo);
    const pageLo = (lo & 0xfffff000) >>> 0;
    const lastLo = pageLo + 0xfff;
    // Cache the page if the mapping covers all of it (QEMU takes unaligned mappings), no RESV_MEM
    // region touches it, and its frame lies in memory (so that a hit needs no bus-error check).
    const pagePa = pa - (lo & 0xfff);
    if (
      !lt64(hi, pageLo, sHi, sLo) && !lt64(w[o + M_E_HI]!, w[o + M_E_LO]!, hi, lastLo) &&
      !this.resvTouchesPage(hi * HI_PAGES + (lo >>> 12)) && this.memory.contains(pagePa, PAGE)
    ) {
      this.mapCache.fill(d.tag, hi, lo, pagePa, flags & MAP_RW);
      this.cleanPage = true;
    }
    return pa;
  }

  private growSegments(): void {
    const pa = new Float64Array(this.segPa.length * 2);
    pa.set(this.segPa);
    const ln = new Int32Array(this.segLen.length * 2);
    ln.set(this.segLen);
    this.segPa = pa;
    this.segLen = ln;
  }

  /** 0: not reserved, 1: MSI, 2: RESERVED (and unknown subtypes). */
  private resvAt(hi: number, lo: number): number {
    if (hi !== 0 && hi >= 0x200000) return 0;
    const a = hi * TWO32 + lo;
    for (const r of this.resvNum) if (a >= r.start && a <= r.end) return r.msi ? 1 : 2;
    return 0;
  }

  /** Picks the translation for the DMA; a negative value is −(fault kind) − 1. */
  private resolve(ep: EndpointState, pasid: number | undefined): number {
    this.curDomain = undefined;
    this.curTable = undefined;
    this.curCd = undefined;
    this.curIopf = false;
    if (pasid !== undefined && !this.ext) return -F.PasidUnsupported - 1;
    let d: Domain | undefined;
    let viaPasidAttach = false;
    if (pasid !== undefined) {
      d = ep.pasids.get(pasid);
      viaPasidAttach = d !== undefined;
    }
    d ??= ep.domain;
    if (d === undefined) {
      const bypass = (hasFeature(this.deviceFeatures, VIRTIO_IOMMU_F_BYPASS_CONFIG) && this.bypassByte === 1) || this.neg(VIRTIO_IOMMU_F_BYPASS);
      return bypass ? T.Bypass : -F.NotAttached - 1;
    }
    if (d.bypass) return T.Bypass;
    this.curDomain = d;
    if (pasid === undefined || viaPasidAttach) {
      const n = d.noPasid;
      if (n === undefined) {
        if (!d.anonymous) return -F.NoContext - 1;
        this.curIopf = d.iopf;
        return T.Mappings;
      }
      if (n.kind === 'lpae') {
        this.curTable = n;
        this.curIopf = n.iopf;
        return T.Table;
      }
      if (pasid !== undefined) return this.selectCd(n, pasid);
      if (n.s1dss === S1DSS_SSID0) return this.selectCd(n, 0);
      if (n.s1dss === S1DSS_BYPASS) return d.parent ? this.stage2Only(d) : T.Bypass;
      return -F.NoContext - 1;
    }
    const t = d.pasidCtx.get(pasid);
    if (t !== undefined) {
      this.curTable = t;
      this.curIopf = t.iopf;
      return T.Table;
    }
    const n = d.noPasid;
    if (n?.kind === 'cd') return this.selectCd(n, pasid);
    return -F.NoContext - 1;
  }

  /** S1DSS=bypass in a nested domain: stage 1 is skipped, the parent's mappings translate. */
  private stage2Only(d: Domain): number {
    this.curDomain = d.parent;
    return T.Mappings;
  }

  private selectCd(t: CdTable, ssid: number): number {
    this.curIopf = t.iopf;
    if (t.cdmax === 0 ? ssid !== 0 : ssid >= 2 ** t.cdmax) return -F.BadConfig - 1;
    let cfg = t.cache.get(ssid);
    if (cfg === undefined) {
      cfg = this.fetchCd(t.base + ssid * CD_SIZE);
      t.cache.set(ssid, cfg);
    }
    if (typeof cfg === 'string') {
      this.curFaultLevel = -1;
      return cfg === 'abort' ? -F.S1ExtAbort - 1 : cfg === 'stage2' ? -F.S2Walk - 1 : -F.BadConfig - 1;
    }
    this.curCd = cfg;
    let ctx = t.ctxs.get(ssid);
    if (ctx === undefined) t.ctxs.set(ssid, (ctx = this.allocCtx()));
    this.curCdCtx = ctx;
    return T.Cd;
  }

  /** Reads and checks a CD (SMMUv3 C_BAD_CD conditions the model knows). */
  private fetchCd(ipa: number): Stage1Config | string {
    const parent = this.curDomain?.parent;
    let pa = ipa;
    if (parent) {
      pa = this.stage2(parent, ipa, false);
      if (pa < 0) return 'stage2';
    }
    if (!this.memory.contains(pa, CD_SIZE)) return 'abort';
    const w0 = this.memory.read32At(pa);
    const w1 = this.memory.read32At(pa + 4);
    const w2 = this.memory.read32At(pa + 8);
    const w3 = this.memory.read32At(pa + 12);
    if ((w0 & CD_W0_V) === 0) return 'CD.V = 0';
    if ((w1 & CD_W1_AA64) === 0) return 'CD.AA64 = 0';
    if ((w0 & CD_W0_ENDI) !== 0) return 'CD.ENDI = 1 (big-endian tables unsupported)';
    const t0sz = w0 & 0x3f;
    if (((w0 >>> 6) & 3) !== 0) return 'CD.TG0 is not 4 KiB';
    if (t0sz < 16 || t0sz > 39) return 'CD.T0SZ out of range';
    if ((w3 & 0xf0000) !== 0) return 'CD.TTB0 beyond 48 bits';
    const root = (w3 & 0xffff) * TWO32 + ((w2 & 0xfffffff0) >>> 0);
    return { root, t0sz, startLevel: 4 - Math.ceil((64 - t0sz - 12) / 9), epd0: (w0 & CD_W0_EPD0) !== 0, affd: (w1 & CD_W1_AFFD) !== 0 };
  }

  /** Stage 2 of a nested domain: the parent's MAP/UNMAP mappings (through the translation cache). Returns a PA or -1. */
  private stage2(parent: Domain, ipa: number, write: boolean): number {
    const pa = this.translateMapped(parent, Math.floor(ipa / TWO32), ipa >>> 0, write);
    return pa < 0 ? -1 : pa;
  }

  /** Translates one page through the current table context; a PA, or −(fault) − 1. */
  private translateS1(hi: number, lo: number, write: boolean, unpriv: boolean, exec: boolean): number {
    let cfg: Stage1Config;
    let ctx: number;
    if (this.curTable) {
      cfg = this.curTable.cfg;
      ctx = this.curTable.ctx;
    } else {
      cfg = this.curCd!;
      ctx = this.curCdCtx;
    }
    const d = this.curDomain!;
    this.curFaultLevel = -1;
    // Input beyond 2^(64−T0SZ): a level-0 translation fault (Arm ARM, TTBR0 region check).
    const ia = 64 - cfg.t0sz; // 25..48
    if (ia > 32 ? hi >>> (ia - 32) !== 0 : hi !== 0 || (ia < 32 && lo >>> ia !== 0)) return -F.S1Translation - 1;
    const vpn = hi * 0x100000 + (lo >>> 12);
    let cached = this.iotlb.lookup(ctx, vpn);
    if (cached < 0) {
      const parent = d.parent;
      const out = this.walkOut;
      this.walkParent = parent;
      const w = walk(this.memory, cfg, vpn, parent ? this.walkStage2 : undefined, out);
      this.curFaultLevel = out.level;
      if (w !== W_OK) {
        if (w === W_TRANSLATION) return -F.S1Translation - 1;
        if (w === W_ACCESS) return -F.S1Access - 1;
        if (w === W_ADDR_SIZE) return -F.S1AddrSize - 1;
        if (w === W_EXT_ABORT) return -F.S1ExtAbort - 1;
        if (w === W_STAGE2) return -F.S2Walk - 1;
        return -F.S1Translation - 1;
      }
      cached = out.opfn * 16 + out.perms;
      this.iotlb.insert(ctx, vpn, cached);
    }
    const perms = cached & 15; // the low bits of an integer below 2^53
    const opfn = (cached - perms) / 16;
    if (write && (perms & PERM_WRITE) === 0) return -F.S1Permission - 1;
    if (unpriv && (perms & PERM_UNPRIV) === 0) return -F.S1Permission - 1;
    if (exec && (perms & (unpriv ? PERM_UXN : PERM_PXN)) !== 0) return -F.S1Permission - 1;
    const oa = opfn * PAGE + (lo & 0xfff);
    if (d.parent) {
      const pa = this.stage2(d.parent, oa, write);
      return pa < 0 ? -F.S2Output - 1 : pa;
    }
    return oa;
  }

  private pageRequest(ep: EndpointState, req: DmaRequest, hi: number, lo: number, kind: number): DmaFault {
    if (ep.groups.size >= PRI_OUTSTANDING) return this.fault(kind, ep.id, req, req.iova, hi, lo);
    let g = ep.nextGroup;
    for (let i = 0; i < 512 && ep.groups.has(g); i++) g = (g + 1) & 511;
    ep.nextGroup = (g + 1) & 511;
    ep.groups.set(g, req.pasid);
    const page = (BigInt(hi) << 32n) | BigInt((lo & 0xfffff000) >>> 0);
    const prm = (req.write ? 2 : 1) | 4 | (g << 3); // R/W, L (single-page group), PRGI
    let flags = VIRTIO_IOMMU_FAULT_F_X_PAGE_REQ | VIRTIO_IOMMU_FAULT_F_ADDRESS | (req.write ? VIRTIO_IOMMU_FAULT_F_WRITE : VIRTIO_IOMMU_FAULT_F_READ);
    if (req.exec === true) flags |= VIRTIO_IOMMU_FAULT_F_EXEC;
    if (req.priv === true) flags |= VIRTIO_IOMMU_FAULT_F_PRIV;
    if (req.pasid !== undefined) flags |= VIRTIO_IOMMU_FAULT_F_X_PASID;
    const rec = { reason: VIRTIO_IOMMU_FAULT_R_MAPPING, flags, endpoint: ep.id, reserved1: req.pasid ?? 0, address: page | BigInt(prm) };
    const bytes = encodeFault(rec);
    this.pushEvent(bytes);
    const fault: DmaFault = {
      class: 'page-request',
      name: 'VIRTIO_IOMMU_FAULT_F_X_PAGE_REQ',
      code: VIRTIO_IOMMU_FAULT_R_MAPPING,
      iova: (BigInt(hi) << 32n) | BigInt(lo),
      record: { ...rec, grpid: g, last: true, pasid: req.pasid, detail: FAULT_INFO[kind]![2], bytes },
    };
    return fault;
  }

  private fault(kind: number, endpoint: number, req: DmaRequest, iova: bigint, hi?: number, lo?: number): DmaFault {
    const [reason, cls, detail] = FAULT_INFO[kind]!;
    const at = hi === undefined || lo === undefined ? iova : (BigInt(hi) << 32n) | BigInt(lo);
    const style = this.profile.faultEvents;
    let flags = VIRTIO_IOMMU_FAULT_F_ADDRESS;
    if (style === 'full' || (style === 'qemu' && (kind === F.MapPermission || kind === F.S1Permission))) {
      flags |= req.write ? VIRTIO_IOMMU_FAULT_F_WRITE : VIRTIO_IOMMU_FAULT_F_READ;
    }
    let reserved1 = 0;
    if (this.ext) {
      if (req.exec === true && style === 'full') flags |= VIRTIO_IOMMU_FAULT_F_EXEC;
      if (req.priv === true && style === 'full') flags |= VIRTIO_IOMMU_FAULT_F_PRIV;
      if (req.pasid !== undefined) {
        flags |= VIRTIO_IOMMU_FAULT_F_X_PASID;
        reserved1 = req.pasid;
      }
    }
    const rec = { reason, flags, endpoint: endpoint >>> 0, reserved1, address: at };
    const bytes = encodeFault(rec);
    if (style !== 'none') this.pushEvent(bytes);
    const record: Record<string, unknown> = { ...rec, detail, bytes, written: style !== 'none' };
    if (req.pasid !== undefined) record.pasid = req.pasid;
    if (this.curFaultLevel >= 0 && kind >= F.S1Translation && kind <= F.S2Walk) record.level = this.curFaultLevel;
    if (kind === F.S2Walk || kind === F.S2Output) record.stage = 2;
    return { class: cls, name: FAULT_REASON_NAMES[reason]!, code: reason, iova: at, record };
  }

  private pushEvent(bytes: Uint8Array): void {
    if (this.events.length >= this.eventQueueSize) {
      this.eventsDropped++;
      return;
    }
    this.events.push(bytes);
    this.interrupt?.();
  }
}
