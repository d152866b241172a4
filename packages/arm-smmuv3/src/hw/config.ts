/**
 * STE and CD decoding into the configuration the model translates with, and the ILLEGAL
 * checks of IHI0070 §5.2 and §5.4 (an ILLEGAL STE is C_BAD_STE, an ILLEGAL CD is C_BAD_CD).
 */

import { getAddr, type Field } from '../spec/bits.js';
import { CD_FIELDS } from '../spec/cd.js';
import { IDR0, IDR0_STALL_MODEL_FORCE, IDR0_STALL_MODEL_NO_STALL, IDR1, IDR3, IDR5, addressSizeBits, regField } from '../spec/registers.js';
import { STE_FIELDS, STE_STRW_EL2 } from '../spec/ste.js';
import { levelShift, s1StartLevel, s2StartLevel, s2tgShift, tg0Shift, tg1Shift } from '../spec/pgtable.js';
import { POW2 } from './pow2.js';
import type { TlbContext } from './tlb.js';
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

/** A valid, decoded STE: the fields the model translates with. */
export interface StreamConfig {
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
  /** STE.S1Fmt. */
  readonly s1Fmt: number;
  /** STE.S1ContextPtr. */
  readonly s1ContextPtr: number;
  /** STE.S1DSS. */
  readonly s1dss: number;
  /** STE.S1STALLD. */
  readonly s1StallD: boolean;
  /** STE.EATS. */
  readonly eats: number;
  /** STE.PPAR. */
  readonly ppar: number;
  /** STE.S2R: record stage-2 faults. */
  readonly s2r: boolean;
  /** STE.S2S: stall on stage-2 faults. */
  readonly s2s: boolean;
  /** The TLB context of this stream's stage-2-only entries (resolved by the model). */
  s2Ctx: TlbContext | undefined;
  /** The TLB context of this stream's global stage-1 entries (resolved by the model). */
  globalCtx: TlbContext | undefined;
}

/** A field as (word index, shift, mask) for fields inside one 32-bit word: no branches to read. */
type WordField = readonly [word: number, shift: number, mask: number];

function wf(f: Field): WordField {
  const [q, lsb, width] = f;
  if ((lsb % 32) + width > 32) throw new Error('field crosses a word'); // module load: a wrong table
  return [q * 2 + (lsb >= 32 ? 1 : 0), lsb % 32, width >= 32 ? 0xffffffff : (1 << width) - 1];
}

function rd(w: ArrayLike<number>, f: WordField): number {
  return (w[f[0]]! >>> f[1]) & f[2];
}

const F = Object.fromEntries(Object.entries(STE_FIELDS).map(([k, v]) => [k, wf(v)])) as Record<keyof typeof STE_FIELDS, WordField>;

