/**
 * The stage-1 walker of the extension's guest-managed tables: Arm VMSAv8-64, 4 KiB granule,
 * start level from T0SZ, hierarchical APTable/UXNTable/PXNTable, access flag. Table addresses
 * and the output are in the stage-1 output space: physical for a root domain, or the parent
 * domain's IOVA space for a nested one (then every table fetch goes through `stage2`).
 * No BigInt: descriptors are read as two 32-bit halves; at most 4 levels, so no loop can hang.
 */

import type { PhysicalMemoryLike } from '@ioasid/uapi';
import * as lpae from '../spec/arm-lpae.js';

// Descriptor bits as module-level bindings (a test runner's module transform makes each read of
// an imported name a property read of the module namespace; the walk reads them per level).
const {
  LPAE_AF, LPAE_AP_RDONLY, LPAE_AP_UNPRIV, LPAE_HI_APTABLE_NOEL0, LPAE_HI_APTABLE_RDONLY, LPAE_HI_OA_51_48,
  LPAE_HI_PXN, LPAE_HI_PXNTABLE, LPAE_HI_UXN, LPAE_HI_UXNTABLE, LPAE_TABLE_OR_PAGE, LPAE_VALID,
} = lpae;

const TWO32 = 0x100000000;
/** 1 / 4096: a page-aligned address times this is its frame number, exactly (no division). */
const INV_PAGE = 1 / 4096;

/** Walk outcomes. */
export const W_OK = 0;
/** Invalid descriptor, reserved encoding, or input beyond T0SZ / EPD0 set. */
export const W_TRANSLATION = 1;
/** An output or table address beyond 48 bits. */
export const W_ADDR_SIZE = 2;
/** Access flag clear. */
export const W_ACCESS = 3;
/** A table fetch outside memory. */
export const W_EXT_ABORT = 4;
/** A table fetch the parent's mappings do not allow. */
export const W_STAGE2 = 5;

/** Permission bits of a cached leaf. */
export const P_WRITE = 1;
/** Unprivileged (EL0) access allowed. */
export const P_UNPRIV = 2;
/** Unprivileged execute never. */
export const P_UXN = 4;
/** Privileged execute never. */
export const P_PXN = 8;

/** A stage-1 configuration (from an LPAE descriptor or a CD). */
export interface Stage1Config {
  /** Root table address (stage-1 output space). */
  readonly root: number;
  /** T0SZ (16..39). */
  readonly t0sz: number;
  /** First level (0..2). */
  readonly startLevel: number;
  /** TTB0 walks disabled. */
  readonly epd0: boolean;
  /** AF = 0 does not fault. */
  readonly affd: boolean;
}

/** Translates a stage-1 table address through the parent; returns a physical address or -1. */
export type Stage2Read = (ipa: number) => number;

/** The walker's reusable result. */
export interface WalkOut {
  /** Output page number. */
  opfn: number;
  /** P_* bits. */
  perms: number;
  /** Level of the fault or the leaf. */
  level: number;
  /** Address of the table entry (or IPA) at fault. */
  where: number;
}

/**
 * Walks `vpn` (a 4 KiB page number below 2^36, already checked against T0SZ) and fills `out`.
 * @returns W_OK or a W_* fault
 */
export function walkStage1(memory: PhysicalMemoryLike, cfg: Stage1Config, vpn: number, stage2: Stage2Read | undefined, out: WalkOut): number {
  if (cfg.epd0) {
    out.level = cfg.startLevel;
    out.where = 0;
    return W_TRANSLATION;
  }
  let table = cfg.root;
  let noWrite = false;
  let noEl0 = false;
  let uxnTable = false;
  let pxnTable = false;
  // Index bits with 32-bit integer ops (no float division): the low word holds levels 3..1 and
  // the bottom 5 bits of level 0; the high word (vpn < 2^36) the rest of level 0.
  const vLo = vpn >>> 0;
  const vHi = (vpn - vLo) / 0x100000000;
  for (let level = cfg.startLevel; level <= 3; level++) {
    const shift = 9 * (3 - level);
    const idx = level === 0 ? ((vHi << 5) | (vLo >>> 27)) & 511 : (vLo >>> shift) & 511;
    const ipa = table + idx * 8;
    out.level = level;
    out.where = ipa;
    let pa = ipa;
    if (stage2 !== undefined) {
      pa = stage2(ipa);
      if (pa < 0) return W_STAGE2;
    }
    if (!memory.contains(pa, 8)) return W_EXT_ABORT;
    // Both words of the descriptor from the table's frame when it is 8-byte aligned (so within
    // one frame; only a root from an unaligned TTBR0 is not); a frame never written reads as zero.
    const off = pa & 0xfff; // the low bits survive ToInt32 for any address below 2^53
    let lo: number;
    let hi: number;
    if ((off & 7) === 0) {
      const words = memory.frameWords((pa - off) * INV_PAGE);
      lo = words === undefined ? 0 : words[off >>> 2]!;
      hi = words === undefined ? 0 : words[(off >>> 2) + 1]!;
    } else {
      lo = memory.read32At(pa);
      hi = memory.read32At(pa + 4);
    }
    if ((lo & LPAE_VALID) === 0) return W_TRANSLATION;
    if ((hi & LPAE_HI_OA_51_48) !== 0) return W_ADDR_SIZE;
    const isTableOrPage = (lo & LPAE_TABLE_OR_PAGE) !== 0;
    if (level < 3 && isTableOrPage) {
      table = (hi & 0xffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
      if ((hi & LPAE_HI_APTABLE_RDONLY) !== 0) noWrite = true;
      if ((hi & LPAE_HI_APTABLE_NOEL0) !== 0) noEl0 = true;
      if ((hi & LPAE_HI_UXNTABLE) !== 0) uxnTable = true;
      if ((hi & LPAE_HI_PXNTABLE) !== 0) pxnTable = true;
      continue;
    }
    // A block at level 0 (4 KiB granule) or a 0b01 entry at level 3 is reserved: translation fault.
    if (level === 0 || (level === 3 && !isTableOrPage)) return W_TRANSLATION;
    if ((lo & LPAE_AF) === 0 && !cfg.affd) return W_ACCESS;
    const blockMask = level === 1 ? 0xc0000000 : level === 2 ? 0xffe00000 : 0xfffff000;
    const base = ((hi & 0xffff) * TWO32 + ((lo & blockMask) >>> 0)) / 4096;
    out.opfn = base + (level === 3 ? 0 : vLo & ((1 << shift) - 1));
    let perms = 0;
    if ((lo & LPAE_AP_RDONLY) === 0 && !noWrite) perms |= P_WRITE;
    if ((lo & LPAE_AP_UNPRIV) !== 0 && !noEl0) perms |= P_UNPRIV;
    if ((hi & LPAE_HI_UXN) !== 0 || uxnTable) perms |= P_UXN;
    if ((hi & LPAE_HI_PXN) !== 0 || pxnTable) perms |= P_PXN;
    out.perms = perms;
    return W_OK;
  }
  return W_TRANSLATION;
}
