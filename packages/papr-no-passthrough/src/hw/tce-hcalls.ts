/**
 * The TCE hypercalls as the hypervisor executes them (LoPAR ch_lpar_option.xml "H_GET_TCE",
 * "H_PUT_TCE", "H_STUFF_TCE", "H_PUT_TCE_INDIRECT"). Every check — LIOBN, count, list page,
 * IOBA alignment and range, each TCE — happens before the first entry is stored, so an hcall
 * that returns an error has stored nothing.
 */

import type { PhysicalMemoryLike } from '@ioasid/uapi';
import {
  H_FUNCTION,
  H_GET_TCE,
  H_HARDWARE,
  H_P4,
  H_PARAMETER,
  H_PARTIAL,
  H_PUT_TCE,
  H_PUT_TCE_INDIRECT,
  H_STUFF_TCE,
  H_SUCCESS,
  TCE_LIST_ALIGN,
  TCE_LIST_MAX,
  type HcallResult,
} from '../spec/hcall.js';
import { TCE_ENTRY_SIZE, TCE_PERM_MASK } from '../spec/tce.js';
import type { TceTable } from './tce-table.js';

const TWO32 = 4294967296;
/** The TCE list of an H_PUT_TCE_INDIRECT as read from memory: big-endian bytes, and host-order words over them. */
const list8 = new Uint8Array(TCE_LIST_MAX * TCE_ENTRY_SIZE);
const list32 = new Uint32Array(list8.buffer);

/** What the TCE hcalls need from the hypervisor. */
export interface TceHcallContext {
  /** Partition memory (TCE RPNs must lie inside it). */
  readonly memory: PhysicalMemoryLike;
  /** The window a LIOBN names. */
  table(liobn: bigint): TceTable | undefined;
  /**
   * QEMU quirks: the low IOBA bits are masked instead of rejected, and H_STUFF_TCE has no
   * 512-entry cap (only the table bounds it). Default (LoPAR/KVM): misaligned IOBA is
   * H_PARAMETER, count > 512 is H_P4.
   */
  readonly qemuQuirks: boolean;
}

/** LoPAR: a LIOBN with the top bit set selects the multi-table option. */
const MULTI_TABLE_LIOBN = 1n << 63n;
const LIST_MAX_N = BigInt(TCE_LIST_MAX);
const LIST_ALIGN_MASK_N = BigInt(TCE_LIST_ALIGN - 1);
const NO_VALUES: readonly bigint[] = Object.freeze([]);
const SUCCESS: HcallResult = Object.freeze({ ret: H_SUCCESS, values: NO_VALUES });

const ok = (values?: readonly bigint[]): HcallResult => (values === undefined ? SUCCESS : { ret: H_SUCCESS, values });
const err = (ret: number): HcallResult => ({ ret, values: [] });

/**
 * Checks a TCE value for a window: no reserved bits and an address aligned to the window's
 * page (KVM `iommu_tce_check_gpa`), and, unless it is a "page fault" (00) entry, a real page
 * that lies inside the partition's memory (LoPAR: "non-fault TCE whose logical address is
 * outside the partition" → H_PARAMETER).
 */
function tceValid(ctx: TceHcallContext, t: TceTable, hi: number, lo: number): boolean {
  if ((lo & t.reservedLo) !== 0 || (hi & t.reservedHi) !== 0) return false;
  if ((lo & TCE_PERM_MASK) === 0) return true;
  const addr = hi * TWO32 + ((lo & ~0xfff) >>> 0);
  return ctx.memory.contains(addr, t.pageSize);
}

/** Resolves the IOBA to a TCE index: −1 if misaligned (without the QEMU quirk) or outside the window. */
function ibaIndex(ctx: TceHcallContext, t: TceTable, ioba: bigint): number {
  const mask = t.pageMaskN;
  if ((ioba & mask) === 0n) return t.indexOf(ioba);
  return ctx.qemuQuirks ? t.indexOf(ioba & ~mask) : -1;
}

function hGetTce(ctx: TceHcallContext, liobn: bigint, ioba: bigint): HcallResult {
  const t = ctx.table(liobn);
  if (t === undefined) return err(H_PARAMETER);
  const index = ibaIndex(ctx, t, ioba);
  if (index < 0) return err(H_PARAMETER);
  const w = new Uint32Array(2);
  t.read(ctx.memory, index, w);
  const tce = (BigInt(w[0]!) << 32n) | BigInt(w[1]!);
  if ((w[1]! & TCE_PERM_MASK) !== 0) {
    const addr = w[0]! * TWO32 + ((w[1]! & ~0xfff) >>> 0);
    // LoPAR: a valid TCE whose RPN is not in the caller's logical space → H_PARTIAL, R4 = TCE | 0xFFFFFFFFFFFFF000.
    if (!ctx.memory.contains(addr, 4096)) return { ret: H_PARTIAL, values: [tce | 0xfffffffffffff000n] };
  }
  return ok([tce]);
}

