/**
 * PASID directory entries (VT-d spec §9.5) and 512-bit scalable-mode PASID-table entries
 * (§9.6). The directory is indexed by `PASID[19:6]`, each 4 KiB PASID table by `PASID[5:0]`.
 */

import * as fields from './fields.js';

/** A decoded entry whose fields a decoder may overwrite (the hardware model reuses one). */
type Writable<T> = { -readonly [K in keyof T]: T[K] };

// Bound locally: the decoders run on every cache miss, and a module runner that implements
// import bindings as getters (vitest's) would turn each use into a call.
const { addressBeyond, entryAddress } = fields;

/** Bytes per PASID directory entry. */
export const PASID_DIR_ENTRY_SIZE = 8;
/** Bytes per PASID-table entry. */
export const PASID_ENTRY_SIZE = 64;
/** log2 of PASIDs per PASID table (Linux `PASID_PDE_SHIFT`). */
export const PASID_PDE_SHIFT = 6;

/** PGTT: first-stage translation only. */
export const PGTT_FIRST_STAGE = 1;
/** PGTT: second-stage translation only. */
export const PGTT_SECOND_STAGE = 2;
/** PGTT: nested (first stage over second stage). */
export const PGTT_NESTED = 3;
/** PGTT: pass-through. */
export const PGTT_PASS_THROUGH = 4;

/** Linux `FLPT_DEFAULT_DID`: the DID of first-stage-only, pass-through and SVA PASID entries. */
export const FLPT_DEFAULT_DID = 1;
/** Linux `IDA_START_DID`: dynamic domain IDs start here (0 is reserved, 1 is FLPT_DEFAULT_DID). */
export const IDA_START_DID = 2;

/** A decoded PASID directory entry. */
export interface PasidDirEntry {
  /** P. */
  readonly present: boolean;
  /** FPD. */
  readonly fpd: boolean;
  /** SMPTBLPTR: the PASID table. */
  readonly smptblptr: number;
}

/** Encodes a PASID directory entry: `SMPTBLPTR | FPD<<1 | P`. */
export function encodePasidDirEntry(e: { present: boolean; fpd?: boolean; smptblptr: bigint }): bigint {
  return e.smptblptr | (e.fpd === true ? 2n : 0n) | (e.present ? 1n : 0n);
}

/** Decodes a PASID directory entry from its two dwords. */
export function decodePasidDirEntry(lo: number, hi: number): PasidDirEntry {
  return { present: (lo & 1) !== 0, fpd: (lo & 2) !== 0, smptblptr: entryAddress(lo, hi) };
}

/** True when a PASID directory entry has reserved bits set (bits 11:2, address ≥ HAW). */
export function pasidDirEntryReserved(lo: number, hi: number, haw: number): boolean {
  return (lo & 0xffc) !== 0 || addressBeyond(hi, haw) || (hi >>> 20) !== 0;
}

/** A decoded scalable-mode PASID-table entry. */
export interface PasidEntry {
  /** P. */
  readonly present: boolean;
  /** FPD. */
  readonly fpd: boolean;
  /** AW: second-stage adjusted address width (1/2/3 → 3/4/5 levels). */
  readonly aw: number;
  /** PGTT: PASID-granular translation type. */
  readonly pgtt: number;
  /** SSADE: second-stage accessed/dirty enable. */
  readonly ssade: boolean;
  /** SSPTPTR: second-stage page-table pointer. */
  readonly ssptptr: number;
  /** DID. */
  readonly did: number;
  /** PWSNP: page-walk snoop. */
  readonly pwsnp: boolean;
  /** PGSNP: page snoop. */
  readonly pgsnp: boolean;
  /** SRE: supervisor requests enable. */
  readonly sre: boolean;
  /** FSPM (FLPM): first-stage paging mode (0 = 4-level, 1 = 5-level). */
  readonly fspm: number;
  /** WPE: write-protect enable. */
  readonly wpe: boolean;
  /** EAFE: extended accessed flag enable. */
  readonly eafe: boolean;
  /** FSPTPTR (FLPTPTR): first-stage page-table pointer. */
  readonly fsptptr: number;
}

/** Fields accepted by {@link encodePasidEntry}. */
export interface PasidEntryFields {
  present: boolean;
  fpd?: boolean;
  aw?: number;
  pgtt: number;
  ssade?: boolean;
  ssptptr?: bigint;
  did: number;
  pwsnp?: boolean;
  pgsnp?: boolean;
  sre?: boolean;
  fspm?: number;
  wpe?: boolean;
  eafe?: boolean;
  fsptptr?: bigint;
}

