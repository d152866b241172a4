/**
 * Queued-invalidation descriptors (VT-d spec §6.5.2; Linux iommu.h `QI_*` macros). Each is
 * 128 bits (qw0, qw1); with IQA.DW = 1 descriptors are 256 bits and qw2/qw3 are reserved
 * (zero). Type = bits 3:0 plus bits 11:9 as Type[6:4].
 */

/** Context-cache invalidation. */
export const QI_CC_TYPE = 0x1;
/** IOTLB invalidation. */
export const QI_IOTLB_TYPE = 0x2;
/** Device-TLB invalidation. */
export const QI_DIOTLB_TYPE = 0x3;
/** Interrupt-entry-cache invalidation. */
export const QI_IEC_TYPE = 0x4;
/** Invalidation wait. */
export const QI_IWD_TYPE = 0x5;
/** PASID-based IOTLB invalidation. */
export const QI_EIOTLB_TYPE = 0x6;
/** PASID-cache invalidation. */
export const QI_PC_TYPE = 0x7;
/** PASID-based device-TLB invalidation. */
export const QI_DEIOTLB_TYPE = 0x8;
/** Page group response. */
export const QI_PGRP_RESP_TYPE = 0x9;
/** Page stream response (defined by Linux, not used). */
export const QI_PSTRM_RESP_TYPE = 0xa;

/** Linux `QI_DONE`: the status a wait descriptor writes on completion. */
export const QI_DONE = 2;
/** Linux `QI_IN_USE`. */
export const QI_IN_USE = 1;

/** Context-cache / IOTLB granularity: global. */
export const QI_GRAN_GLOBAL = 1;
/** Domain-selective. */
export const QI_GRAN_DOMAIN = 2;
/** Device-selective (CC) or page-selective (IOTLB). */
export const QI_GRAN_DEVICE_OR_PAGE = 3;
/** PASID-based IOTLB: all non-global entries of a PASID (`QI_GRAN_NONG_PASID`). */
export const QI_GRAN_NONG_PASID = 2;
/** PASID-based IOTLB: page-selective within PASID (`QI_GRAN_PSI_PASID`). */
export const QI_GRAN_PSI_PASID = 3;
/** PASID cache: domain-selective. */
export const QI_PC_ALL_PASIDS = 0;
/** PASID cache: PASID-selective within domain. */
export const QI_PC_PASID_SEL = 1;
/** PASID cache: global. */
export const QI_PC_GLOBAL = 3;

/** Page group response codes (§7.6.1 / Linux `QI_RESP_*`). */
export const QI_RESP_SUCCESS = 0x0;
/** Invalid request. */
export const QI_RESP_INVALID = 0x1;
/** Response failure. */
export const QI_RESP_FAILURE = 0xf;

/** A descriptor as its two meaningful 64-bit words. */
export type QiDescriptor = readonly [qw0: bigint, qw1: bigint];

const big = (v: number | bigint) => BigInt(v);

/** Context-cache invalidation: qw0 = FM<<48 | SID<<32 | DID<<16 | G<<4 | 1. */
export function ccDescriptor(e: { granularity: number; did?: number; sid?: number; fm?: number }): QiDescriptor {
  return [
    (big(e.fm ?? 0) << 48n) | (big(e.sid ?? 0) << 32n) | (big(e.did ?? 0) << 16n) | (big(e.granularity) << 4n) | 1n,
    0n,
  ];
}

/** IOTLB invalidation: qw0 = DID<<16 | DR<<7 | DW<<6 | G<<4 | 2; qw1 = ADDR | IH<<6 | AM. */
export function iotlbDescriptor(e: {
  granularity: number;
  did?: number;
  addr?: bigint;
  am?: number;
  ih?: boolean;
  dr?: boolean;
  dw?: boolean;
}): QiDescriptor {
  const qw0 =
    (big(e.did ?? 0) << 16n) |
    (e.dr === true ? 1n << 7n : 0n) |
    (e.dw === true ? 1n << 6n : 0n) |
    (big(e.granularity) << 4n) |
    2n;
  const qw1 = (e.addr ?? 0n) | (e.ih === true ? 1n << 6n : 0n) | big(e.am ?? 0);
  return [qw0, qw1];
}