function hPutTce(ctx: TceHcallContext, liobn: bigint, ioba: bigint, tce: bigint): HcallResult {
  const t = ctx.table(liobn);
  if (t === undefined) return err(H_PARAMETER);
  const index = ibaIndex(ctx, t, ioba);
  if (index < 0) return err(H_PARAMETER);
  const hi = Number((tce >> 32n) & 0xffffffffn);
  const lo = Number(tce & 0xffffffffn);
  if (!tceValid(ctx, t, hi, lo)) return err(H_PARAMETER);
  t.write(ctx.memory, index, hi, lo);
  return ok();
}

function hStuffTce(ctx: TceHcallContext, liobn: bigint, ioba: bigint, tce: bigint, count: bigint): HcallResult {
  const t = ctx.table(liobn);
  if (t === undefined) return err(H_PARAMETER);
  if (!ctx.qemuQuirks && count > LIST_MAX_N) return err(H_P4);
  const index = ibaIndex(ctx, t, ioba);
  if (index < 0 || count > BigInt(t.entries - index)) return err(H_PARAMETER);
  const hi = Number((tce >> 32n) & 0xffffffffn);
  const lo = Number(tce & 0xffffffffn);
  if (!tceValid(ctx, t, hi, lo)) return err(H_PARAMETER);
  t.fill(ctx.memory, index, Number(count), hi, lo);
  return ok();
}

function hPutTceIndirect(ctx: TceHcallContext, liobn: bigint, ioba: bigint, list: bigint, count: bigint): HcallResult {
  // LoPAR: a negative LIOBN selects the multi-table option, which this platform does not enable.
  if (liobn >= MULTI_TABLE_LIOBN) return err(H_FUNCTION);
  const t = ctx.table(liobn);
  if (t === undefined) return err(H_PARAMETER);
  if (count > LIST_MAX_N) return err(H_PARAMETER);
  const n = Number(count);
  if ((list & LIST_ALIGN_MASK_N) !== 0n || list >= ctx.memory.size) return err(H_PARAMETER);
  const listAddr = Number(list);
  if (!ctx.memory.contains(listAddr, n * TCE_ENTRY_SIZE)) return err(H_PARAMETER);
  const index = ibaIndex(ctx, t, ioba);
  if (index < 0 || n > t.entries - index) return err(H_PARAMETER);
  const memory = ctx.memory;
  memory.readInto(listAddr, list8, 0, n * TCE_ENTRY_SIZE);
  // tceValid for each TCE, inlined (this loop runs once per page mapped).
  const { reservedHi, reservedLo, pageSize } = t;
  const memSize = memory.sizeNumber;
  for (let i = 0; i < n; i++) {
    const w = list32[2 * i]!;
    const v = list32[2 * i + 1]!;
    const hi = ((w & 0xff) << 24) | ((w & 0xff00) << 8) | ((w >>> 8) & 0xff00) | (w >>> 24);
    const lo = ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
    if ((lo & reservedLo) !== 0 || (hi & reservedHi) !== 0) return err(H_PARAMETER);
    if ((lo & TCE_PERM_MASK) !== 0 && (hi >>> 0) * TWO32 + ((lo & ~0xfff) >>> 0) + pageSize > memSize) return err(H_PARAMETER);
  }
  // The list holds the TCEs in table order already (big-endian): one copy stores them all.
  t.writeBytes(memory, index, list8, n);
  return ok();
}

/** Executes one TCE hcall; an unknown opcode is H_FUNCTION, a memory failure H_HARDWARE. */
export function tceHcall(ctx: TceHcallContext, opcode: number, args: readonly bigint[]): HcallResult {
  try {
    // Registers are unsigned 64-bit; a missing one reads as 0.
    const r0 = BigInt.asUintN(64, args[0] ?? 0n);
    const r1 = BigInt.asUintN(64, args[1] ?? 0n);
    switch (opcode) {
      case H_GET_TCE:
        return hGetTce(ctx, r0, r1);
      case H_PUT_TCE:
        return hPutTce(ctx, r0, r1, BigInt.asUintN(64, args[2] ?? 0n));
      case H_STUFF_TCE:
        return hStuffTce(ctx, r0, r1, BigInt.asUintN(64, args[2] ?? 0n), BigInt.asUintN(64, args[3] ?? 0n));
      case H_PUT_TCE_INDIRECT:
        return hPutTceIndirect(ctx, r0, r1, BigInt.asUintN(64, args[2] ?? 0n), BigInt.asUintN(64, args[3] ?? 0n));
      default:
        return err(H_FUNCTION);
    }
  } catch {
    return err(H_HARDWARE);
  }
}
