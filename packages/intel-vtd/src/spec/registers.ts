/**
 * The VT-d register file (VT-d spec §11.4 "Register Descriptions"; Linux
 * drivers/iommu/intel/iommu.h): offsets, CAP/ECAP field layouts, GCMD/GSTS, the command
 * registers' fields and the status bits. Names follow the specification.
 */

import type { BitField } from './fields.js';

/** Version register (32-bit, RO): [7:4] major, [3:0] minor. */
export const VER_REG = 0x000;
/** Capability register (64-bit, RO). */
export const CAP_REG = 0x008;
/** Extended capability register (64-bit, RO). */
export const ECAP_REG = 0x010;
/** Global command register (32-bit, WO). */
export const GCMD_REG = 0x018;
/** Global status register (32-bit, RO). */
export const GSTS_REG = 0x01c;
/** Root table address register (64-bit). */
export const RTADDR_REG = 0x020;
/** Context command register (64-bit). */
export const CCMD_REG = 0x028;
/** Fault status register (32-bit, RW1C). */
export const FSTS_REG = 0x034;
/** Fault event control register. */
export const FECTL_REG = 0x038;
/** Fault event data register. */
export const FEDATA_REG = 0x03c;
/** Fault event address register. */
export const FEADDR_REG = 0x040;
/** Fault event upper address register. */
export const FEUADDR_REG = 0x044;
/** Advanced fault log register (not implemented: CAP.AFL = 0). */
export const AFLOG_REG = 0x058;
/** Protected memory enable register (not implemented: PLMR = PHMR = 0). */
export const PMEN_REG = 0x064;
/** Invalidation queue head (64-bit, RO to software): byte offset in bits 18:4. */
export const IQH_REG = 0x080;
/** Invalidation queue tail (64-bit): byte offset in bits 18:4. */
export const IQT_REG = 0x088;
/** Invalidation queue address: base | DW (bit 11) | QS (bits 2:0). */
export const IQA_REG = 0x090;
/** Invalidation completion status (RW1C): bit 0 IWC. */
export const ICS_REG = 0x09c;
/** Invalidation event control. */
export const IECTL_REG = 0x0a0;
/** Invalidation event data. */
export const IEDATA_REG = 0x0a4;
/** Invalidation event address. */
export const IEADDR_REG = 0x0a8;
/** Invalidation event upper address. */
export const IEUADDR_REG = 0x0ac;
/** Invalidation queue error record: [3:0] IQEI, [47:32] ITESID, [63:48] ICESID. */
export const IQER_REG = 0x0b0;
/** Interrupt remapping table address (not implemented: ECAP.IR = 0). */
export const IRTA_REG = 0x0b8;
/** Page request queue head (byte offset, written by software). */
export const PQH_REG = 0x0c0;
/** Page request queue tail (byte offset, written by hardware). */
export const PQT_REG = 0x0c8;
/** Page request queue address: base | PQS (2^PQS pages). */
export const PQA_REG = 0x0d0;
/** Page request status (RW1C): bit 0 PPR, bit 1 PRO. */
export const PRS_REG = 0x0dc;
/** Page request event control. */
export const PECTL_REG = 0x0e0;
/** Page request event data. */
export const PEDATA_REG = 0x0e4;
/** Page request event address. */
export const PEADDR_REG = 0x0e8;
/** Page request event upper address. */
export const PEUADDR_REG = 0x0ec;
/** Offset of IVA_REG from ECAP.IRO·16. */
export const IVA_REG_OFFSET = 0x0;
/** Offset of IOTLB_REG from ECAP.IRO·16. */
export const IOTLB_REG_OFFSET = 0x8;
/** Size of one fault recording register (128 bits). */
export const FRCD_REG_SIZE = 16;

/** CAP_REG fields (§11.4.2; Linux `cap_*` macros). */
export const CAP = {
  /** Number of domains: 2^(4+2·ND). */
  ND: [0, 3],
  /** Advanced fault logging. */
  AFL: [3, 1],
  /** Required write-buffer flushing. */
  RWBF: [4, 1],
  /** Protected low-memory region. */
  PLMR: [5, 1],
  /** Protected high-memory region. */
  PHMR: [6, 1],
  /** Caching mode: not-present and erroneous entries may be cached. */
  CM: [7, 1],
  /** Supported adjusted guest address widths (bit 1 = 39, bit 2 = 48, bit 3 = 57 bits). */
  SAGAW: [8, 5],
  /** Maximum guest address width − 1. */
  MGAW: [16, 6],
  /** Zero-length read. */
  ZLR: [22, 1],
  /** Fault-recording register offset in 16-byte units. */
  FRO: [24, 10],
  /** Second-stage large page support: bit 0 = 2 MiB, bit 1 = 1 GiB. */
  SLLPS: [34, 4],
  /** Page-selective invalidation. */
  PSI: [39, 1],
  /** Number of fault-recording registers − 1. */
  NFR: [40, 8],
  /** Maximum address mask value for page-selective invalidation. */
  MAMV: [48, 6],
  /** Write draining. */
  DWD: [54, 1],
  /** Read draining. */
  DRD: [55, 1],
  /** First-stage 1 GiB pages. */
  FL1GP: [56, 1],
  /** Posted interrupts. */
  PI: [59, 1],
  /** First-stage 5-level paging. */
  FL5LP: [60, 1],
  /** Enhanced command support. */
  ECMDS: [61, 1],
  /** Enhanced set interrupt remap table pointer. */
  ESIRTPS: [62, 1],
  /** Enhanced set root table pointer (hardware flushes caches on SRTP). */
  ESRTPS: [63, 1],
} as const satisfies Record<string, BitField>;

