/**
 * Context Descriptor (IHI0070 §5.4) and the Level 1 CD table descriptor (§5.3). A CD is 64
 * bytes; `TTB0`/`TTB1` ([51:4] of qwords 1 and 2, Linux's mask) are addresses.
 */

import { getAddr, getField, setAddr, setField, toQwords, toWords, type Field } from './bits.js';

/** CD fields other than the table bases: `[qword, lsb, width]`. */
export const CD_FIELDS = {
  T0SZ: [0, 0, 6],
  TG0: [0, 6, 2],
  IR0: [0, 8, 2],
  OR0: [0, 10, 2],
  SH0: [0, 12, 2],
  EPD0: [0, 14, 1],
  ENDI: [0, 15, 1],
  T1SZ: [0, 16, 6],
  TG1: [0, 22, 2],
  IR1: [0, 24, 2],
  OR1: [0, 26, 2],
  SH1: [0, 28, 2],
  EPD1: [0, 30, 1],
  V: [0, 31, 1],
  IPS: [0, 32, 3],
  AFFD: [0, 35, 1],
  WXN: [0, 36, 1],
  UWXN: [0, 37, 1],
  TBI0: [0, 38, 1],
  TBI1: [0, 39, 1],
  PAN: [0, 40, 1],
  AA64: [0, 41, 1],
  HD: [0, 42, 1],
  HA: [0, 43, 1],
  S: [0, 44, 1],
  R: [0, 45, 1],
  A: [0, 46, 1],
  ASET: [0, 47, 1],
  ASID: [0, 48, 16],
  NSCFG0: [1, 0, 1],
  HAD0: [1, 1, 1],
  E0PD0: [1, 2, 1],
  HAFT: [1, 3, 1],
  NSCFG1: [2, 0, 1],
  HAD1: [2, 1, 1],
  E0PD1: [2, 2, 1],
  MAIR0: [3, 0, 32],
  MAIR1: [3, 32, 32],
  AMAIR0: [4, 0, 32],
  AMAIR1: [4, 32, 32],
  PARTID: [5, 32, 16],
  PMG: [5, 48, 8],
} as const satisfies Record<string, Field>;

/** The name of a CD bit field. */
export type CdFieldName = keyof typeof CD_FIELDS;

/** A decoded CD: every field by its specification name. */
export type Cd = { -readonly [K in CdFieldName]: number } & {
  /** Translation table base 0 (lower VA range). */
  TTB0: number;
  /** Translation table base 1 (upper VA range). */
  TTB1: number;
};

/** CD.TG0 encodings. */
export const TG0_4K = 0;
/** 64 KB granule. */
export const TG0_64K = 1;
/** 16 KB granule. */
export const TG0_16K = 2;
/** CD.TG1 encodings (different from TG0). */
export const TG1_16K = 1;
/** 4 KB granule. */
export const TG1_4K = 2;
/** 64 KB granule. */
export const TG1_64K = 3;

/** Cacheability: write-back write-allocate. */
export const CACHE_WBWA = 1;
/** Shareability: inner shareable. */
export const SH_ISH = 3;

/** Words in a CD. */
export const CD_WORDS = 16;
/** Bytes per CD. */
export const CD_SIZE = 64;

/** Encodes a CD into sixteen 32-bit words (fields not given are 0). */
export function encodeCdWords(cd: Partial<Cd>, out: Uint32Array = new Uint32Array(CD_WORDS)): Uint32Array {
  out.fill(0);
  for (const k of Object.keys(CD_FIELDS) as CdFieldName[]) {
    const v = cd[k];
    if (v !== undefined) setField(out, CD_FIELDS[k], v);
  }
  if (cd.TTB0 !== undefined) setAddr(out, 1, 4, 51, cd.TTB0);
  if (cd.TTB1 !== undefined) setAddr(out, 2, 4, 51, cd.TTB1);
  return out;
}

/** Encodes a CD into eight 64-bit qwords. */
export function encodeCd(cd: Partial<Cd>): bigint[] {
  return toQwords(encodeCdWords(cd));
}

/** Decodes a CD from sixteen 32-bit words. */
export function decodeCdWords(w: ArrayLike<number>): Cd {
  const c = { TTB0: getAddr(w, 1, 4, 51), TTB1: getAddr(w, 2, 4, 51) } as Cd;
  for (const k of Object.keys(CD_FIELDS) as CdFieldName[]) c[k] = getField(w, CD_FIELDS[k]);
  return c;
}

/** Decodes a CD from eight (or fewer) 64-bit qwords. */
export function decodeCd(q: readonly bigint[]): Cd {
  const full = [...q, ...new Array<bigint>(Math.max(0, 8 - q.length)).fill(0n)].slice(0, 8);
  return decodeCdWords(toWords(full));
}

/** L1CD.V. */
export const L1CD_V: Field = [0, 0, 1];
/** Bytes per L1CD. */
export const L1CD_SIZE = 8;
/** CDs per 4 KB leaf (S1Fmt 1). */
export const CD_L2_ENTRIES_4K = 64;
/** CDs per 64 KB leaf (S1Fmt 2); Linux's CTXDESC_L2_ENTRIES. */
export const CD_L2_ENTRIES_64K = 1024;

/** A decoded L1CD. */
export interface L1Cd {
  /** Valid. */
  readonly V: number;
  /** Leaf table address ([51:12]). */
  readonly L2Ptr: number;
}

/** Encodes an L1CD into two 32-bit words. */
export function encodeL1Cd(d: L1Cd, out: Uint32Array = new Uint32Array(2)): Uint32Array {
  out.fill(0);
  setField(out, L1CD_V, d.V);
  setAddr(out, 0, 12, 51, d.L2Ptr);
  return out;
}

/** Decodes an L1CD. */
export function decodeL1Cd(w: ArrayLike<number>): L1Cd {
  return { V: getField(w, L1CD_V), L2Ptr: getAddr(w, 0, 12, 51) };
}
