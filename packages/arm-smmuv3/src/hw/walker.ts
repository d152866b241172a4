/**
 * VMSAv8-64 translation table walks for 4K, 16K and 64K granules (Arm ARM D8; IHI0070 §3.4):
 * table/block/page descriptors, hierarchical APTable/XNTable/PXNTable, AP/S2AP and XN
 * permissions, the access flag (with AFFD and HTTU HA), dirty state (HTTU HD with DBM), output
 * address-size checks, and nested walks where every stage-1 table access goes through stage 2.
 * Descriptors are read as two 32-bit halves: no BigInt. Levels are bounded (at most four).
 */

import type { PhysicalMemoryLike } from '@ioasid/uapi';
import {
  DESC_AF,
  DESC_HI_DBM,
  DESC_HI_PXN,
  DESC_HI_UXN,
  S1_AP_RDONLY,
  S1_AP_UNPRIV,
  S1_NG,
  S2_AP_READ,
  S2_AP_WRITE,
  TABLE_HI_APTABLE0,
  TABLE_HI_APTABLE1,
  TABLE_HI_PXNTABLE,
  TABLE_HI_XNTABLE,
  descAddr,
} from '../spec/pgtable.js';
import { EVT_CLASS_TT, F_ACCESS, F_ADDR_SIZE, F_PERMISSION, F_TRANSLATION, F_WALK_EABT } from '../spec/events.js';
import {
  PERM_R_PRIV,
  PERM_R_USER,
  PERM_W_DBM,
  PERM_W_PRIV,
  PERM_W_USER,
  PERM_X_PRIV,
  PERM_X_USER,
} from './tlb.js';
import { POW2 } from './pow2.js';

/** The parameters of one translation stage, decoded from a CD or an STE. */
export interface StageParams {
  /** 1 or 2. */
  readonly stage: 1 | 2;
  /** Granule size shift (12, 14, 16). */
  readonly granuleShift: number;
  /** First level walked. */
  readonly startLevel: number;
  /** Input address bits (64 − TxSZ). */
  readonly inputBits: number;
  /** Table base. */
  readonly ttb: number;
  /** Effective output address bits (min of IPS/S2PS and OAS). */
  readonly oasBits: number;
  /** 2^oasBits: outputs at or above it are F_ADDR_SIZE. */
  readonly oaLimit: number;
  /** 2^(inputBits − 32) when inputBits ≥ 32: input high words at or above it are out of range. */
  readonly inHiLimit: number;
  /**
   * Stage 1: the input address bits above the range (below bit 56 with TBI, 64 without), in
   * the high and low words; they must all be 0 (TTB0) or all 1 (TTB1).
   */
  readonly topHiMask: number;
  /** See {@link topHiMask}. */
  readonly topLoMask: number;
  /** The input address bits inside the range, high word. */
  readonly keepHiMask: number;
  /** The input address bits inside the range, low word. */
  readonly keepLoMask: number;
  /** AF=0 never faults. */
  readonly affd: boolean;
  /** Hardware access flag update. */
  readonly ha: boolean;
  /** Hardware dirty state update. */
  readonly hd: boolean;
  /** Hierarchical attributes disabled. */
  readonly had: boolean;
  /** Write implies execute-never (stage 1). */
  readonly wxn: boolean;
  /** FEAT_XNX 2-bit stage-2 XN. */
  readonly xnx: boolean;
}

/** A walk's outcome (reused; no allocation per walk). */
export class WalkOut {
  /** 0 on success, or the event ID of the fault. */
  fault = 0;
  /** The fault is a stage-2 fault (nested table fetch). */
  s2 = false;
  /** Event CLASS for a stage-2 fault during the stage-1 walk. */
  cls = 0;
  /** IPA of the stage-2 fault. */
  ipa = 0;
  /** Fetch address of F_WALK_EABT. */
  fetchAddr = 0;
  /** Output address of the leaf base. */
  oa = 0;
  /** log2 of the leaf size. */
  shift = 0;
  /** PERM_* bits. */
  perms = 0;
  /** The leaf is global (stage 1, nG=0). */
  global = false;

  /** Resets to a success state. */
  reset(): this {
    this.fault = 0;
    this.s2 = false;
    this.cls = 0;
    this.ipa = 0;
    this.fetchAddr = 0;
    return this;
  }
}

const TWO32 = 4294967296;
/** 1/4096, exactly: `x * INV_PAGE` is `x / 4096` without a division. */
const INV_PAGE = 1 / 4096;