/** ECAP_REG fields (§11.4.3; Linux `ecap_*` macros). */
export const ECAP = {
  /** Page-walk coherency. */
  C: [0, 1],
  /** Queued invalidation. */
  QI: [1, 1],
  /** Device-TLB. */
  DT: [2, 1],
  /** Interrupt remapping. */
  IR: [3, 1],
  /** Extended interrupt mode. */
  EIM: [4, 1],
  /** Pass-through. */
  PT: [6, 1],
  /** Snoop control. */
  SC: [7, 1],
  /** IOTLB register offset in 16-byte units. */
  IRO: [8, 10],
  /** Interrupt handle mask max. */
  MHMV: [20, 4],
  /** Memory type support. */
  MTS: [25, 1],
  /** Nested translation. */
  NEST: [26, 1],
  /** Page request support. */
  PRS: [29, 1],
  /** Execute request support. */
  ERS: [30, 1],
  /** Supervisor request support. */
  SRS: [31, 1],
  /** No-write flag support. */
  NWFS: [33, 1],
  /** Extended accessed flag support. */
  EAFS: [34, 1],
  /** PASID size − 1. */
  PSS: [35, 5],
  /** PASID support. */
  PASID: [40, 1],
  /** Device-TLB invalidation throttling. */
  DIT: [41, 1],
  /** Page-request drain support. */
  PDS: [42, 1],
  /** Scalable-mode translation support. */
  SMTS: [43, 1],
  /** Virtual command support. */
  VCS: [44, 1],
  /** Second-stage accessed/dirty support (SLADS). */
  SSADS: [45, 1],
  /** Second-stage translation support (SLTS). */
  SSTS: [46, 1],
  /** First-stage translation support (FLTS). */
  FSTS: [47, 1],
  /** Scalable-mode page-walk coherency. */
  SMPWCS: [48, 1],
  /** RID_PASID support. */
  RPS: [49, 1],
  /** Performance monitoring. */
  PMS: [51, 1],
  /** Abort-DMA mode support. */
  ADMS: [52, 1],
  /** RID_PRIV support. */
  RPRIVS: [53, 1],
  /** Stop marker support. */
  SMS: [58, 1],
} as const satisfies Record<string, BitField>;

/** GCMD_REG / GSTS_REG bits (same positions; §11.4.4–5). */
export const GCMD_TE = 0x80000000;
/** Set root table pointer (one-shot). */
export const GCMD_SRTP = 0x40000000;
/** Set fault log (one-shot). */
export const GCMD_SFL = 0x20000000;
/** Enable advanced fault logging. */
export const GCMD_EAFL = 0x10000000;
/** Write buffer flush (one-shot). */
export const GCMD_WBF = 0x08000000;
/** Queued invalidation enable. */
export const GCMD_QIE = 0x04000000;
/** Interrupt remapping enable. */
export const GCMD_IRE = 0x02000000;
/** Set interrupt remap table pointer (one-shot). */
export const GCMD_SIRTP = 0x01000000;
/** Compatibility format interrupt. */
export const GCMD_CFI = 0x00800000;
/** Translation enable status. */
export const GSTS_TES = GCMD_TE;
/** Root table pointer status. */
export const GSTS_RTPS = GCMD_SRTP;
/** Fault log status. */
export const GSTS_FLS = GCMD_SFL;
/** Advanced fault logging status. */
export const GSTS_AFLS = GCMD_EAFL;
/** Write buffer flush status (set while a flush is in progress). */
export const GSTS_WBFS = GCMD_WBF;
/** Queued invalidation enable status. */
export const GSTS_QIES = GCMD_QIE;
/** Interrupt remapping enable status. */
export const GSTS_IRES = GCMD_IRE;
/** Interrupt remap table pointer status. */
export const GSTS_IRTPS = GCMD_SIRTP;
/** Compatibility format interrupt status. */
export const GSTS_CFIS = GCMD_CFI;
/** GCMD bits that are one-shot commands, not persistent state (Linux masks them off). */
export const GCMD_ONE_SHOT = GCMD_SRTP | GCMD_SFL | GCMD_WBF | GCMD_SIRTP;

