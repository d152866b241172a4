/**
 * DMA through a PHB: the bus address selects the window it falls in, the window's TCE gives
 * the real page. A DMA outside every window, through a "page fault" TCE, or against the TCE's
 * direction freezes the whole PE (EEH state 2) and is recorded; while the PE is not in state 0
 * every DMA fails. All pages are translated before any byte moves, so a failed DMA transfers
 * nothing. A read lands in the caller's buffer: the success path allocates nothing of its own
 * (no BigInt, no object, no array; copies above 64 bytes go through `memory.readInto`/`writeFrom`,
 * which may make views): the IOVA is split into 32-bit halves by one typed-array store, each TCE
 * is read as two 32-bit words, and a multi-page DMA keeps its segments in scratch typed arrays.
 */

import type { DmaFault, DmaRequest, FaultClass, PhysicalMemoryLike } from '@ioasid/uapi';
import { copyFrameBytes } from '@ioasid/core';
import {
  PAPR_DMA_ERROR_NAMES,
  PAPR_DMA_ERR_INVALID_TCE,
  PAPR_DMA_ERR_MEMORY,
  PAPR_DMA_ERR_NO_WINDOW,
  PAPR_DMA_ERR_READ_PROTECTED,
  PAPR_DMA_ERR_WRITE_PROTECTED,
  PAPR_FROZEN_NAMES,
} from '../spec/dma-error.js';
import { EEH_PE_STATE_NORMAL, EEH_PE_STATE_STOPPED_IO_DMA } from '../spec/rtas.js';
import { TCE_ENTRY_SIZE, TCE_PCI_READ, TCE_PCI_WRITE, TCE_PERM_MASK, bswap32 } from '../spec/tce.js';
import type { PartitionableEndpoint } from './pe.js';
import type { TceTable } from './tce-table.js';

const TWO32 = 4294967296;
/** Module-local copies of the spec's names the DMA path reads (no import binding read per DMA). */
const NORMAL = EEH_PE_STATE_NORMAL;
const READ = TCE_PCI_READ;
const WRITE = TCE_PCI_WRITE;
const FRAME = 4096;
const FRAME_INV = 1 / FRAME;
/** Pages this large or larger are not kept in a PE's decode of its last window (see PartitionableEndpoint.decodedWindow). */
const MAX_DECODED_PAGE = 2 ** 31;
/** Reads up to this many bytes inside one 4 KiB frame are copied word by word from the frame. */
const SMALL_READ = 64;

/** The IOVA as a 64-bit word and as its two 32-bit halves (one store splits it, wrapping mod 2^64). */
const iova64 = new BigUint64Array(1);
const iova32 = new Uint32Array(iova64.buffer);
/** Index of the high and low halves in `iova32` (the host's byte order). */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
const HI = LITTLE_ENDIAN ? 1 : 0;
const LO = LITTLE_ENDIAN ? 0 : 1;

/**
 * Segments of a multi-page DMA (real address, length), translated before any byte moves;
 * grown (rarely) when a DMA spans more pages than they hold. DMAs never nest, so one set serves
 * every PHB.
 */
let segAddr = new Float64Array(16);
let segLen = new Float64Array(16);

function growSegments(): void {
  const a = new Float64Array(segAddr.length * 2);
  const l = new Float64Array(segLen.length * 2);
  a.set(segAddr);
  l.set(segLen);
  segAddr = a;
  segLen = l;
}

const CLASS_OF: Readonly<Record<number, FaultClass>> = {
  [PAPR_DMA_ERR_NO_WINDOW]: 'translation',
  [PAPR_DMA_ERR_INVALID_TCE]: 'translation',
  [PAPR_DMA_ERR_READ_PROTECTED]: 'permission',
  [PAPR_DMA_ERR_WRITE_PROTECTED]: 'permission',
  [PAPR_DMA_ERR_MEMORY]: 'external-abort',
};

function freeze(
  pe: PartitionableEndpoint,
  device: string,
  req: DmaRequest,
  code: number,
  at: number,
  window: TceTable | undefined,
  tceIndex: number | undefined,
  tce: bigint | undefined,
): DmaFault {
  const iova = BigInt.asUintN(64, req.iova + BigInt(at));
  const name = PAPR_DMA_ERROR_NAMES[code]!;
  const rec = { code, name, device, iova, write: req.write, liobn: window?.liobn, tceIndex, tce };
  pe.freezes.push(rec);
  pe.state = EEH_PE_STATE_STOPPED_IO_DMA;
  return { class: CLASS_OF[code]!, name, code, iova, record: { ...rec, configAddr: pe.configAddr, peState: pe.state, frozen: true } };
}

