/**
 * Command queue entries (IHI0070 §4): 16 bytes, opcode in qword 0 [7:0]. Field positions follow
 * the specification (and agree with Linux `arm-smmu-v3.h` and QEMU `smmuv3-internal.h`).
 */

import { getAddr, getField, setAddr, setField, toQwords, toWords, type Field } from './bits.js';

/** Prefetch configuration. */
export const CMD_PREFETCH_CONFIG = 0x01;
/** Prefetch address. */
export const CMD_PREFETCH_ADDR = 0x02;
/** Invalidate one STE. */
export const CMD_CFGI_STE = 0x03;
/** Invalidate a range of STEs (Range 31 = CMD_CFGI_ALL). */
export const CMD_CFGI_STE_RANGE = 0x04;
/** Invalidate one CD. */
export const CMD_CFGI_CD = 0x05;
/** Invalidate all CDs of a StreamID. */
export const CMD_CFGI_CD_ALL = 0x06;
/** Invalidate VMS PARTID map. */
export const CMD_CFGI_VMS_PIDM = 0x07;
/** Stage-1 TLB invalidation of a VMID. */
export const CMD_TLBI_NH_ALL = 0x10;
/** Stage-1 TLB invalidation by ASID. */
export const CMD_TLBI_NH_ASID = 0x11;
/** Stage-1 TLB invalidation by VA and ASID. */
export const CMD_TLBI_NH_VA = 0x12;
/** Stage-1 TLB invalidation by VA, all ASIDs. */
export const CMD_TLBI_NH_VAA = 0x13;
/** EL3 TLB invalidation. */
export const CMD_TLBI_EL3_ALL = 0x18;
/** EL3 TLB invalidation by VA. */
export const CMD_TLBI_EL3_VA = 0x1a;
/** EL2 TLB invalidation. */
export const CMD_TLBI_EL2_ALL = 0x20;
/** EL2 TLB invalidation by ASID. */
export const CMD_TLBI_EL2_ASID = 0x21;
/** EL2 TLB invalidation by VA. */
export const CMD_TLBI_EL2_VA = 0x22;
/** EL2 TLB invalidation by VA, all ASIDs. */
export const CMD_TLBI_EL2_VAA = 0x23;
/** Stage-1 and stage-2 invalidation of a VMID. */
export const CMD_TLBI_S12_VMALL = 0x28;
/** Stage-2 invalidation by IPA. */
export const CMD_TLBI_S2_IPA = 0x2a;
/** All Non-secure non-Hyp TLB entries. */
export const CMD_TLBI_NSNH_ALL = 0x30;
/** ATS invalidation. */
export const CMD_ATC_INV = 0x40;
/** PRI page group response. */
export const CMD_PRI_RESP = 0x41;
/** Resume a stalled transaction. */
export const CMD_RESUME = 0x44;
/** Terminate all stalls of a StreamID. */
export const CMD_STALL_TERM = 0x45;
/** Synchronization. */
export const CMD_SYNC = 0x46;

/** Command names by opcode. */
export const CMD_NAMES: Readonly<Record<number, string>> = {
  [CMD_PREFETCH_CONFIG]: 'CMD_PREFETCH_CONFIG',
  [CMD_PREFETCH_ADDR]: 'CMD_PREFETCH_ADDR',
  [CMD_CFGI_STE]: 'CMD_CFGI_STE',
  [CMD_CFGI_STE_RANGE]: 'CMD_CFGI_STE_RANGE',
  [CMD_CFGI_CD]: 'CMD_CFGI_CD',
  [CMD_CFGI_CD_ALL]: 'CMD_CFGI_CD_ALL',
  [CMD_CFGI_VMS_PIDM]: 'CMD_CFGI_VMS_PIDM',
  [CMD_TLBI_NH_ALL]: 'CMD_TLBI_NH_ALL',
  [CMD_TLBI_NH_ASID]: 'CMD_TLBI_NH_ASID',
  [CMD_TLBI_NH_VA]: 'CMD_TLBI_NH_VA',
  [CMD_TLBI_NH_VAA]: 'CMD_TLBI_NH_VAA',
  [CMD_TLBI_EL3_ALL]: 'CMD_TLBI_EL3_ALL',
  [CMD_TLBI_EL3_VA]: 'CMD_TLBI_EL3_VA',
  [CMD_TLBI_EL2_ALL]: 'CMD_TLBI_EL2_ALL',
  [CMD_TLBI_EL2_ASID]: 'CMD_TLBI_EL2_ASID',
  [CMD_TLBI_EL2_VA]: 'CMD_TLBI_EL2_VA',
  [CMD_TLBI_EL2_VAA]: 'CMD_TLBI_EL2_VAA',
  [CMD_TLBI_S12_VMALL]: 'CMD_TLBI_S12_VMALL',
  [CMD_TLBI_S2_IPA]: 'CMD_TLBI_S2_IPA',
  [CMD_TLBI_NSNH_ALL]: 'CMD_TLBI_NSNH_ALL',
  [CMD_ATC_INV]: 'CMD_ATC_INV',
  [CMD_PRI_RESP]: 'CMD_PRI_RESP',
  [CMD_RESUME]: 'CMD_RESUME',
  [CMD_STALL_TERM]: 'CMD_STALL_TERM',
  [CMD_SYNC]: 'CMD_SYNC',
};

