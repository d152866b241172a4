/**
 * PRI queue records (IHI0070 §8): 16 bytes. Qword 0: StreamID [31:0], SubstreamID [51:32],
 * Priv [58], X [59], R [60], W [61], Last [62], SSV [63]; qword 1: PRGIndex [8:0],
 * Page address [63:12] (Linux `PRIQ_0_*`/`PRIQ_1_*`).
 */

import { getAddr, getField, setAddr, setField, type Field } from './bits.js';

/** PRI record fields. */
export const PRIQ_FIELDS = {
  StreamID: [0, 0, 32],
  SubstreamID: [0, 32, 20],
  Priv: [0, 58, 1],
  X: [0, 59, 1],
  R: [0, 60, 1],
  W: [0, 61, 1],
  Last: [0, 62, 1],
  SSV: [0, 63, 1],
  PRGIndex: [1, 0, 9],
} as const satisfies Record<string, Field>;

/** A PRI page request record. */
export interface PriRecord {
  /** StreamID (the PCIe requester ID). */
  readonly StreamID: number;
  /** SubstreamID valid. */
  readonly SSV: number;
  /** SubstreamID (PASID). */
  readonly SubstreamID: number;
  /** Privileged. */
  readonly Priv: number;
  /** Execute. */
  readonly X: number;
  /** Read. */
  readonly R: number;
  /** Write. */
  readonly W: number;
  /** Last request of its group. */
  readonly Last: number;
  /** Page request group index. */
  readonly PRGIndex: number;
  /** Page address (bits [63:12]). */
  readonly Addr: number;
}

/** Encodes a PRI record into four 32-bit words. */
export function encodePriWords(r: PriRecord, out: Uint32Array = new Uint32Array(4)): Uint32Array {
  out.fill(0);
  const F = PRIQ_FIELDS;
  setField(out, F.StreamID, r.StreamID);
  setField(out, F.SubstreamID, r.SubstreamID);
  setField(out, F.Priv, r.Priv);
  setField(out, F.X, r.X);
  setField(out, F.R, r.R);
  setField(out, F.W, r.W);
  setField(out, F.Last, r.Last);
  setField(out, F.SSV, r.SSV);
  setField(out, F.PRGIndex, r.PRGIndex);
  setAddr(out, 1, 12, 63, r.Addr);
  return out;
}

/** Decodes a PRI record. */
export function decodePriWords(w: ArrayLike<number>): PriRecord {
  const F = PRIQ_FIELDS;
  return {
    StreamID: getField(w, F.StreamID),
    SubstreamID: getField(w, F.SubstreamID),
    Priv: getField(w, F.Priv),
    X: getField(w, F.X),
    R: getField(w, F.R),
    W: getField(w, F.W),
    Last: getField(w, F.Last),
    SSV: getField(w, F.SSV),
    PRGIndex: getField(w, F.PRGIndex),
    Addr: getAddr(w, 1, 12, 63),
  };
}

/** PRG response codes on the PCIe link (PCIe PRG Response Message). */
export const PRG_RESPONSE_SUCCESS = 0b0000;
/** Invalid request. */
export const PRG_RESPONSE_INVALID_REQUEST = 0b0001;
/** Response failure. */
export const PRG_RESPONSE_FAILURE = 0b1111;