/** Bits `[shift + width − 1 : shift]` of `hi:lo` (width ≤ 17, shift < 64). */
function bits(hi: number, lo: number, shift: number, width: number): number {
  const m = (1 << width) - 1;
  if (shift >= 32) return (hi >>> (shift - 32)) & m;
  if (shift === 0) return lo & m;
  return ((lo >>> shift) | (hi << (32 - shift))) & m;
}

/** Walks translation tables in memory. */
export class Walker {
  private readonly nested = new WalkOut();

  /** @param memory - the tables' memory */
  constructor(private readonly memory: PhysicalMemoryLike) {}

  /**
   * Walks `p` for the input address `va` (a number below 2^53). See {@link walkHL}.
   */
  walk(p: StageParams, va: number, need: number, out: WalkOut, s2?: StageParams): WalkOut {
    return this.walkHL(p, Math.floor(va / TWO32), va >>> 0, need, out, s2);
  }

  /**
   * Walks `p` for the input address `hi:lo` (two 32-bit halves). `need` is the PERM_* bit the
   * access requires: with HD, a write to a DBM page updates the dirty state. When `s2` is given
   * (nested), every table address is an IPA translated by stage 2 first. Integer arithmetic on
   * the halves; nothing is allocated.
   */
  walkHL(p: StageParams, hi: number, lo: number, need: number, out: WalkOut, s2?: StageParams): WalkOut {
    out.reset();
    const inputBits = p.inputBits;
    if (inputBits >= 32 ? hi >= p.inHiLimit : hi !== 0 || lo >>> inputBits !== 0) {
      out.fault = F_TRANSLATION; // input beyond TxSZ / S2T0SZ
      return out;
    }
    const mem = this.memory;
    const memSize = mem.sizeNumber;
    const g = p.granuleShift;
    const stride = g - 3;
    const tableMask = ~((1 << g) - 1) >>> 0;
    const oaLimit = p.oaLimit;
    let table = p.ttb;
    let apT0 = false;
    let apT1 = false;
    let xnT = false;
    let pxnT = false;
    for (let level = p.startLevel; level <= 3; level++) {
      const shift = g + (3 - level) * stride;
      const idx = bits(hi, lo, shift, level === p.startLevel ? inputBits - shift : stride);
      let slot = table + idx * 8;
      if (s2 !== undefined) {
        const n = this.walk(s2, slot, PERM_R_USER | PERM_R_PRIV, this.nested);
        if (n.fault === 0 && (n.perms & (PERM_R_USER | PERM_R_PRIV)) === 0) n.fault = F_PERMISSION;
        if (n.fault !== 0) {
          out.fault = n.fault;
          out.s2 = true;
          out.cls = EVT_CLASS_TT;
          out.ipa = slot;
          out.fetchAddr = n.fetchAddr;
          return out;
        }
        slot = n.oa + ((slot >>> 0) & (POW2[n.shift]! - 1));
      }
      if (!(slot >= 0 && slot + 8 <= memSize)) {
        out.fault = F_WALK_EABT; // a table outside memory: external abort on the fetch
        out.fetchAddr = slot;
        return out;
      }
      // The descriptor's two words straight from its frame (a frame never written reads as 0);
      // the slot is 8-byte aligned, so both words lie in the same frame.
      // The frame number by an integer shift for a table below 4 GiB (the usual case: it keeps
      // the address chain from one level to the next in integers), else by one multiplication.
      const words = mem.frameWords(slot < TWO32 ? slot >>> 12 : Math.floor(slot * INV_PAGE));
      let dlo = 0;
      let dhi = 0;
      if (words !== undefined) {
        const w = (slot & 0xfff) >>> 2;
        dlo = words[w]!;
        dhi = words[w + 1]!;
      }
      const type = dlo & 3;
      // Invalid, a block at level 3, or a block where the granule allows none (4K: levels 1-2; 16K/64K: 2).
      if ((type & 1) === 0 || (type === 1 && (level === 3 || (level !== 2 && (g !== 12 || level !== 1))))) {
        out.fault = F_TRANSLATION;
        return out;
      }
      if (level < 3 && type === 3) {
        const nextHi = dhi & 0xffff; // NLTA [47:12] (the table address's bits [47:32] here)
        const nextLo = (dlo & tableMask) >>> 0;
        const next = nextHi === 0 ? nextLo : nextHi * TWO32 + nextLo;
        if (next >= oaLimit) {
          out.fault = F_ADDR_SIZE;
          return out;
        }
        if (p.stage === 1 && !p.had) {
          if ((dhi & TABLE_HI_APTABLE0) !== 0) apT0 = true;
          if ((dhi & TABLE_HI_APTABLE1) !== 0) apT1 = true;
          if ((dhi & TABLE_HI_XNTABLE) !== 0) xnT = true;
          if ((dhi & TABLE_HI_PXNTABLE) !== 0) pxnT = true;
        }
        table = next;
        continue;
      }
      // A block (levels 1-2) or a page (level 3).
      const oa = descAddr(dlo, dhi, shift);
      if (oa >= oaLimit) {
        out.fault = F_ADDR_SIZE;
        return out;
      }
      return this.leaf(p, slot, dlo, dhi, oa, shift, need, out, apT0, apT1, xnT, pxnT);
    }
    out.fault = F_TRANSLATION;
    return out;
  }