/** The request names no PASID the PHB could carry: refused, not a translation error, no freeze. */
function pasidRefused(pe: PartitionableEndpoint, device: string, req: DmaRequest): DmaFault {
  return {
    class: 'blocked',
    name: 'PASID prefix not supported (PAPR has no PASID)',
    code: 0,
    iova: req.iova,
    record: { device, configAddr: pe.configAddr, peState: pe.state, pasid: req.pasid },
  };
}

/** A DMA while the PE is not in EEH state 0: refused with the state as its code. */
function frozen(pe: PartitionableEndpoint, device: string, req: DmaRequest): DmaFault {
  return {
    class: 'frozen',
    name: PAPR_FROZEN_NAMES[pe.state] ?? `EEH: PE state ${pe.state}`,
    code: pe.state,
    iova: req.iova,
    record: { device, configAddr: pe.configAddr, peState: pe.state, frozen: true, write: req.write },
  };
}

/** A read whose buffer is shorter than the read (only a direct caller of the model can do that). */
function shortBuffer(req: DmaRequest, length: number, into: Uint8Array): DmaFault {
  return { class: 'bad-config', name: 'DMA read buffer too short', code: 0, iova: req.iova, record: { length, buffer: into.length } };
}

/**
 * Carries one DMA of a PE's function through the PHB; a read's bytes land in `into[0, size)`.
 * Returns `undefined` on success, or the fault (the PE frozen and the freeze recorded where
 * LoPAR says so). Never throws. The success path allocates nothing: the IOVA's halves come from
 * one typed-array store, each TCE is two 32-bit words (from the TCE cache or the table's frame),
 * and a small read inside one frame is copied from the frame's words. Fault records are built on
 * the fault path only. `memSize` is `memory.sizeNumber`.
 */
export function phbDmaInto(
  memory: PhysicalMemoryLike,
  memSize: number,
  pe: PartitionableEndpoint,
  device: string,
  req: DmaRequest,
  into: Uint8Array,
): DmaFault | undefined {
  if (req.pasid !== undefined) return pasidRefused(pe, device, req);
  if (pe.state !== NORMAL) return frozen(pe, device, req);
  const write = req.write;
  const data = req.data;
  const length = write ? (data?.length ?? 0) : req.size;
  if (!(length >= 0) || !Number.isInteger(length)) {
    return { class: 'bad-config', name: 'malformed DMA length', code: 0, iova: req.iova, record: { length } };
  }
  if (length === 0) return undefined;
  iova64[0] = req.iova;
  const hi = iova32[HI]!;
  const lo = iova32[LO]!;

  const need = write ? WRITE : READ;
  let window = pe.decodedWindow;
  let index: number;
  let inPage: number;
  if (window !== undefined && hi === pe.decodedHi && (inPage = (lo - pe.decodedLo) >>> 0) < window.pageSize) {
    // The same IOMMU page as the PE's last DMA (pages below 2^31 bytes never cross a 2^32 line).
    index = pe.decodedIndex;
  } else {
    window = undefined;
    let off = -1;
    const windows = pe.windows;
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i];
      if (w === undefined) continue;
      const o = (hi - w.startHi) * TWO32 + (lo - w.startLo);
      if (o >= 0 && o < w.sizeNumber) {
        window = w;
        off = o;
        break;
      }
    }
    if (window === undefined) return freeze(pe, device, req, PAPR_DMA_ERR_NO_WINDOW, 0, undefined, undefined, undefined);
    index = Math.floor(off * window.pageInv);
    inPage = off - index * window.pageSize;
    if (window.pageSize < MAX_DECODED_PAGE) {
      pe.decodedWindow = window;
      pe.decodedHi = hi;
      pe.decodedLo = (lo - inPage) >>> 0;
      pe.decodedIndex = index;
    }
  }
  const pageSize = window.pageSize;
  if (!(inPage + length <= pageSize)) {
    // Past the page (a window holds whole pages: its end is a page's end).
    return multiPage(memory, memSize, pe, device, req, into, window, index * pageSize + inPage, length, need);
  }
  // One IOMMU page: the common case.
  let real = window.pageOf(memory, index, need) + inPage;
  if (!(real >= inPage && real + length <= memSize)) {
    const r = slowTranslate(memory, memSize, pe, device, req, window, index, inPage, length, need, 0);
    if (typeof r !== 'number') return r;
    real = r;
  }
  if (write) {
    memory.writeFrom(real, data!, 0, length);
    return undefined;
  }
  if (into.length < length) return shortBuffer(req, length, into);
  if (length === 4 && (real & 3) === 0) {
    // One aligned 32-bit word (a register-sized read): one word load, little-endian bytes.
    const v = memory.read32At(real);
    into[0] = v;
    into[1] = v >>> 8;
    into[2] = v >>> 16;
    into[3] = v >>> 24;
    return undefined;
  }
  if (length <= SMALL_READ) {
    // A small read inside one 4 KiB frame: straight from the frame's words (little-endian bytes).
    const pfn = Math.floor(real * FRAME_INV);
    const at = real - pfn * FRAME;
    if (at + length <= FRAME) {
      copyFrameBytes(memory.frameWords(pfn), at, into, 0, length);
      return undefined;
    }
  }
  memory.readInto(real, into, 0, length);
  return undefined;
}

