/**
 * Context entries: the 128-bit legacy format (VT-d spec §9.3) and the 256-bit scalable-mode
 * format (§9.4). Legacy context tables have 256 entries indexed by devfn; scalable-mode
 * context tables have 128 entries indexed by `devfn & 0x7F` (the root entry's half picks the
 * table).
 */

import * as fields from './fields.js';

// Bound locally: the decoders run on every cache miss, and a module runner that implements
// import bindings as getters (vitest's) would turn each use into a call.
const { addressBeyond, entryAddress } = fields;

/** Bytes per legacy context entry. */
export const LEGACY_CONTEXT_ENTRY_SIZE = 16;
/** Bytes per scalable-mode context entry. */
export const SM_CONTEXT_ENTRY_SIZE = 32;

/** Legacy context-entry translation types (TT, bits 3:2). */
export const CONTEXT_TT_MULTI_LEVEL = 0;
/** Untranslated via second stage, device-TLB allowed. */
export const CONTEXT_TT_DEV_IOTLB = 1;
/** Pass-through. */
export const CONTEXT_TT_PASS_THROUGH = 2;

/** A decoded legacy context entry. */
export interface LegacyContextEntry {
  /** P. */
  readonly present: boolean;
  /** FPD: fault processing disable. */
  readonly fpd: boolean;
  /** TT: translation type. */
  readonly tt: number;
  /** SSPTPTR: second-stage page-table pointer. */
  readonly ssptptr: number;
  /** AW: adjusted guest address width (1/2/3 → 3/4/5 levels). */
  readonly aw: number;
  /** DID: domain identifier. */
  readonly did: number;
}

/** Encodes a legacy context entry into `[lo, hi]`. */
export function encodeLegacyContextEntry(e: {
  present: boolean;
  fpd?: boolean;
  tt: number;
  ssptptr: bigint;
  aw: number;
  did: number;
}): [bigint, bigint] {
  const lo = e.ssptptr | (BigInt(e.tt & 3) << 2n) | (e.fpd === true ? 2n : 0n) | (e.present ? 1n : 0n);
  const hi = (BigInt(e.did & 0xffff) << 8n) | BigInt(e.aw & 7);
  return [lo, hi];
}

/** A decoded entry whose fields a decoder may overwrite (the hardware model refills its cache records). */
type Writable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Decodes a legacy context entry from its four dwords, starting at `dw[at]` (into `out` when
 * given, else a new object).
 */
export function decodeLegacyContextEntry(dw: ArrayLike<number>, out?: Writable<LegacyContextEntry>, at = 0): LegacyContextEntry {
  const lo = dw[at]!;
  const hi = dw[at + 2]!;
  if (out === undefined) {
    return { present: (lo & 1) !== 0, fpd: (lo & 2) !== 0, tt: (lo >>> 2) & 3, ssptptr: entryAddress(lo, dw[at + 1]!), aw: hi & 7, did: (hi >>> 8) & 0xffff };
  }
  out.present = (lo & 1) !== 0;
  out.fpd = (lo & 2) !== 0;
  out.tt = (lo >>> 2) & 3;
  out.ssptptr = entryAddress(lo, dw[at + 1]!);
  out.aw = hi & 7;
  out.did = (hi >>> 8) & 0xffff;
  return out;
}

/**
 * True when a legacy context entry (dwords from `dw[at]`) has reserved bits set: bits 11:4,
 * SSPTPTR ≥ HAW, bit 71, bits 127:88 (QEMU: `lo & (0xFF0 | ~HAW_MASK)`, `hi & 0xFFFFFFFFFF000080`).
 */
export function legacyContextEntryReserved(dw: ArrayLike<number>, haw: number, at = 0): boolean {
  return (
    (dw[at]! & 0xff0) !== 0 ||
    addressBeyond(dw[at + 1]!, haw) ||
    (dw[at + 1]! >>> 20) !== 0 ||
    (dw[at + 2]! & 0xff000080) !== 0 ||
    dw[at + 3] !== 0
  );
}

