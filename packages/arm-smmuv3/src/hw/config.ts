/**
 * STE and CD decoding into the configuration the model translates with, and the ILLEGAL
 * checks of IHI0070 §5.2 and §5.4 (an ILLEGAL STE is C_BAD_STE, an ILLEGAL CD is C_BAD_CD).
 */

import type { Cd } from '../spec/cd.js';
import { decodeCdWords } from '../spec/cd.js';
import { IDR0, IDR0_STALL_MODEL_FORCE, IDR0_STALL_MODEL_NO_STALL, IDR1, IDR3, IDR5, addressSizeBits, regField } from '../spec/registers.js';
import { decodeSteWords, STE_STRW_EL2, type Ste } from '../spec/ste.js';
import { levelShift, s1StartLevel, s2StartLevel, s2tgShift, tg0Shift, tg1Shift } from '../spec/pgtable.js';
import type { StageParams } from './walker.js';

/** The SMMU's feature registers, decoded once. */
export interface Features {
  readonly idr0: number;
  readonly idr1: number;
  readonly idr3: number;
  readonly idr5: number;
  readonly s1p: boolean;
  readonly s2p: boolean;
  readonly oasBits: number;
  readonly ssidBits: number;
  readonly sidBits: number;
  readonly httu: number;
  readonly stallModel: number;
  readonly termModel: boolean;
  readonly asid16: boolean;
  readonly vmid16: boolean;
  readonly cd2l: boolean;
  readonly hyp: boolean;
  readonly ats: boolean;
  readonly pri: boolean;
  readonly ril: boolean;
  readonly had: boolean;
  readonly xnx: boolean;
  readonly stt: boolean;
  readonly vax: boolean;
  readonly granules: readonly number[];
  /** QEMU's limits: a single CD (S1CDMax ≠ 0 is C_BAD_STE), no HTTU in CDs. */
  readonly qemu: boolean;
}

/** Decodes the feature registers. */
export function decodeFeatures(idr0: number, idr1: number, idr3: number, idr5: number, qemu: boolean): Features {
  const granules: number[] = [];
  if (regField(idr5, IDR5.GRAN4K)) granules.push(12);
  if (regField(idr5, IDR5.GRAN16K)) granules.push(14);
  if (regField(idr5, IDR5.GRAN64K)) granules.push(16);
  return {
    idr0, idr1, idr3, idr5,
    s1p: regField(idr0, IDR0.S1P) === 1,
    s2p: regField(idr0, IDR0.S2P) === 1,
    oasBits: addressSizeBits(regField(idr5, IDR5.OAS)),
    ssidBits: regField(idr1, IDR1.SSIDSIZE),
    sidBits: regField(idr1, IDR1.SIDSIZE),
    httu: regField(idr0, IDR0.HTTU),
    stallModel: regField(idr0, IDR0.STALL_MODEL),
    termModel: regField(idr0, IDR0.TERM_MODEL) === 1,
    asid16: regField(idr0, IDR0.ASID16) === 1,
    vmid16: regField(idr0, IDR0.VMID16) === 1,
    cd2l: regField(idr0, IDR0.CD2L) === 1,
    hyp: regField(idr0, IDR0.HYP) === 1,
    ats: regField(idr0, IDR0.ATS) === 1,
    pri: regField(idr0, IDR0.PRI) === 1,
    ril: regField(idr3, IDR3.RIL) === 1,
    had: regField(idr3, IDR3.HAD) === 1,
    xnx: regField(idr3, IDR3.XNX) === 1,
    stt: regField(idr3, IDR3.STT) === 1,
    vax: regField(idr5, IDR5.VAX) === 1,
    granules,
    qemu,
  };
}

/** A valid, decoded STE. */
export interface StreamConfig {
  /** The raw STE fields. */
  readonly ste: Ste;
  /** STE.Config. */
  readonly config: number;
  /** Stage 1 translates. */
  readonly s1: boolean;
  /** Stage 2 translates. */
  readonly s2: boolean;
  /** STE.S2VMID (tags TLB entries even when stage 2 bypasses). */
  readonly vmid: number;
  /** Stage-2 walk parameters. */
  readonly s2p: StageParams | undefined;
  /** log2 of the CD table size (0 = one CD, substreams disabled). */
  readonly cdMax: number;
}