/** RTADDR_REG: bits 11:10 TTM. */
export const RTADDR_TTM: BitField = [10, 2];
/** TTM = 00b: legacy mode. */
export const TTM_LEGACY = 0;
/** TTM = 01b: scalable mode (Linux `DMA_RTADDR_SMT`). */
export const TTM_SCALABLE = 1;
/** TTM = 11b: abort-DMA mode (ECAP.ADMS). */
export const TTM_ABORT_DMA = 3;

/** CCMD_REG fields (§11.4.7). */
export const CCMD = {
  DID: [0, 16],
  SID: [16, 16],
  FM: [32, 2],
  CAIG: [59, 2],
  CIRG: [61, 2],
  ICC: [63, 1],
} as const satisfies Record<string, BitField>;

/** IOTLB_REG fields (§11.4.8.1). */
export const IOTLB = {
  DID: [32, 16],
  DW: [48, 1],
  DR: [49, 1],
  IAIG: [57, 2],
  IIRG: [60, 2],
  IVT: [63, 1],
} as const satisfies Record<string, BitField>;

/** IVA_REG fields (§11.4.8.2). */
export const IVA = {
  AM: [0, 6],
  IH: [6, 1],
  ADDR: [12, 52],
} as const satisfies Record<string, BitField>;

/** Invalidation granularities of CCMD.CIRG and IOTLB.IIRG. */
export const GRANULARITY_GLOBAL = 1;
/** Domain-selective. */
export const GRANULARITY_DOMAIN = 2;
/** Device-selective (CCMD) or page-selective (IOTLB). */
export const GRANULARITY_DEVICE_OR_PAGE = 3;

/** FSTS_REG bits (§11.4.9). */
export const FSTS_PFO = 1 << 0;
/** Primary pending fault: some FRCD has F set. */
export const FSTS_PPF = 1 << 1;
/** Advanced fault overflow. */
export const FSTS_AFO = 1 << 2;
/** Advanced pending fault. */
export const FSTS_APF = 1 << 3;
/** Invalidation queue error. */
export const FSTS_IQE = 1 << 4;
/** Invalidation completion error. */
export const FSTS_ICE = 1 << 5;
/** Invalidation time-out error. */
export const FSTS_ITE = 1 << 6;
/** Page request overflow (older specs; Linux clears it with PFO/PPF). */
export const FSTS_PRO = 1 << 7;
/** FSTS.FRI: fault record index, bits 15:8. */
export const FSTS_FRI_SHIFT = 8;

/** Interrupt mask (FECTL, IECTL, PECTL bit 31). */
export const ECTL_IM = 0x80000000;
/** Interrupt pending (bit 30). */
export const ECTL_IP = 0x40000000;

/** ICS_REG: invalidation wait descriptor complete. */
export const ICS_IWC = 1;
/** PRS_REG: pending page request. */
export const PRS_PPR = 1;
/** PRS_REG: page request overflow. */
export const PRS_PRO = 2;

/** IQA_REG: descriptor width bit (1 = 256-bit descriptors). */
export const IQA_DW = 1 << 11;
/** IQA_REG: queue size field mask (2^QS 4-KiB pages). */
export const IQA_QS_MASK = 7;

/** IQER.IQEI values used by this model (§11.4.9.x; the exact list is not in the reference digest). */
export const IQEI_INFO_NOT_AVAILABLE = 0;
/** IQT not aligned to a 256-bit descriptor while DW = 1. */
export const IQEI_TAIL_MISALIGNED = 1;
/** A descriptor with an invalid type or reserved field set. */
export const IQEI_INVALID_DESCRIPTOR = 2;
/** DW = 1 without scalable-mode support, or an invalid queue base. */
export const IQEI_INVALID_QUEUE = 3;

/** Number of domain IDs CAP.ND advertises. */
export function domainCount(nd: number): number {
  return 2 ** (4 + 2 * nd);
}

/** Address width in bits of an AW/agaw value: 30 + 9·aw (1 → 39, 2 → 48, 3 → 57). */
export function agawToWidth(aw: number): number {
  return 30 + 9 * aw;
}

/** Page-table levels of an AW value (aw + 2). */
export function agawToLevels(aw: number): number {
  return aw + 2;
}

/** Linux `width_to_agaw`: ceil((width − 30) / 9). */
export function widthToAgaw(width: number): number {
  return Math.ceil((width - 30) / 9);
}