/** A decoded scalable-mode context entry. */
export interface ScalableContextEntry {
  /** P. */
  readonly present: boolean;
  /** FPD: fault processing disable (honoured even when P = 0). */
  readonly fpd: boolean;
  /** DTE: device-TLB enable. */
  readonly dte: boolean;
  /** PASIDE: requests with PASID are allowed. */
  readonly paside: boolean;
  /** PRE: page requests are allowed. */
  readonly pre: boolean;
  /** PDTS: the PASID directory has 2^(PDTS+7) entries. */
  readonly pdts: number;
  /** PASIDDIRPTR: the PASID directory. */
  readonly pasidDirPtr: number;
  /** RID_PASID: the PASID of requests without PASID (with ECAP.RPS). */
  readonly ridPasid: number;
  /** RID_PRIV: requests without PASID are supervisor requests (with ECAP.RPRIVS). */
  readonly ridPriv: boolean;
}

/** Encodes a scalable-mode context entry into its four 64-bit words. */
export function encodeScalableContextEntry(e: {
  present: boolean;
  fpd?: boolean;
  dte?: boolean;
  paside?: boolean;
  pre?: boolean;
  pdts: number;
  pasidDirPtr: bigint;
  ridPasid?: number;
  ridPriv?: boolean;
}): [bigint, bigint, bigint, bigint] {
  const lo =
    e.pasidDirPtr |
    (BigInt(e.pdts & 7) << 9n) |
    (e.pre === true ? 1n << 4n : 0n) |
    (e.paside === true ? 1n << 3n : 0n) |
    (e.dte === true ? 1n << 2n : 0n) |
    (e.fpd === true ? 1n << 1n : 0n) |
    (e.present ? 1n : 0n);
  const hi = BigInt((e.ridPasid ?? 0) & 0xfffff) | (e.ridPriv === true ? 1n << 20n : 0n);
  return [lo, hi, 0n, 0n];
}

/**
 * Decodes a scalable-mode context entry from its eight dwords, starting at `dw[at]` (into `out`
 * when given, else a new object).
 */
export function decodeScalableContextEntry(dw: ArrayLike<number>, out?: Writable<ScalableContextEntry>, at = 0): ScalableContextEntry {
  const e: Writable<ScalableContextEntry> = out ?? {
    present: false,
    fpd: false,
    dte: false,
    paside: false,
    pre: false,
    pdts: 0,
    pasidDirPtr: 0,
    ridPasid: 0,
    ridPriv: false,
  };
  const lo = dw[at]!;
  const d2 = dw[at + 2]!;
  e.present = (lo & 1) !== 0;
  e.fpd = (lo & 2) !== 0;
  e.dte = (lo & 4) !== 0;
  e.paside = (lo & 8) !== 0;
  e.pre = (lo & 0x10) !== 0;
  e.pdts = (lo >>> 9) & 7;
  e.pasidDirPtr = entryAddress(lo, dw[at + 1]!);
  e.ridPasid = d2 & 0xfffff;
  e.ridPriv = (d2 & 0x100000) !== 0;
  return e;
}

/**
 * True when a scalable-mode context entry (dwords from `dw[at]`) has reserved bits set: bits
 * 8:5, PASIDDIRPTR ≥ HAW, bits 127:85 (bit 84 RID_PRIV too without ECAP.RPRIVS), bits 255:128
 * (QEMU: `val[1] & 0xFFFFFFFFFFE00000`, `val[2]`, `val[3]`).
 */
export function scalableContextEntryReserved(dw: ArrayLike<number>, haw: number, rprivs: boolean, at = 0): boolean {
  if ((dw[at]! & 0x1e0) !== 0 || addressBeyond(dw[at + 1]!, haw) || (dw[at + 1]! >>> 20) !== 0) return true;
  if ((dw[at + 2]! & (rprivs ? 0xffe00000 : 0xfff00000)) !== 0 || dw[at + 3] !== 0) return true;
  for (let i = at + 4, end = at + 8; i < end; i++) if (dw[i] !== 0) return true;
  return false;
}

/** The largest PASID + 1 a context entry's PDTS allows: 2^(PDTS+13). */
export function pdtsMaxPasid(pdts: number): number {
  return 1 << ((pdts & 7) + 13); // PDTS is 3 bits: at most 2^20 (a shift, not a pow() call)
}

/**
 * Linux `context_pdts()` from the number of PASIDs a directory covers: PDTS =
 * log2(maxPasid >> 6) − 7 (a 4 KiB directory → 2^15 PASIDs → PDTS 2; 2^20 PASIDs → PDTS 7).
 */
export function pdtsForMaxPasid(maxPasid: number): number {
  return Math.max(0, Math.log2(maxPasid / 64) - 7);
}