/** Decodes and checks an STE; undefined when V=0 or ILLEGAL (C_BAD_STE). */
export function decodeStreamConfig(w: ArrayLike<number>, f: Features): StreamConfig | undefined {
  const ste = decodeSteWords(w);
  if (ste.V === 0) return undefined;
  const config = ste.Config;
  if ((config & 4) === 0) return { ste, config, s1: false, s2: false, vmid: ste.S2VMID, s2p: undefined, cdMax: 0 };
  const s1 = (config & 1) === 1;
  const s2 = (config & 2) === 2;
  if ((s1 && !f.s1p) || (s2 && !f.s2p)) return undefined;
  if ((ste.STRW & 1) === 1 || (ste.STRW === STE_STRW_EL2 && !f.hyp)) return undefined;
  if (!f.vmid16 && ste.S2VMID > 0xff) return undefined;
  let cdMax = 0;
  if (s1) {
    cdMax = f.ssidBits === 0 ? 0 : ste.S1CDMax;
    if (cdMax > f.ssidBits) return undefined;
    if (f.qemu && ste.S1CDMax !== 0) return undefined; // QEMU: "does not support multiple context descriptors"
    if (cdMax > 0 && (ste.S1Fmt === 3 || (ste.S1Fmt !== 0 && !f.cd2l))) return undefined;
    if (ste.S1STALLD === 1 && f.stallModel !== 0) return undefined;
  }
  if (ste.EATS === 2 && !s2) return undefined;
  let s2p: StageParams | undefined;
  if (s2) {
    if (ste.S2AA64 !== 1 || ste.S2ENDI === 1) return undefined;
    const g = s2tgShift(ste.S2TG);
    if (g < 0 || !f.granules.includes(g)) return undefined;
    const inputBits = 64 - ste.S2T0SZ;
    const maxT0sz = f.stt ? (g === 16 ? 47 : 48) : 39;
    if (ste.S2T0SZ > maxT0sz || inputBits > Math.max(f.oasBits, 40) || inputBits > 52) return undefined;
    const start = s2StartLevel(ste.S2SL0, g);
    if (start < 0) return undefined;
    const topBits = inputBits - levelShift(g, start);
    if (topBits < 1 || topBits > g - 3 + 4 || (start === 0 && topBits > g - 3)) return undefined;
    const psBits = Math.min(addressSizeBits(ste.S2PS), f.oasBits);
    if (ste.S2TTB >= 2 ** psBits) return undefined;
    if ((ste.S2HA === 1 && f.httu < 1) || (ste.S2HD === 1 && f.httu < 2)) return undefined;
    if ((ste.S2S === 1 && f.stallModel === IDR0_STALL_MODEL_NO_STALL) || (ste.S2S === 0 && f.stallModel === IDR0_STALL_MODEL_FORCE)) {
      return undefined;
    }
    s2p = {
      stage: 2, granuleShift: g, startLevel: start, inputBits, ttb: ste.S2TTB, oasBits: psBits,
      affd: ste.S2AFFD === 1, ha: ste.S2HA === 1, hd: ste.S2HD === 1 && ste.S2HA === 1, had: false, wxn: false, xnx: f.xnx,
    };
  }
  return { ste, config, s1, s2, vmid: ste.S2VMID, s2p, cdMax };
}

/** A valid, decoded CD. */
export interface ContextConfig {
  /** The raw CD fields. */
  readonly cd: Cd;
  /** TTB0 walk parameters (undefined when EPD0). */
  readonly tt0: StageParams | undefined;
  /** TTB1 walk parameters (undefined when EPD1). */
  readonly tt1: StageParams | undefined;
  /** ASID. */
  readonly asid: number;
}

function ttParams(
  f: Features, txsz: number, g: number, ttb: number, ipsBits: number, cd: Cd, had: number,
): StageParams | undefined | false {
  if (g < 0 || !f.granules.includes(g)) return false;
  const min = f.vax && g === 16 ? 12 : 16;
  const max = f.stt ? (g === 16 ? 47 : 48) : 39;
  if (txsz < min || txsz > max) return false;
  if (ttb >= 2 ** ipsBits) return false;
  const inputBits = 64 - txsz;
  return {
    stage: 1, granuleShift: g, startLevel: s1StartLevel(inputBits, g), inputBits, ttb, oasBits: ipsBits,
    affd: cd.AFFD === 1, ha: cd.HA === 1, hd: cd.HD === 1 && cd.HA === 1, had: f.had && had === 1, wxn: cd.WXN === 1, xnx: false,
  };
}

/** Decodes and checks a CD; undefined when V=0 or ILLEGAL (C_BAD_CD). */
export function decodeContextConfig(w: ArrayLike<number>, f: Features, s1StallD: boolean): ContextConfig | undefined {
  const cd = decodeCdWords(w);
  if (cd.V === 0 || cd.AA64 === 0 || cd.ENDI === 1) return undefined;
  if ((cd.HA === 1 && f.httu < 1) || (cd.HD === 1 && f.httu < 2)) return undefined;
  if (f.qemu && (cd.HA === 1 || cd.HD === 1)) return undefined;
  if (cd.S === 1 && (f.stallModel === IDR0_STALL_MODEL_NO_STALL || s1StallD)) return undefined;
  if (cd.S === 0 && f.stallModel === IDR0_STALL_MODEL_FORCE) return undefined;
  if (cd.A === 0 && f.termModel) return undefined;
  if (!f.asid16 && cd.ASID > 0xff) return undefined;
  const ipsBits = Math.min(addressSizeBits(cd.IPS), f.oasBits);
  let tt0: StageParams | undefined;
  let tt1: StageParams | undefined;
  if (cd.EPD0 === 0) {
    const p = ttParams(f, cd.T0SZ, tg0Shift(cd.TG0), cd.TTB0, ipsBits, cd, cd.HAD0);
    if (p === false) return undefined;
    tt0 = p;
  }
  if (cd.EPD1 === 0) {
    const p = ttParams(f, cd.T1SZ, tg1Shift(cd.TG1), cd.TTB1, ipsBits, cd, cd.HAD1);
    if (p === false) return undefined;
    tt1 = p;
  }
  return { cd, tt0, tt1, asid: cd.ASID };
}