/** Device-TLB invalidation: qw0 = PFSID[15:4]<<52 | SID<<32 | QDEP<<16 | PFSID[3:0]<<12 | 3; qw1 = ADDR | S. */
export function devTlbDescriptor(e: { sid: number; pfsid?: number; qdep?: number; addr: bigint; size: boolean }): QiDescriptor {
  const pfsid = e.pfsid ?? 0;
  const qw0 =
    (big(pfsid >> 4) << 52n) | (big(e.sid) << 32n) | (big((e.qdep ?? 0) & 0x1f) << 16n) | (big(pfsid & 0xf) << 12n) | 3n;
  return [qw0, e.addr | (e.size ? 1n : 0n)];
}

/** Interrupt-entry-cache invalidation: qw0 = IIDX<<32 | IM<<27 | G<<4 | 4 (G: 0 global, 1 index). */
export function iecDescriptor(e: { indexSelective: boolean; iidx?: number; im?: number }): QiDescriptor {
  return [(big(e.iidx ?? 0) << 32n) | (big(e.im ?? 0) << 27n) | (e.indexSelective ? 1n << 4n : 0n) | 4n, 0n];
}

/** Invalidation wait: qw0 = STATUS<<32 | PD<<7 | FN<<6 | SW<<5 | IF<<4 | 5; qw1 = status address. */
export function waitDescriptor(e: {
  statusWrite?: boolean;
  statusData?: number;
  statusAddr?: bigint;
  interrupt?: boolean;
  fence?: boolean;
  drain?: boolean;
}): QiDescriptor {
  const qw0 =
    (big((e.statusData ?? 0) >>> 0) << 32n) |
    (e.drain === true ? 1n << 7n : 0n) |
    (e.fence === true ? 1n << 6n : 0n) |
    (e.statusWrite === true ? 1n << 5n : 0n) |
    (e.interrupt === true ? 1n << 4n : 0n) |
    5n;
  return [qw0, e.statusAddr ?? 0n];
}

/** PASID-based IOTLB invalidation: qw0 = PASID<<32 | DID<<16 | G<<4 | 6; qw1 = ADDR | IH<<6 | AM. */
export function piotlbDescriptor(e: {
  granularity: number;
  did: number;
  pasid: number;
  addr?: bigint;
  am?: number;
  ih?: boolean;
}): QiDescriptor {
  const qw0 = (big(e.pasid) << 32n) | (big(e.did) << 16n) | (big(e.granularity) << 4n) | 6n;
  return [qw0, (e.addr ?? 0n) | (e.ih === true ? 1n << 6n : 0n) | big(e.am ?? 0)];
}

/** PASID-cache invalidation: qw0 = PASID<<32 | DID<<16 | G<<4 | 7. */
export function pasidCacheDescriptor(e: { granularity: number; did?: number; pasid?: number }): QiDescriptor {
  return [(big(e.pasid ?? 0) << 32n) | (big(e.did ?? 0) << 16n) | (big(e.granularity) << 4n) | 7n, 0n];
}

/** PASID-based device-TLB invalidation: qw0 = PFSID[15:4]<<52 | PASID<<32 | SID<<16 | PFSID[3:0]<<12 | QDEP<<4 | 8; qw1 = ADDR | S<<11 | G. */
export function pasidDevTlbDescriptor(e: {
  sid: number;
  pasid: number;
  pfsid?: number;
  qdep?: number;
  addr: bigint;
  size: boolean;
  global?: boolean;
}): QiDescriptor {
  const pfsid = e.pfsid ?? 0;
  const qw0 =
    (big(pfsid >> 4) << 52n) |
    (big(e.pasid) << 32n) |
    (big(e.sid) << 16n) |
    (big(pfsid & 0xf) << 12n) |
    (big((e.qdep ?? 0) & 0x1f) << 4n) |
    8n;
  return [qw0, e.addr | (e.size ? 1n << 11n : 0n) | (e.global === true ? 1n : 0n)];
}

