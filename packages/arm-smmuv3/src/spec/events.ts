/**
 * Event queue records (IHI0070 §7.3): 32 bytes, four qwords. Event IDs and fields as the
 * specification names them.
 */

import { getAddr, getField, setAddr, setField, type Field } from './bits.js';

/** Unsupported upstream transaction. */
export const F_UUT = 0x01;
/** StreamID out of range of the stream table. */
export const C_BAD_STREAMID = 0x02;
/** External abort fetching an STE. */
export const F_STE_FETCH = 0x03;
/** STE V=0 or ILLEGAL. */
export const C_BAD_STE = 0x04;
/** ATS translation request while ATS is disabled. */
export const F_BAD_ATS_TREQ = 0x05;
/** Transaction without a SubstreamID refused by S1DSS, or SSID 0 with S1DSS=SSID0. */
export const F_STREAM_DISABLED = 0x06;
/** Translated transaction while bypass is forbidden. */
export const F_TRANSL_FORBIDDEN = 0x07;
/** SubstreamID refused. */
export const C_BAD_SUBSTREAMID = 0x08;
/** External abort fetching a CD. */
export const F_CD_FETCH = 0x09;
/** CD V=0 or ILLEGAL. */
export const C_BAD_CD = 0x0a;
/** External abort on a translation table walk. */
export const F_WALK_EABT = 0x0b;
/** Translation fault. */
export const F_TRANSLATION = 0x10;
/** Address size fault. */
export const F_ADDR_SIZE = 0x11;
/** Access flag fault. */
export const F_ACCESS = 0x12;
/** Permission fault. */
export const F_PERMISSION = 0x13;
/** TLB conflict. */
export const F_TLB_CONFLICT = 0x20;
/** Configuration cache conflict. */
export const F_CFG_CONFLICT = 0x21;
/** Page request hint. */
export const E_PAGE_REQUEST = 0x24;
/** VMS fetch abort. */
export const F_VMS_FETCH = 0x25;

/** Event names by ID. */
export const EVENT_NAMES: Readonly<Record<number, string>> = {
  [F_UUT]: 'F_UUT',
  [C_BAD_STREAMID]: 'C_BAD_STREAMID',
  [F_STE_FETCH]: 'F_STE_FETCH',
  [C_BAD_STE]: 'C_BAD_STE',
  [F_BAD_ATS_TREQ]: 'F_BAD_ATS_TREQ',
  [F_STREAM_DISABLED]: 'F_STREAM_DISABLED',
  [F_TRANSL_FORBIDDEN]: 'F_TRANSL_FORBIDDEN',
  [C_BAD_SUBSTREAMID]: 'C_BAD_SUBSTREAMID',
  [F_CD_FETCH]: 'F_CD_FETCH',
  [C_BAD_CD]: 'C_BAD_CD',
  [F_WALK_EABT]: 'F_WALK_EABT',
  [F_TRANSLATION]: 'F_TRANSLATION',
  [F_ADDR_SIZE]: 'F_ADDR_SIZE',
  [F_ACCESS]: 'F_ACCESS',
  [F_PERMISSION]: 'F_PERMISSION',
  [F_TLB_CONFLICT]: 'F_TLB_CONFLICT',
  [F_CFG_CONFLICT]: 'F_CFG_CONFLICT',
  [E_PAGE_REQUEST]: 'E_PAGE_REQUEST',
  [F_VMS_FETCH]: 'F_VMS_FETCH',
};

/** True for the four translation-related faults governed by CD.A/R/S and STE.S2R/S2S. */
export function isTranslationFault(id: number): boolean {
  return id >= F_TRANSLATION && id <= F_PERMISSION;
}

/** Event CLASS: CD fetch. */
export const EVT_CLASS_CD = 0;
/** Event CLASS: stage-1 translation table fetch. */
export const EVT_CLASS_TT = 1;
/** Event CLASS: input address. */
export const EVT_CLASS_IN = 2;

/** Event record fields: `[qword, lsb, width]`. */
export const EVT_FIELDS = {
  EventID: [0, 0, 8],
  SSV: [0, 11, 1],
  SubstreamID: [0, 12, 20],
  StreamID: [0, 32, 32],
  STAG: [1, 0, 16],
  Stall: [1, 31, 1],
  PnU: [1, 33, 1],
  InD: [1, 34, 1],
  RnW: [1, 35, 1],
  NSIPA: [1, 38, 1],
  S2: [1, 39, 1],
  CLASS: [1, 40, 2],
  TTRnW: [1, 44, 1],
  InputAddrLo: [2, 0, 32],
  InputAddrHi: [2, 32, 32],
} as const satisfies Record<string, Field>;

