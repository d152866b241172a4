/**
 * Sets up a PE's windows as pseries Linux's `enable_ddw` does: the default window from
 * `ibm,dma-window`; then, when the PE has `ibm,ddw-applicable`, `ibm,query-pe-dma-window`,
 * the largest I/O page size the query offers, a window big enough for all of memory
 * (`order_base_2(max RAM)`) or, when the largest block of TCEs cannot cover that, the largest
 * window the block allows, and `ibm,create-pe-dma-window`. Unlike Linux's direct window it is
 * not pre-filled: the IOAS maps into it like into the default window.
 */

import type { PhysicalMemoryLike } from '@ioasid/uapi';
import type { PaprFirmware, PeNode } from '../spec/firmware.js';
import {
  DDW_EXT_QUERY_OUT_SIZE,
  RTAS_CREATE_PE_DMA_WINDOW,
  RTAS_QUERY_PE_DMA_WINDOW,
  RTAS_SUCCESS,
  buidCells,
  pageShiftsOfMask,
} from '../spec/rtas.js';
import { DriverPe, type DdwQueryResult } from './driver-pe.js';
import type { DriverWindow } from './tce-ops.js';

/** Driver choices for the dynamic window. */
export interface DdwPolicy {
  /** Create a 64-bit window when the PE allows one (default true). */
  readonly enable?: boolean;
  /** I/O page shift of the window (default: the largest the query offers, as Linux). */
  readonly pageShift?: number;
}

/** Queries the PE's DDW capabilities (6-output form when `ibm,ddw-extensions` allows it). */
function query(fw: PaprFirmware, node: PeNode, buid: bigint): DdwQueryResult | string {
  const [hi, lo] = buidCells(buid);
  const six = (node.ddwExtensions[DDW_EXT_QUERY_OUT_SIZE] ?? 0) === 1;
  const r = fw.rtas(RTAS_QUERY_PE_DMA_WINDOW, [node.configAddr, hi, lo], six ? 6 : 5);
  if (r.status !== RTAS_SUCCESS) return `ibm,query-pe-dma-window answered ${r.status}`;
  const o = r.outputs;
  return six
    ? { windowsAvailable: o[0]!, largestBlock: o[1]! * 4294967296 + o[2]!, pageSizeMask: o[3]!, migrationMask: o[4]! }
    : { windowsAvailable: o[0]!, largestBlock: o[1]!, pageSizeMask: o[2]!, migrationMask: o[3]! };
}

/** Builds the driver's state of one PE, creating its 64-bit window through RTAS when it can. */
export function setupPe(fw: PaprFirmware, memory: PhysicalMemoryLike, buid: bigint, node: PeNode, policy: DdwPolicy): DriverPe {
  const windows: DriverWindow[] = [];
  const dw = node.dmaWindow;
  if (dw !== undefined) {
    windows.push({ kind: 'default', liobn: dw.liobn, start: dw.busAddress, last: dw.busAddress + dw.size - 1n, pageShift: dw.pageShift });
  }
  if (!node.ddwApplicable) return new DriverPe(node, windows, undefined, undefined);
  const q = query(fw, node, buid);
  if (typeof q === 'string') return new DriverPe(node, windows, undefined, q);
  if (policy.enable === false) return new DriverPe(node, windows, q, 'the 64-bit window was not requested');
  if (q.windowsAvailable < 1) return new DriverPe(node, windows, q, 'no DMA window is available');
  const shifts = pageShiftsOfMask(q.pageSizeMask);
  const pageShift = policy.pageShift ?? shifts[shifts.length - 1];
  if (pageShift === undefined || !shifts.includes(pageShift)) {
    return new DriverPe(node, windows, q, `page shift ${pageShift ?? '-'} is not offered (mask 0x${q.pageSizeMask.toString(16)})`);
  }
  // Linux: len = order_base_2(max RAM); a smaller window when the largest block cannot cover it.
  let windowShift = Math.max(pageShift, Math.ceil(Math.log2(memory.sizeNumber)));
  if (q.largestBlock < 2 ** (windowShift - pageShift)) windowShift = Math.floor(Math.log2(q.largestBlock)) + pageShift;
  const [hi, lo] = buidCells(buid);
  const r = fw.rtas(RTAS_CREATE_PE_DMA_WINDOW, [node.configAddr, hi, lo, pageShift, windowShift]);
  if (r.status !== RTAS_SUCCESS) return new DriverPe(node, windows, q, `ibm,create-pe-dma-window answered ${r.status}`);
  const start = (BigInt(r.outputs[1]!) << 32n) | BigInt(r.outputs[2]!);
  windows.push({ kind: 'ddw', liobn: r.outputs[0]!, start, last: start + (1n << BigInt(windowShift)) - 1n, pageShift });
  return new DriverPe(node, windows, q, undefined);
}