/** Page group response: qw0 = PASID<<32 | RID<<16 | CODE<<12 | PASID_P<<4 | 9; qw1 = PRGI<<3 | LPIG<<2. */
export function pageGroupResponseDescriptor(e: {
  rid: number;
  pasid?: number;
  code: number;
  prgi: number;
  lpig?: boolean;
}): QiDescriptor {
  const qw0 =
    (big(e.pasid ?? 0) << 32n) |
    (big(e.rid) << 16n) |
    (big(e.code & 0xf) << 12n) |
    (e.pasid === undefined ? 0n : 1n << 4n) |
    9n;
  return [qw0, (big(e.prgi & 0x1ff) << 3n) | (e.lpig === true ? 4n : 0n)];
}

/** The descriptor type of a descriptor's low dword: Type[3:0] | Type[6:4] (bits 11:9) << 4. */
export function descriptorType(dw0: number): number {
  return (dw0 & 0xf) | (((dw0 >>> 9) & 7) << 4);
}

/**
 * Reserved-bit masks of each type as `[qw0 lo, qw0 hi, qw1 lo, qw1 hi]` dword masks (QEMU
 * `VTD_INV_DESC_*_RSVD_*`, openvmm invalidation.rs). A set reserved bit is an IQE.
 */
export const QI_RESERVED: Readonly<Record<number, readonly [number, number, number, number]>> = {
  // CC qw0 0xFFFC00000000FFC0: bits 15:6 and 63:50; qw1 reserved.
  [QI_CC_TYPE]: [0x0000ffc0, 0xfffc0000, 0xffffffff, 0xffffffff],
  // IOTLB qw0 0xFFFFFFFF0000FF00: bits 15:8, 63:32; qw1 0xF80: bits 11:7.
  [QI_IOTLB_TYPE]: [0x0000ff00, 0xffffffff, 0x00000f80, 0],
  // Device-TLB qw0 0xFFFF0000FFE0F1F0 minus PFSID (…F0 at 15:12 and 63:52 are PFSID): bits 11:4, 31:21, 51:48; qw1 bits 11:1.
  [QI_DIOTLB_TYPE]: [0xffe00ff0, 0x000f0000, 0x00000ffe, 0],
  // IEC: bits 26:5, 63:48; qw1 reserved.
  [QI_IEC_TYPE]: [0x07ffffe0, 0xffff0000, 0xffffffff, 0xffffffff],
  // Wait: bits 31:8 of qw0 (status data is qw0 63:32); qw1 bits 1:0.
  [QI_IWD_TYPE]: [0xffffff00, 0, 0x00000003, 0],
  // P_IOTLB qw0 0xFFF000000000F1C0: bits 8:6 (the wrong G bits are checked separately), 15:12, 63:52; qw1 bits 11:7.
  [QI_EIOTLB_TYPE]: [0x0000f1c0, 0xfff00000, 0x00000f80, 0],
  // PC qw0 0xFFF000000000F1C0; qw1 reserved.
  [QI_PC_TYPE]: [0x0000f1c0, 0xfff00000, 0xffffffff, 0xffffffff],
  // PASID device-TLB qw0: bits 11:9; qw1 bits 10:1.
  [QI_DEIOTLB_TYPE]: [0x00000e00, 0, 0x000007fe, 0],
  // Page group response: bits 11:5 (+ bits 63:52); qw1 bits 1:0, 63:12.
  [QI_PGRP_RESP_TYPE]: [0x00000fe0, 0xfff00000, 0xfffff003, 0xffffffff],
};

/**
 * Linux `calculate_psi_aligned_address`: the address and mask (AM) of one page-selective
 * invalidation covering `[start, end]` (inclusive). The mask is log2 of the power-of-two page
 * count; when `start` is not aligned to it, the mask grows to the first bit above which the
 * first and last page numbers agree (52 = everything).
 */