/** Encodes a PASID-table entry into its eight 64-bit words (val[3..7] are zero). */
export function encodePasidEntry(e: PasidEntryFields): bigint[] {
  const b = (v: boolean | undefined, bit: bigint) => (v === true ? 1n << bit : 0n);
  const val0 =
    (e.ssptptr ?? 0n) |
    b(e.ssade, 9n) |
    (BigInt(e.pgtt & 7) << 6n) |
    (BigInt((e.aw ?? 0) & 7) << 2n) |
    b(e.fpd, 1n) |
    b(e.present, 0n);
  const val1 = BigInt(e.did & 0xffff) | b(e.pwsnp, 23n) | b(e.pgsnp, 24n);
  const val2 = (e.fsptptr ?? 0n) | b(e.eafe, 7n) | b(e.wpe, 4n) | (BigInt((e.fspm ?? 0) & 3) << 2n) | b(e.sre, 0n);
  return [val0, val1, val2, 0n, 0n, 0n, 0n, 0n];
}

/**
 * Decodes a PASID-table entry from its sixteen dwords, starting at `dw[at]` (into `out` when
 * given, else a new object).
 */
export function decodePasidEntry(dw: ArrayLike<number>, out?: Writable<PasidEntry>, at = 0): PasidEntry {
  const e: Writable<PasidEntry> = out ?? {
    present: false,
    fpd: false,
    aw: 0,
    pgtt: 0,
    ssade: false,
    ssptptr: 0,
    did: 0,
    pwsnp: false,
    pgsnp: false,
    sre: false,
    fspm: 0,
    wpe: false,
    eafe: false,
    fsptptr: 0,
  };
  const d0 = dw[at]!;
  const d2 = dw[at + 2]!;
  const d4 = dw[at + 4]!;
  e.present = (d0 & 1) !== 0;
  e.fpd = (d0 & 2) !== 0;
  e.aw = (d0 >>> 2) & 7;
  e.pgtt = (d0 >>> 6) & 7;
  e.ssade = (d0 & 0x200) !== 0;
  e.ssptptr = entryAddress(d0, dw[at + 1]!);
  e.did = d2 & 0xffff;
  e.pwsnp = (d2 & (1 << 23)) !== 0;
  e.pgsnp = (d2 & (1 << 24)) !== 0;
  e.sre = (d4 & 1) !== 0;
  e.fspm = (d4 >>> 2) & 3;
  e.wpe = (d4 & 0x10) !== 0;
  e.eafe = (d4 & 0x80) !== 0;
  e.fsptptr = entryAddress(d4, dw[at + 5]!);
  return e;
}

/** Capabilities that decide which PASID-entry bits are reserved. */
export interface PasidEntryCaps {
  /** Host address width. */
  readonly haw: number;
  /** ECAP.SC: PGSNP allowed. */
  readonly sc: boolean;
  /** ECAP.SMPWCS: PWSNP allowed. */
  readonly smpwcs: boolean;
  /** ECAP.MTS: CD/EMTE/PAT allowed. */
  readonly mts: boolean;
  /** ECAP.SSADS: SSADE allowed. */
  readonly ssads: boolean;
  /** ECAP.EAFS: EAFE allowed. */
  readonly eafs: boolean;
  /** ECAP.SRS: SRE allowed. */
  readonly srs: boolean;
}

/**
 * True when a PASID-table entry has reserved bits set (→ fault 0x5A): bit 5, bits 11:10, the
 * pointers ≥ HAW, val[1] bits 22:16 and 31:27 (+ CD/EMTE/PAT without ECAP.MTS, PWSNP/PGSNP
 * without SMPWCS/SC), val[2] bits 1 and 11:8 (+ SRE/EAFE without SRS/EAFS), SSADE without
 * SSADS, and all of val[3..7]. The entry's dwords start at `dw[at]`.
 */
export function pasidEntryReserved(dw: ArrayLike<number>, caps: PasidEntryCaps, at = 0): boolean {
  const d0 = dw[at]!;
  const d1 = dw[at + 1]!;
  if ((d0 & 0xc20) !== 0 || addressBeyond(d1, caps.haw) || (d1 >>> 20) !== 0) return true;
  if (!caps.ssads && (d0 & 0x200) !== 0) return true;
  const d2 = dw[at + 2]!;
  if ((d2 & 0xf87f0000) !== 0) return true;
  if (!caps.mts && ((d2 & 0x06000000) !== 0 || dw[at + 3] !== 0)) return true;
  if (!caps.smpwcs && (d2 & (1 << 23)) !== 0) return true;
  if (!caps.sc && (d2 & (1 << 24)) !== 0) return true;
  const d4 = dw[at + 4]!;
  const d5 = dw[at + 5]!;
  if ((d4 & 0xf02) !== 0 || addressBeyond(d5, caps.haw) || (d5 >>> 20) !== 0) return true;
  if (!caps.srs && (d4 & 1) !== 0) return true;
  if (!caps.eafs && (d4 & 0x80) !== 0) return true;
  for (let i = at + 6, end = at + 16; i < end; i++) if (dw[i] !== 0) return true;
  return false;
}