/**
 * A DMA across IOMMU pages (or past the window's end): every page is translated into the
 * segment scratch before any byte moves, so a failed DMA transfers nothing.
 */
function multiPage(
  memory: PhysicalMemoryLike,
  memSize: number,
  pe: PartitionableEndpoint,
  device: string,
  req: DmaRequest,
  into: Uint8Array,
  window: TceTable,
  off: number,
  length: number,
  need: number,
): DmaFault | undefined {
  const pageSize = window.pageSize;
  let segs = 0;
  let pos = 0;
  while (pos < length) {
    const o = off + pos;
    if (o >= window.sizeNumber) return freeze(pe, device, req, PAPR_DMA_ERR_NO_WINDOW, pos, undefined, undefined, undefined);
    const i = Math.floor(o * window.pageInv);
    const at = o - i * pageSize;
    const n = Math.min(pageSize - at, length - pos);
    let real = window.pageOf(memory, i, need) + at;
    if (!(real >= at && real + n <= memSize)) {
      const r = slowTranslate(memory, memSize, pe, device, req, window, i, at, n, need, pos);
      if (typeof r !== 'number') return r;
      real = r;
    }
    if (segs === segAddr.length) growSegments();
    segAddr[segs] = real;
    segLen[segs] = n;
    segs++;
    pos += n;
  }

  if (req.write) {
    const data = req.data!;
    let done = 0;
    for (let i = 0; i < segs; i++) {
      const n = segLen[i]!;
      memory.writeFrom(segAddr[i]!, data, done, n);
      done += n;
    }
    return undefined;
  }
  if (into.length < length) return shortBuffer(req, length, into);
  let done = 0;
  for (let i = 0; i < segs; i++) {
    const n = segLen[i]!;
    readSmallOrInto(memory, segAddr[i]!, into, done, n);
    done += n;
  }
  return undefined;
}

/**
 * Copies `length` bytes of memory at `real` (inside memory) into `into[offset…]`: a small read
 * inside one 4 KiB frame straight from the frame's words (a never-written frame reads as zero),
 * anything else through `memory.readInto`.
 */
function readSmallOrInto(memory: PhysicalMemoryLike, real: number, into: Uint8Array, offset: number, length: number): void {
  const pfn = Math.floor(real * FRAME_INV);
  const at = real - pfn * FRAME;
  if (length > SMALL_READ || at + length > FRAME) {
    memory.readInto(real, into, offset, length);
    return;
  }
  copyFrameBytes(memory.frameWords(pfn), at, into, offset, length);
}

/**
 * The slow path of a translation the fast path refused: drops the TCE from the cache and
 * fetches it from the table again. The real address when the table's TCE allows the access
 * after all (the cache was stale), or the fault, with the PE frozen and the freeze recorded.
 */
function slowTranslate(
  memory: PhysicalMemoryLike,
  memSize: number,
  pe: PartitionableEndpoint,
  device: string,
  req: DmaRequest,
  window: TceTable,
  index: number,
  inPage: number,
  n: number,
  need: number,
  pos: number,
): number | DmaFault {
  window.invalidate(index);
  const entryAddr = window.table + index * TCE_ENTRY_SIZE;
  if (!memory.contains(entryAddr, TCE_ENTRY_SIZE)) return freeze(pe, device, req, PAPR_DMA_ERR_MEMORY, pos, window, index, undefined);
  const tHi = bswap32(memory.read32At(entryAddr));
  const tLo = bswap32(memory.read32At(entryAddr + 4));
  const tce = (BigInt(tHi) << 32n) | BigInt(tLo);
  const perm = tLo & TCE_PERM_MASK;
  if ((perm & need) === 0) {
    const code = perm === 0 ? PAPR_DMA_ERR_INVALID_TCE : req.write ? PAPR_DMA_ERR_WRITE_PROTECTED : PAPR_DMA_ERR_READ_PROTECTED;
    return freeze(pe, device, req, code, pos, window, index, tce);
  }
  // QEMU masks the TCE to the window's page size (translate: `tce & ~(page_mask)`).
  const real = ((tHi & window.rpnMaskHi) >>> 0) * TWO32 + ((tLo & window.rpnMaskLo) >>> 0) + inPage;
  return real >= 0 && real + n <= memSize ? real : freeze(pe, device, req, PAPR_DMA_ERR_MEMORY, pos, window, index, tce);
}
