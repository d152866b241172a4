/**
 * Dynamic DMA windows (LoPAR sec_rtas_dma_window.xml; QEMU hw/ppc/spapr_rtas_ddw.c for the
 * choices LoPAR leaves to the platform): query, create, remove and reset a PE's windows.
 */

import {
  RTAS_HARDWARE_ERROR,
  RTAS_PARAMETER_ERROR,
  RTAS_SUCCESS,
  maskOfPageShift,
  type RtasResult,
} from '../spec/rtas.js';
import { DDW_WINDOW_START, DEFAULT_WINDOW_START, MAX_WINDOWS_PER_PE, pciLiobn } from '../spec/dma-window.js';
import { TceTable } from './tce-table.js';
import { cell, type RtasContext } from './rtas-context.js';
import type { PartitionableEndpoint } from './pe.js';

/** The model's bound on a window: 2^52 bytes, so offsets stay exact as numbers. */
export const MAX_WINDOW_SHIFT = 52;

const status = (s: number, outputs: readonly number[] = []): RtasResult => ({ status: s, outputs });

function ddwPe(ctx: RtasContext, args: readonly (number | bigint)[]): PartitionableEndpoint | undefined {
  const pe = ctx.peAt(cell(args, 0), cell(args, 1), cell(args, 2));
  return pe?.config.ddw === true ? pe : undefined;
}

/**
 * `ibm,query-pe-dma-window`: windows available (2 − active, as QEMU counts), the largest block
 * of TCEs, the page-size mask, the migration mask (0). With `nret` 6 (allowed only when
 * `ibm,ddw-extensions` cell 2 says so) the largest block comes as two cells.
 */
export function queryPeDmaWindow(ctx: RtasContext, args: readonly (number | bigint)[], nret: number): RtasResult {
  const pe = ddwPe(ctx, args);
  if (pe === undefined || args.length !== 3 || (nret !== 5 && nret !== 6)) return status(RTAS_PARAMETER_ERROR);
  const available = MAX_WINDOWS_PER_PE - pe.activeWindows().length;
  const block = pe.config.largestBlock;
  if (nret === 6) {
    return status(RTAS_SUCCESS, [available, Math.floor(block / 4294967296), block >>> 0, pe.config.pageSizeMask, 0]);
  }
  return status(RTAS_SUCCESS, [available, Math.min(block, 0xffffffff), pe.config.pageSizeMask, 0]);
}

/**
 * `ibm,create-pe-dma-window`: page_shift must be one the query reported (so 0–11 never is),
 * 2^window_shift bytes ≥ one page, at most `largestBlock` TCEs; the platform picks the start —
 * 0 when no window is active, else 1 << 59 (QEMU `dma64_win_addr`). No free window slot is a
 * hardware error (QEMU), as is a table that cannot be allocated.
 */
export function createPeDmaWindow(ctx: RtasContext, args: readonly (number | bigint)[]): RtasResult {
  const pe = ddwPe(ctx, args);
  if (pe === undefined || args.length !== 5) return status(RTAS_PARAMETER_ERROR);
  const pageShift = cell(args, 3);
  const windowShift = cell(args, 4);
  if (pageShift < 12 || (maskOfPageShift(pageShift) & pe.config.pageSizeMask) === 0) return status(RTAS_PARAMETER_ERROR);
  if (windowShift < pageShift || windowShift > MAX_WINDOW_SHIFT) return status(RTAS_PARAMETER_ERROR);
  if (2 ** (windowShift - pageShift) > pe.config.largestBlock) return status(RTAS_PARAMETER_ERROR);
  const slot = pe.windows.findIndex((w) => w === undefined);
  if (slot < 0) return status(RTAS_HARDWARE_ERROR);
  const start = pe.activeWindows().length === 0 ? DEFAULT_WINDOW_START : DDW_WINDOW_START;
  let table: TceTable;
  try {
    table = TceTable.allocate(ctx.memory, pciLiobn(pe.index, slot), start, 1n << BigInt(windowShift), pageShift, ctx.tceCacheEntries);
  } catch {
    return status(RTAS_HARDWARE_ERROR);
  }
  pe.setWindow(slot, table);
  return status(RTAS_SUCCESS, [table.liobn, table.startHi, table.startLo]);
}

/**
 * `ibm,remove-pe-dma-window` (LIOBN): the caller should have cleared the TCEs first. Removing
 * the last window when it is not the default brings the default window back (same LIOBN,
 * location and size, all TCEs cleared).
 */
export function removePeDmaWindow(ctx: RtasContext, args: readonly (number | bigint)[]): RtasResult {
  if (args.length !== 1) return status(RTAS_PARAMETER_ERROR);
  const found = ctx.windowOf(cell(args, 0));
  if (found?.pe.config.ddw !== true) return status(RTAS_PARAMETER_ERROR);
  const { pe, slot, table } = found;
  const last = pe.activeWindows().length === 1;
  if (last && !ctx.isDefault(pe, table)) {
    pe.setWindow(slot, undefined);
    try {
      ctx.newDefaultWindow(pe);
    } catch {
      pe.setWindow(slot, table);
      return status(RTAS_HARDWARE_ERROR);
    }
  } else {
    pe.setWindow(slot, undefined);
  }
  table.free(ctx.memory);
  return status(RTAS_SUCCESS);
}

/** `ibm,reset-pe-dma-windows`: removes every dynamic window and restores the default one. */
export function resetPeDmaWindows(ctx: RtasContext, args: readonly (number | bigint)[]): RtasResult {
  const pe = ddwPe(ctx, args);
  if (pe?.config.resetExtension !== true || args.length !== 3) return status(RTAS_PARAMETER_ERROR);
  const old = pe.windows.slice();
  const keep = old.find((w) => w !== undefined && ctx.isDefault(pe, w));
  for (let i = 0; i < old.length; i++) pe.setWindow(i, undefined);
  if (keep !== undefined) pe.setWindow(0, keep);
  else {
    try {
      ctx.newDefaultWindow(pe);
    } catch {
      old.forEach((w, i) => {
        pe.setWindow(i, w);
      });
      return status(RTAS_HARDWARE_ERROR);
    }
  }
  for (const w of old) if (w !== undefined && w !== keep) w.free(ctx.memory);
  return status(RTAS_SUCCESS);
}