/** Decodes and checks an STE (qwords 0-3 as eight words); undefined when V=0 or ILLEGAL (C_BAD_STE). */
export function decodeStreamConfig(w: ArrayLike<number>, f: Features): StreamConfig | undefined {
  if (rd(w, F.V) === 0) return undefined;
  const config = rd(w, F.Config);
  const vmid = rd(w, F.S2VMID);
  if ((config & 4) === 0) return streamConfig(config, false, false, vmid, undefined, 0, 0, 0, 0, false, 0, 0, false, false);
  const s1 = (config & 1) === 1;
  const s2 = (config & 2) === 2;
  if ((s1 && !f.s1p) || (s2 && !f.s2p)) return undefined;
  const strw = rd(w, F.STRW);
  if ((strw & 1) === 1 || (strw === STE_STRW_EL2 && !f.hyp)) return undefined;
  if (!f.vmid16 && vmid > 0xff) return undefined;
  const s1CdMax = rd(w, F.S1CDMax);
  const s1Fmt = rd(w, F.S1Fmt);
  const s1StallD = rd(w, F.S1STALLD) === 1;
  let cdMax = 0;
  if (s1) {
    cdMax = f.ssidBits === 0 ? 0 : s1CdMax;
    if (cdMax > f.ssidBits) return undefined;
    if (f.qemu && s1CdMax !== 0) return undefined; // QEMU: "does not support multiple context descriptors"
    if (cdMax > 0 && (s1Fmt === 3 || (s1Fmt !== 0 && !f.cd2l))) return undefined;
    if (s1StallD && f.stallModel !== 0) return undefined;
  }
  const eats = rd(w, F.EATS);
  if (eats === 2 && !s2) return undefined;
  const s2r = rd(w, F.S2R) === 1;
  const s2s = rd(w, F.S2S) === 1;
  let s2p: StageParams | undefined;
  if (s2) {
    if (rd(w, F.S2AA64) !== 1 || rd(w, F.S2ENDI) === 1) return undefined;
    const g = s2tgShift(rd(w, F.S2TG));
    if (g < 0 || !f.granules.includes(g)) return undefined;
    const t0sz = rd(w, F.S2T0SZ);
    const inputBits = 64 - t0sz;
    const maxT0sz = f.stt ? (g === 16 ? 47 : 48) : 39;
    if (t0sz > maxT0sz || inputBits > Math.max(f.oasBits, 40) || inputBits > 52) return undefined;
    const start = s2StartLevel(rd(w, F.S2SL0), g);
    if (start < 0) return undefined;
    const topBits = inputBits - levelShift(g, start);
    if (topBits < 1 || topBits > g - 3 + 4 || (start === 0 && topBits > g - 3)) return undefined;
    const psBits = Math.min(addressSizeBits(rd(w, F.S2PS)), f.oasBits);
    const ttb = getAddr(w, 3, 4, 51);
    if (ttb >= POW2[psBits]!) return undefined;
    const ha = rd(w, F.S2HA) === 1;
    const hd = rd(w, F.S2HD) === 1;
    if ((ha && f.httu < 1) || (hd && f.httu < 2)) return undefined;
    if ((s2s && f.stallModel === IDR0_STALL_MODEL_NO_STALL) || (!s2s && f.stallModel === IDR0_STALL_MODEL_FORCE)) return undefined;
    s2p = stage(2, g, start, inputBits, ttb, psBits, rd(w, F.S2AFFD) === 1, ha, hd && ha, false, false, f.xnx);
  }
  return streamConfig(config, s1, s2, vmid, s2p, cdMax, s1Fmt, getAddr(w, 0, 6, 51), rd(w, F.S1DSS), s1StallD, eats, rd(w, F.PPAR), s2r, s2s);
}

/** One object shape for every StreamConfig. */
function streamConfig(
  config: number, s1: boolean, s2: boolean, vmid: number, s2p: StageParams | undefined, cdMax: number, s1Fmt: number,
  s1ContextPtr: number, s1dss: number, s1StallD: boolean, eats: number, ppar: number, s2r: boolean, s2s: boolean,
): StreamConfig {
  return { config, s1, s2, vmid, s2p, cdMax, s1Fmt, s1ContextPtr, s1dss, s1StallD, eats, ppar, s2r, s2s, s2Ctx: undefined, globalCtx: undefined };
}

function maskBits(n: number): number {
  return n >= 32 ? 0xffffffff : n <= 0 ? 0 : (1 << n) - 1;
}

function stage(
  st: 1 | 2, g: number, startLevel: number, inputBits: number, ttb: number, oasBits: number,
  affd: boolean, ha: boolean, hd: boolean, had: boolean, wxn: boolean, xnx: boolean, tbi = false,
): StageParams {
  // Bits [top-1 : inputBits] are the range check (top = 56 with TBI), [inputBits-1 : 0] the address.
  const top = tbi ? 56 : 64;
  const hiFrom = inputBits > 32 ? inputBits - 32 : 0;
  return {
    stage: st, granuleShift: g, startLevel, inputBits, ttb, oasBits, oaLimit: POW2[oasBits]!,
    inHiLimit: inputBits >= 32 ? POW2[inputBits - 32]! : 0,
    topHiMask: (maskBits(top - 32 - hiFrom) << hiFrom) >>> 0,
    topLoMask: inputBits < 32 ? ~maskBits(inputBits) >>> 0 : 0,
    keepHiMask: maskBits(hiFrom) >>> 0,
    keepLoMask: inputBits < 32 ? maskBits(inputBits) >>> 0 : 0xffffffff,
    affd, ha, hd, had, wxn, xnx,
  };
}

