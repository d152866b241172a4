/**
 * Root entries (VT-d spec §9.1 legacy, §9.2 scalable mode): 256 × 128-bit entries per 4 KiB
 * root table, indexed by bus number.
 */

import * as fields from './fields.js';

// Bound locally: the decoders run on every cache miss, and a module runner that implements
// import bindings as getters (vitest's) would turn each use into a call.
const { addressBeyond, entryAddress } = fields;

/** Bytes per root entry. */
export const ROOT_ENTRY_SIZE = 16;

/** A decoded legacy root entry. */
export interface LegacyRootEntry {
  /** P: present. */
  readonly present: boolean;
  /** CTP: context-table pointer (4 KiB aligned). */
  readonly ctp: number;
}

/** Encodes a legacy root entry: `lo = CTP | P`, `hi = 0`. */
export function encodeLegacyRootEntry(e: { present: boolean; ctp: bigint }): [bigint, bigint] {
  return [e.ctp | (e.present ? 1n : 0n), 0n];
}

/** Decodes a legacy root entry from its four dwords. */
export function decodeLegacyRootEntry(dw: ArrayLike<number>): LegacyRootEntry {
  return { present: (dw[0]! & 1) !== 0, ctp: entryAddress(dw[0]!, dw[1]!) };
}

/**
 * True when a legacy root entry has reserved bits set (bits 11:1, address ≥ HAW, whole upper
 * half). The entry's dwords start at `dw[at]` (a table frame's words can be passed as they are).
 */
export function legacyRootEntryReserved(dw: ArrayLike<number>, haw: number, at = 0): boolean {
  return (dw[at]! & 0xffe) !== 0 || addressBeyond(dw[at + 1]!, haw) || (dw[at + 1]! >>> 20) !== 0 || dw[at + 2] !== 0 || dw[at + 3] !== 0;
}

/** A decoded scalable-mode root entry: two context-table pointers. */
export interface ScalableRootEntry {
  /** LP: lower context table present (devfn 0x00–0x7F). */
  readonly lp: boolean;
  /** LCTP: lower context-table pointer. */
  readonly lctp: number;
  /** UP: upper context table present (devfn 0x80–0xFF). */
  readonly up: boolean;
  /** UCTP: upper context-table pointer. */
  readonly uctp: number;
}

/** Encodes a scalable-mode root entry: `lo = LCTP | LP`, `hi = UCTP | UP`. */
export function encodeScalableRootEntry(e: { lp: boolean; lctp: bigint; up: boolean; uctp: bigint }): [bigint, bigint] {
  return [e.lctp | (e.lp ? 1n : 0n), e.uctp | (e.up ? 1n : 0n)];
}

/** Decodes a scalable-mode root entry from its four dwords. */
export function decodeScalableRootEntry(dw: ArrayLike<number>): ScalableRootEntry {
  return {
    lp: (dw[0]! & 1) !== 0,
    lctp: entryAddress(dw[0]!, dw[1]!),
    up: (dw[2]! & 1) !== 0,
    uctp: entryAddress(dw[2]!, dw[3]!),
  };
}

/**
 * True when the selected half of a scalable-mode root entry has reserved bits set (bits 11:1
 * and address bits ≥ HAW). Only the half the request uses is checked, as hardware does.
 */
export function scalableRootHalfReserved(lo: number, hi: number, haw: number): boolean {
  return (lo & 0xffe) !== 0 || addressBeyond(hi, haw) || (hi >>> 20) !== 0;
}