/** Command fields: `[qword, lsb, width]`. Which apply depends on the opcode. */
export const CMD_FIELDS = {
  OP: [0, 0, 8],
  SSec: [0, 10, 1],
  SSV: [0, 11, 1],
  SubstreamID: [0, 12, 20],
  StreamID: [0, 32, 32],
  /** TLBI range fields. */
  NUM: [0, 12, 5],
  SCALE: [0, 20, 6],
  VMID: [0, 32, 16],
  ASID: [0, 48, 16],
  Leaf: [1, 0, 1],
  Range: [1, 0, 5],
  TTL: [1, 8, 2],
  TG: [1, 10, 2],
  /** ATC_INV. */
  Global: [0, 9, 1],
  Size: [1, 0, 6],
  /** PRI_RESP. */
  PRGI: [1, 0, 9],
  Resp: [0, 12, 2],
  /** RESUME (Linux CMDQ_RESUME_0_RESP: 0 TERM, 1 RETRY, 2 ABORT; Ac [12], Ab [13]). */
  Ac: [0, 12, 1],
  Ab: [0, 13, 1],
  STAG: [1, 0, 16],
  /** SYNC. */
  CS: [0, 12, 2],
  MSH: [0, 22, 2],
  MSIAttr: [0, 24, 4],
  MSIData: [0, 32, 32],
} as const satisfies Record<string, Field>;

/** PRI_RESP response codes (CMD field Resp [13:12] of qword 1). */
export const PRI_RESP_DENY = 0;
/** Invalid request. */
export const PRI_RESP_FAIL = 1;
/** Success. */
export const PRI_RESP_SUCC = 2;
/** PRI_RESP.Resp sits at qword 1 [13:12]. */
export const CMD_PRI_RESP_RESP: Field = [1, 12, 2];

/** SYNC.CS: no signal. */
export const CMDQ_SYNC_CS_NONE = 0;
/** SYNC.CS: MSI / IRQ. */
export const CMDQ_SYNC_CS_IRQ = 1;
/** SYNC.CS: SEV. */
export const CMDQ_SYNC_CS_SEV = 2;

/** ATC_INV.Size meaning "everything". */
export const ATC_INV_SIZE_ALL = 52;

/**
 * A command by its fields (numbers; addresses page aligned and below 2^53). Only the fields of
 * the opcode are encoded.
 */
export interface SmmuCommand {
  /** Opcode. */
  readonly op: number;
  /** StreamID. */
  readonly sid?: number;
  /** SubstreamID valid. */
  readonly ssv?: boolean;
  /** SubstreamID. */
  readonly ssid?: number;
  /** Leaf (CFGI_STE/CD, TLBI). */
  readonly leaf?: boolean;
  /** CFGI_STE_RANGE.Range. */
  readonly range?: number;
  /** VMID. */
  readonly vmid?: number;
  /** ASID. */
  readonly asid?: number;
  /** Range TLBI NUM, SCALE, TTL and TG. */
  readonly num?: number;
  /** Range TLBI SCALE. */
  readonly scale?: number;
  /** TLBI TTL. */
  readonly ttl?: number;
  /** TLBI TG. */
  readonly tg?: number;
  /** Address (TLBI VA/IPA, ATC_INV) or SYNC MSI address. */
  readonly addr?: number;
  /** ATC_INV.Size. */
  readonly size?: number;
  /** ATC_INV.Global. */
  readonly global?: boolean;
  /** PRI_RESP.PRGI. */
  readonly prgi?: number;
  /** PRI_RESP.Resp or RESUME response (0 term, 1 retry, 2 abort). */
  readonly resp?: number;
  /** RESUME.STAG. */
  readonly stag?: number;
  /** SYNC.CS. */
  readonly cs?: number;
  /** SYNC.MSIData. */
  readonly msiData?: number;
}

const b = (x: boolean | undefined) => (x === true ? 1 : 0);

