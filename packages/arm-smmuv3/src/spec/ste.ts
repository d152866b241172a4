/**
 * Stream Table Entry (IHI0070 §5.2): 64 bytes, eight little-endian qwords. Every field is named
 * as the specification names it; `S1ContextPtr` ([51:6] of qword 0, Linux's mask) and `S2TTB`
 * ([51:4] of qword 3) are addresses, the rest are numbers.
 */

import { getAddr, getField, setAddr, setField, toQwords, toWords, type Field } from './bits.js';

/** STE fields other than the two addresses: `[qword, lsb, width]`. */
export const STE_FIELDS = {
  V: [0, 0, 1],
  Config: [0, 1, 3],
  S1Fmt: [0, 4, 2],
  S1CDMax: [0, 59, 5],
  S1DSS: [1, 0, 2],
  S1CIR: [1, 2, 2],
  S1COR: [1, 4, 2],
  S1CSH: [1, 6, 2],
  S2HWU: [1, 8, 4],
  DRE: [1, 12, 1],
  CONT: [1, 13, 4],
  DCP: [1, 17, 1],
  PPAR: [1, 18, 1],
  MEV: [1, 19, 1],
  SW_RESERVED: [1, 20, 4],
  S1PIE: [1, 24, 1],
  S2FWB: [1, 25, 1],
  S1MPAM: [1, 26, 1],
  S1STALLD: [1, 27, 1],
  EATS: [1, 28, 2],
  STRW: [1, 30, 2],
  MemAttr: [1, 32, 4],
  MTCFG: [1, 36, 1],
  ALLOCCFG: [1, 37, 4],
  SHCFG: [1, 44, 2],
  NSCFG: [1, 46, 2],
  PRIVCFG: [1, 48, 2],
  INSTCFG: [1, 50, 2],
  S2VMID: [2, 0, 16],
  S2T0SZ: [2, 32, 6],
  S2SL0: [2, 38, 2],
  S2IR0: [2, 40, 2],
  S2OR0: [2, 42, 2],
  S2SH0: [2, 44, 2],
  S2TG: [2, 46, 2],
  S2PS: [2, 48, 3],
  S2AA64: [2, 51, 1],
  S2ENDI: [2, 52, 1],
  S2AFFD: [2, 53, 1],
  S2PTW: [2, 54, 1],
  S2HD: [2, 55, 1],
  S2HA: [2, 56, 1],
  S2S: [2, 57, 1],
  S2R: [2, 58, 1],
} as const satisfies Record<string, Field>;

/** The name of an STE bit field. */
export type SteFieldName = keyof typeof STE_FIELDS;

/** A decoded STE: every field by its specification name. */
export type Ste = { -readonly [K in SteFieldName]: number } & {
  /** Stage-1 context pointer (PA, or IPA when stage 2 translates). */
  S1ContextPtr: number;
  /** Stage-2 translation table base. */
  S2TTB: number;
};

/** STE.Config: abort, no event. */
export const STE_CFG_ABORT = 0;
/** STE.Config: bypass both stages. */
export const STE_CFG_BYPASS = 4;
/** STE.Config: stage 1 translates, stage 2 bypasses. */
export const STE_CFG_S1_TRANS = 5;
/** STE.Config: stage 1 bypasses, stage 2 translates. */
export const STE_CFG_S2_TRANS = 6;
/** STE.Config: nested (both stages translate). */
export const STE_CFG_NESTED = 7;

/** STE.S1Fmt: linear CD table. */
export const STE_S1FMT_LINEAR = 0;
/** STE.S1Fmt: 2-level, 4 KB leaf tables (64 CDs). */
export const STE_S1FMT_4K_L2 = 1;
/** STE.S1Fmt: 2-level, 64 KB leaf tables (1024 CDs). */
export const STE_S1FMT_64K_L2 = 2;

/** STE.S1DSS: transactions without a SubstreamID terminate. */
export const STE_S1DSS_TERMINATE = 0;
/** STE.S1DSS: transactions without a SubstreamID bypass stage 1. */
export const STE_S1DSS_BYPASS = 1;
/** STE.S1DSS: transactions without a SubstreamID use CD 0 (SSID 0 traffic is then refused). */
export const STE_S1DSS_SSID0 = 2;

/** STE.EATS: ATS translation requests aborted. */
export const STE_EATS_ABT = 0;
/** STE.EATS: full ATS. */
export const STE_EATS_TRANS = 1;
/** STE.EATS: split-stage ATS. */
export const STE_EATS_S1CHK = 2;

/** STE.STRW: NS-EL1. */
export const STE_STRW_NSEL1 = 0;
/** STE.STRW: EL2. */
export const STE_STRW_EL2 = 2;

/** STE.SHCFG: use the incoming shareability. */
export const STE_SHCFG_INCOMING = 1;

/** STE.S2TG encodings. */
export const S2TG_4K = 0;
/** 64 KB granule. */
export const S2TG_64K = 1;
/** 16 KB granule. */
export const S2TG_16K = 2;

/** Words in an STE. */
export const STE_WORDS = 16;

/** A zeroed STE (all fields 0). */
export function emptySte(): Ste {
  const s = { S1ContextPtr: 0, S2TTB: 0 } as Ste;
  for (const k of Object.keys(STE_FIELDS) as SteFieldName[]) s[k] = 0;
  return s;
}

/** Encodes an STE into sixteen 32-bit words (fields not given are 0). */
export function encodeSteWords(ste: Partial<Ste>, out: Uint32Array = new Uint32Array(STE_WORDS)): Uint32Array {
  out.fill(0);
  for (const k of Object.keys(STE_FIELDS) as SteFieldName[]) {
    const v = ste[k];
    if (v !== undefined) setField(out, STE_FIELDS[k], v);
  }
  if (ste.S1ContextPtr !== undefined) setAddr(out, 0, 6, 51, ste.S1ContextPtr);
  if (ste.S2TTB !== undefined) setAddr(out, 3, 4, 51, ste.S2TTB);
  return out;
}

/** Encodes an STE into eight 64-bit qwords. */
export function encodeSte(ste: Partial<Ste>): bigint[] {
  return toQwords(encodeSteWords(ste));
}

/** Decodes an STE from sixteen 32-bit words. */
export function decodeSteWords(w: ArrayLike<number>): Ste {
  const s = { S1ContextPtr: getAddr(w, 0, 6, 51), S2TTB: getAddr(w, 3, 4, 51) } as Ste;
  for (const k of Object.keys(STE_FIELDS) as SteFieldName[]) s[k] = getField(w, STE_FIELDS[k]);
  return s;
}

/** Decodes an STE from eight (or fewer; missing ones are 0) 64-bit qwords. */
export function decodeSte(q: readonly bigint[]): Ste {
  const full = [...q, ...new Array<bigint>(Math.max(0, 8 - q.length)).fill(0n)].slice(0, 8);
  return decodeSteWords(toWords(full));
}