/** Words in an event record. */
export const EVT_WORDS = 8;

/** A decoded event record. */
export interface SmmuEvent {
  /** Event ID. */
  readonly EventID: number;
  /** Specification name of the event. */
  readonly name: string;
  /** SubstreamID valid. */
  readonly SSV: number;
  /** SubstreamID. */
  readonly SubstreamID: number;
  /** StreamID. */
  readonly StreamID: number;
  /** Stall tag. */
  readonly STAG: number;
  /** The transaction is stalled. */
  readonly Stall: number;
  /** Privileged. */
  readonly PnU: number;
  /** Instruction. */
  readonly InD: number;
  /** Read (1) or write (0). */
  readonly RnW: number;
  /** IPA is Non-secure. */
  readonly NSIPA: number;
  /** Stage-2 fault. */
  readonly S2: number;
  /** CLASS: 0 CD, 1 TT, 2 IN. */
  readonly CLASS: number;
  /** Read/write of the faulting table access (CLASS TT). */
  readonly TTRnW: number;
  /** Input address as presented. */
  readonly InputAddr: bigint;
  /** IPA [51:12] (stage-2 faults) or FetchAddr [51:3] (fetch aborts): qword 3. */
  readonly Addr: number;
}

/** Fields of an event to encode (numbers; missing ones are 0). */
export interface SmmuEventFields {
  /** Event ID. */
  readonly EventID: number;
  /** SubstreamID valid. */
  readonly SSV?: number;
  /** SubstreamID. */
  readonly SubstreamID?: number;
  /** StreamID. */
  readonly StreamID?: number;
  /** Stall tag. */
  readonly STAG?: number;
  /** Stalled. */
  readonly Stall?: number;
  /** Privileged. */
  readonly PnU?: number;
  /** Instruction. */
  readonly InD?: number;
  /** Read. */
  readonly RnW?: number;
  /** Stage 2. */
  readonly S2?: number;
  /** CLASS. */
  readonly CLASS?: number;
  /** TTRnW. */
  readonly TTRnW?: number;
  /** Input address, high word. */
  readonly InputAddrHi?: number;
  /** Input address, low word. */
  readonly InputAddrLo?: number;
  /** IPA or fetch address (qword 3). */
  readonly Addr?: number;
}

/** Encodes an event record into eight 32-bit words. */
export function encodeEventWords(e: SmmuEventFields, out: Uint32Array = new Uint32Array(EVT_WORDS)): Uint32Array {
  out.fill(0);
  const F = EVT_FIELDS;
  setField(out, F.EventID, e.EventID);
  setField(out, F.SSV, e.SSV ?? 0);
  setField(out, F.SubstreamID, e.SubstreamID ?? 0);
  setField(out, F.StreamID, e.StreamID ?? 0);
  setField(out, F.STAG, e.STAG ?? 0);
  setField(out, F.Stall, e.Stall ?? 0);
  setField(out, F.PnU, e.PnU ?? 0);
  setField(out, F.InD, e.InD ?? 0);
  setField(out, F.RnW, e.RnW ?? 0);
  setField(out, F.S2, e.S2 ?? 0);
  setField(out, F.CLASS, e.CLASS ?? 0);
  setField(out, F.TTRnW, e.TTRnW ?? 0);
  setField(out, F.InputAddrLo, e.InputAddrLo ?? 0);
  setField(out, F.InputAddrHi, e.InputAddrHi ?? 0);
  setAddr(out, 3, 3, 51, e.Addr ?? 0);
  return out;
}

/** Decodes an event record from eight 32-bit words. */
export function decodeEventWords(w: ArrayLike<number>): SmmuEvent {
  const F = EVT_FIELDS;
  const id = getField(w, F.EventID);
  return {
    EventID: id,
    name: EVENT_NAMES[id] ?? `EVENT_0x${id.toString(16)}`,
    SSV: getField(w, F.SSV),
    SubstreamID: getField(w, F.SubstreamID),
    StreamID: getField(w, F.StreamID),
    STAG: getField(w, F.STAG),
    Stall: getField(w, F.Stall),
    PnU: getField(w, F.PnU),
    InD: getField(w, F.InD),
    RnW: getField(w, F.RnW),
    NSIPA: getField(w, F.NSIPA),
    S2: getField(w, F.S2),
    CLASS: getField(w, F.CLASS),
    TTRnW: getField(w, F.TTRnW),
    InputAddr: BigInt(getField(w, F.InputAddrLo)) | (BigInt(getField(w, F.InputAddrHi)) << 32n),
    Addr: getAddr(w, 3, 3, 51),
  };
}