/** Encodes a command into four 32-bit words. */
export function encodeCommandWords(c: SmmuCommand, out: Uint32Array = new Uint32Array(4)): Uint32Array {
  out.fill(0);
  const F = CMD_FIELDS;
  setField(out, F.OP, c.op);
  switch (c.op) {
    case CMD_CFGI_STE:
      setField(out, F.StreamID, c.sid ?? 0);
      setField(out, F.Leaf, b(c.leaf));
      break;
    case CMD_CFGI_STE_RANGE:
      setField(out, F.StreamID, c.sid ?? 0);
      setField(out, F.Range, c.range ?? 0);
      break;
    case CMD_CFGI_CD:
      setField(out, F.StreamID, c.sid ?? 0);
      setField(out, F.SubstreamID, c.ssid ?? 0);
      setField(out, F.Leaf, b(c.leaf));
      break;
    case CMD_PREFETCH_CONFIG:
    case CMD_CFGI_CD_ALL:
    case CMD_STALL_TERM:
      setField(out, F.StreamID, c.sid ?? 0);
      setField(out, F.SSV, b(c.ssv));
      setField(out, F.SubstreamID, c.ssid ?? 0);
      break;
    case CMD_TLBI_NH_ALL:
    case CMD_TLBI_NH_ASID:
    case CMD_TLBI_NH_VA:
    case CMD_TLBI_NH_VAA:
    case CMD_TLBI_S12_VMALL:
    case CMD_TLBI_S2_IPA:
    case CMD_TLBI_EL2_ASID:
    case CMD_TLBI_EL2_VA:
    case CMD_TLBI_EL2_VAA:
      setField(out, F.VMID, c.vmid ?? 0);
      setField(out, F.ASID, c.asid ?? 0);
      setField(out, F.NUM, c.num ?? 0);
      setField(out, F.SCALE, c.scale ?? 0);
      setField(out, F.Leaf, b(c.leaf));
      setField(out, F.TTL, c.ttl ?? 0);
      setField(out, F.TG, c.tg ?? 0);
      if (c.addr !== undefined) setAddr(out, 1, 12, 63, c.addr);
      break;
    case CMD_ATC_INV:
      setField(out, F.StreamID, c.sid ?? 0);
      setField(out, F.SSV, b(c.ssv));
      setField(out, F.SubstreamID, c.ssid ?? 0);
      setField(out, F.Global, b(c.global));
      setField(out, F.Size, c.size ?? 0);
      if (c.addr !== undefined) setAddr(out, 1, 12, 63, c.addr);
      break;
    case CMD_PRI_RESP:
      setField(out, F.StreamID, c.sid ?? 0);
      setField(out, F.SSV, b(c.ssv));
      setField(out, F.SubstreamID, c.ssid ?? 0);
      setField(out, F.PRGI, c.prgi ?? 0);
      setField(out, CMD_PRI_RESP_RESP, c.resp ?? 0);
      break;
    case CMD_RESUME:
      setField(out, F.StreamID, c.sid ?? 0);
      setField(out, F.Resp, c.resp ?? 0);
      setField(out, F.STAG, c.stag ?? 0);
      break;
    case CMD_SYNC:
      setField(out, F.CS, c.cs ?? 0);
      setField(out, F.MSIData, c.msiData ?? 0);
      if (c.addr !== undefined) setAddr(out, 1, 2, 51, c.addr);
      break;
    default:
      break;
  }
  return out;
}

/** Encodes a command as two 64-bit qwords (the form iommufd's vIOMMU invalidation carries). */
export function encodeCommand(c: SmmuCommand): [bigint, bigint] {
  const q = toQwords(encodeCommandWords(c));
  return [q[0]!, q[1]!];
}

/** The opcode of a command held as words. */
export function commandOp(w: ArrayLike<number>): number {
  return getField(w, CMD_FIELDS.OP);
}

/** Reads a command's TLBI/ATC address ([63:12] of qword 1). */
export function commandAddr(w: ArrayLike<number>): number {
  return getAddr(w, 1, 12, 63);
}

/** Converts a qword pair to words. */
export function commandWords(cmd: readonly [bigint, bigint], out?: Uint32Array): Uint32Array {
  return toWords([cmd[0], cmd[1]], out);
}

/** CMD_CFGI_STE_RANGE with Range = 31 is CMD_CFGI_ALL. */
export const CMD_CFGI_ALL_RANGE = 31;

/**
 * The TLBI-by-address commands covering `[iova, iova + length)` of 4 KiB pages, as Linux's
 * `__arm_smmu_tlb_inv_range` builds them: with IDR3.RIL, range commands (TG = 4K, TTL = 0,
 * pages = (NUM + 1) << SCALE, IHI0070 §4.4.1), otherwise one command per page. `base` gives the
 * opcode and the ASID/VMID.
 */
export function tlbiRange(
  base: { readonly op: number; readonly vmid?: number; readonly asid?: number },
  iova: number,
  length: number,
  ril: boolean,
  leaf: boolean,
): SmmuCommand[] {
  // Objects of one literal shape, no spread: this runs on every unmap.
  const op = base.op;
  const vmid = base.vmid ?? 0;
  const asid = base.asid ?? 0;
  const out: SmmuCommand[] = [];
  let pages = Math.ceil(length / 4096);
  let addr = iova;
  if (!ril) {
    for (let i = 0; i < pages; i++) out.push({ op, vmid, asid, addr: iova + i * 4096, leaf, tg: 0, ttl: 0, num: 0, scale: 0 });
    return out;
  }
  // TTL=0 (any level): NUM=0/SCALE=0/TTL=0 is reserved, so a single page is widened to two.
  if (pages % 32 === 1) pages++;
  while (pages > 0) {
    let scale = 0;
    let rest = pages;
    while (rest % 2 === 0) {
      rest /= 2;
      scale++;
    }
    const num = rest % 32; // NUM + 1 ≤ 31 pages of 2^SCALE
    out.push({ op, vmid, asid, addr, leaf, tg: 1, ttl: 0, num: num - 1, scale });
    const n = num * 2 ** scale;
    addr += n * 4096;
    pages -= n;
  }
  return out;
}