/** A valid, decoded CD: the fields the model translates with. */
export interface ContextConfig {
  /** TTB0 walk parameters (undefined when EPD0). */
  readonly tt0: StageParams | undefined;
  /** TTB1 walk parameters (undefined when EPD1). */
  readonly tt1: StageParams | undefined;
  /** ASID. */
  readonly asid: number;
  /** CD.S: stall on faults. */
  readonly s: boolean;
  /** CD.R: record faults. */
  readonly r: boolean;
  /** CD.A: abort on faults (else RAZ/WI). */
  readonly a: boolean;
  /** CD.TBI0. */
  readonly tbi0: boolean;
  /** CD.TBI1. */
  readonly tbi1: boolean;
  /** The TLB context of this CD's non-global entries (resolved by the model for `ctxVmid`). */
  ctx: TlbContext | undefined;
  /** The VMID `ctx` was resolved for. */
  ctxVmid: number;
}

const C = Object.fromEntries(Object.entries(CD_FIELDS).map(([k, v]) => [k, wf(v)])) as Record<keyof typeof CD_FIELDS, WordField>;

function ttParams(
  f: Features, txsz: number, g: number, ttb: number, ipsBits: number, affd: boolean, ha: boolean, hd: boolean, wxn: boolean, had: number, tbi: boolean,
): StageParams | undefined | false {
  if (g < 0 || !f.granules.includes(g)) return false;
  const min = f.vax && g === 16 ? 12 : 16;
  const max = f.stt ? (g === 16 ? 47 : 48) : 39;
  if (txsz < min || txsz > max) return false;
  if (ttb >= POW2[ipsBits]!) return false;
  const inputBits = 64 - txsz;
  return stage(1, g, s1StartLevel(inputBits, g), inputBits, ttb, ipsBits, affd, ha, hd && ha, f.had && had === 1, wxn, false, tbi);
}

/** Decodes and checks a CD (qwords 0-2 as six words); undefined when V=0 or ILLEGAL (C_BAD_CD). */
export function decodeContextConfig(w: ArrayLike<number>, f: Features, s1StallD: boolean): ContextConfig | undefined {
  if (rd(w, C.V) === 0 || rd(w, C.AA64) === 0 || rd(w, C.ENDI) === 1) return undefined;
  const ha = rd(w, C.HA) === 1;
  const hd = rd(w, C.HD) === 1;
  if ((ha && f.httu < 1) || (hd && f.httu < 2)) return undefined;
  if (f.qemu && (ha || hd)) return undefined;
  const s = rd(w, C.S) === 1;
  if (s && (f.stallModel === IDR0_STALL_MODEL_NO_STALL || s1StallD)) return undefined;
  if (!s && f.stallModel === IDR0_STALL_MODEL_FORCE) return undefined;
  const a = rd(w, C.A) === 1;
  if (!a && f.termModel) return undefined;
  const asid = rd(w, C.ASID);
  if (!f.asid16 && asid > 0xff) return undefined;
  const ipsBits = Math.min(addressSizeBits(rd(w, C.IPS)), f.oasBits);
  const affd = rd(w, C.AFFD) === 1;
  const wxn = rd(w, C.WXN) === 1;
  let tt0: StageParams | undefined;
  let tt1: StageParams | undefined;
  if (rd(w, C.EPD0) === 0) {
    const p = ttParams(f, rd(w, C.T0SZ), tg0Shift(rd(w, C.TG0)), getAddr(w, 1, 4, 51), ipsBits, affd, ha, hd, wxn, rd(w, C.HAD0), rd(w, C.TBI0) === 1);
    if (p === false) return undefined;
    tt0 = p;
  }
  if (rd(w, C.EPD1) === 0) {
    const p = ttParams(f, rd(w, C.T1SZ), tg1Shift(rd(w, C.TG1)), getAddr(w, 2, 4, 51), ipsBits, affd, ha, hd, wxn, rd(w, C.HAD1), rd(w, C.TBI1) === 1);
    if (p === false) return undefined;
    tt1 = p;
  }
  return {
    tt0, tt1, asid, s, r: rd(w, C.R) === 1, a, tbi0: rd(w, C.TBI0) === 1, tbi1: rd(w, C.TBI1) === 1,
    ctx: undefined, ctxVmid: -1,
  };
}