export function psiAlignedAddress(start: bigint, end: bigint): { addr: bigint; mask: number; pages: bigint } {
  const pfn = start >> 12n;
  const endPfn = end >> 12n;
  const pages = endPfn - pfn + 1n;
  let aligned = 1n;
  while (aligned < pages) aligned <<= 1n;
  const bitmask = aligned - 1n;
  let mask = bitmask.toString(2).length - (bitmask === 0n ? 1 : 0);
  if ((bitmask & pfn) !== 0n) {
    const width = 52n;
    const shared = ~(pfn ^ endPfn) & ~bitmask & ((1n << width) - 1n);
    if (shared === 0n) mask = 52;
    else {
      let k = 0;
      while (((shared >> BigInt(k)) & 1n) === 0n) k++;
      mask = k;
    }
  }
  const size = 4096n << BigInt(mask);
  return { addr: (start / size) * size, mask, pages: aligned };
}

/** 2^32, for splitting page numbers into halves. */
const TWO32 = 4294967296;

/** The index of the lowest set bit of a non-zero 32-bit value. */
function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/**
 * {@link psiAlignedAddress} on page numbers given as plain numbers (each below 2^52): the
 * mask (AM) of the one page-selective invalidation covering pages `[firstPfn, lastPfn]`, with
 * integer ops on the 32-bit halves and no BigInt (the driver's map/unmap path). The
 * invalidation then starts at `firstPfn` with its low `mask` bits cleared.
 */
export function psiAlignedMask(firstPfn: number, lastPfn: number): number {
  const pages = lastPfn - firstPfn + 1;
  let mask = 0;
  for (let aligned = 1; aligned < pages; aligned *= 2) mask++; // ilog2(roundup_pow_of_two(pages))
  const pLo = firstPfn >>> 0;
  const pHi = (firstPfn - pLo) / TWO32;
  // bitmask & pfn: any of the low `mask` bits of the first page number set?
  const lowLo = mask >= 32 ? pLo : pLo & ((1 << mask) - 1);
  const lowHi = mask <= 32 ? 0 : pHi & ((1 << Math.min(mask - 32, 31)) - 1);
  if (mask === 0 || (lowLo === 0 && lowHi === 0)) return mask;
  // shared_bits = ~(pfn ^ end_pfn) & ~bitmask (within the 52-bit page-number width)
  const eLo = lastPfn >>> 0;
  const eHi = (lastPfn - eLo) / TWO32;
  let sLo = ~(pLo ^ eLo);
  let sHi = ~(pHi ^ eHi) & 0xfffff;
  if (mask >= 32) {
    sLo = 0;
    sHi &= ~((1 << (mask - 32)) - 1);
  } else sLo &= ~((1 << mask) - 1);
  if (sLo !== 0) return lowestBit(sLo);
  if (sHi !== 0) return 32 + lowestBit(sHi);
  return 52;
}

/**
 * Writes one descriptor as the four dwords of its meaningful 128 bits (qw0 low, qw0 high, qw1
 * low, qw1 high) at `out[at…at+4)`: the BigInt-free form the driver's hot invalidations use.
 */
export function piotlbWords(out: Uint32Array, at: number, granularity: number, did: number, pasid: number, addrPfn: number, am: number, ih: boolean): void {
  out[at] = ((did & 0xffff) << 16) | ((granularity & 3) << 4) | QI_EIOTLB_TYPE;
  out[at + 1] = pasid & 0xfffff;
  const aLo = addrPfn >>> 0;
  out[at + 2] = ((aLo << 12) | (ih ? 0x40 : 0) | (am & 0x3f)) >>> 0;
  out[at + 3] = ((aLo >>> 20) | ((addrPfn - aLo) / TWO32) * 4096) >>> 0;
}

/** {@link iotlbDescriptor} as four dwords (see {@link piotlbWords}). */
export function iotlbWords(
  out: Uint32Array,
  at: number,
  granularity: number,
  did: number,
  addrPfn: number,
  am: number,
  ih: boolean,
  dr: boolean,
  dw: boolean,
): void {
  out[at] = (((did & 0xffff) << 16) | (dr ? 0x80 : 0) | (dw ? 0x40 : 0) | ((granularity & 3) << 4) | QI_IOTLB_TYPE) >>> 0;
  out[at + 1] = 0;
  const aLo = addrPfn >>> 0;
  out[at + 2] = ((aLo << 12) | (ih ? 0x40 : 0) | (am & 0x3f)) >>> 0;
  out[at + 3] = ((aLo >>> 20) | ((addrPfn - aLo) / TWO32) * 4096) >>> 0;
}