  /** Access flag, permissions and HTTU updates of a leaf descriptor. */
  private leaf(
    p: StageParams, slot: number, lo: number, hi: number, oa: number, shift: number, need: number, out: WalkOut,
    apT0: boolean, apT1: boolean, xnT: boolean, pxnT: boolean,
  ): WalkOut {
    const mem = this.memory;
    let newLo = lo;
    if ((lo & DESC_AF) === 0) {
      if (p.ha) newLo |= DESC_AF;
      else if (!p.affd) {
        out.fault = F_ACCESS;
        return out;
      }
    }
    const dbm = (hi & DESC_HI_DBM) !== 0 && p.hd;
    let perms: number;
    if (p.stage === 1) {
      const ap1 = (newLo & S1_AP_UNPRIV) !== 0;
      const ap2 = (newLo & S1_AP_RDONLY) !== 0;
      const user = ap1 && !apT0;
      perms = PERM_R_PRIV | (user ? PERM_R_USER : 0);
      const writable = !ap2 && !apT1;
      if (writable) perms |= PERM_W_PRIV | (user ? PERM_W_USER : 0);
      else if (!apT1 && dbm) perms |= PERM_W_DBM;
      const noExec = p.wxn && writable;
      if ((hi & DESC_HI_PXN) === 0 && !pxnT && !(ap1 && !ap2) && !noExec) perms |= PERM_X_PRIV;
      if ((hi & DESC_HI_UXN) === 0 && !xnT && user && !noExec) perms |= PERM_X_USER;
      if (need & (PERM_W_PRIV | PERM_W_USER) && (perms & need) === 0 && (perms & PERM_W_DBM) !== 0) {
        newLo &= ~S1_AP_RDONLY; // HD: the dirty state is AP[2] = 0
        perms = (perms & ~PERM_W_DBM) | PERM_W_PRIV | (user ? PERM_W_USER : 0);
      }
      out.global = (lo & S1_NG) === 0;
    } else {
      const s2ap = (newLo >>> 6) & 3;
      perms = 0;
      if (s2ap & 1) perms |= PERM_R_PRIV | PERM_R_USER;
      if (s2ap & 2) perms |= PERM_W_PRIV | PERM_W_USER;
      else if (dbm) perms |= PERM_W_DBM;
      const xn = (hi >>> 21) & 3;
      if (p.xnx) {
        if (xn === 0 || xn === 3) perms |= PERM_X_PRIV;
        if (xn === 0 || xn === 1) perms |= PERM_X_USER;
      } else if ((xn & 2) === 0) perms |= PERM_X_PRIV | PERM_X_USER;
      if (need & (PERM_W_PRIV | PERM_W_USER) && (perms & need) === 0 && (perms & PERM_W_DBM) !== 0) {
        newLo |= S2_AP_WRITE; // HD: the dirty state is S2AP[1] = 1
        perms = (perms & ~PERM_W_DBM) | PERM_W_PRIV | PERM_W_USER;
      }
      if ((newLo & S2_AP_READ) === 0) perms &= ~(PERM_X_PRIV | PERM_X_USER);
      out.global = false;
    }
    if (newLo !== lo) mem.write32At(slot, newLo >>> 0); // HTTU update of the descriptor in memory
    out.oa = oa;
    out.shift = shift;
    out.perms = perms;
    return out;
  }
}

/** The input address of a walk as a number, from its two halves (exact below 2^53). */
export function joinAddr(hi: number, lo: number): number {
  return hi * TWO32 + lo;
}
