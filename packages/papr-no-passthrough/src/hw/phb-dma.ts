/**
 * DMA through a PHB: the bus address selects the window it falls in, the window's TCE gives
 * the real page. A DMA outside every window, through a "page fault" TCE, or against the TCE's
 * direction freezes the whole PE (EEH state 2) and is recorded; while the PE is not in state 0
 * every DMA fails. All pages are translated before any byte moves, so a failed DMA transfers
 * nothing. No BigInt on the success path: the IOVA is split into 32-bit halves once (and not
 * again while a stream repeats it), and the TCE is read as two 32-bit words.
 */

import type { DmaFault, DmaRequest, DmaResult, FaultClass, PhysicalMemoryLike } from '@ioasid/uapi';
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

const CLASS_OF: Readonly<Record<number, FaultClass>> = {
  [PAPR_DMA_ERR_NO_WINDOW]: 'translation',
  [PAPR_DMA_ERR_INVALID_TCE]: 'translation',
  [PAPR_DMA_ERR_READ_PROTECTED]: 'permission',
  [PAPR_DMA_ERR_WRITE_PROTECTED]: 'permission',
  [PAPR_DMA_ERR_MEMORY]: 'external-abort',
};

function failed(fault: DmaFault): DmaResult {
  return { ok: false, fault };
}

function freeze(
  pe: PartitionableEndpoint,
  device: string,
  req: DmaRequest,
  code: number,
  at: number,
  window: TceTable | undefined,
  tceIndex: number | undefined,
  tce: bigint | undefined,
): DmaResult {
  const iova = BigInt.asUintN(64, req.iova + BigInt(at));
  const name = PAPR_DMA_ERROR_NAMES[code]!;
  const rec = { code, name, device, iova, write: req.write, liobn: window?.liobn, tceIndex, tce };
  pe.freezes.push(rec);
  pe.state = EEH_PE_STATE_STOPPED_IO_DMA;
  return failed({
    class: CLASS_OF[code]!,
    name,
    code,
    iova,
    record: { ...rec, configAddr: pe.configAddr, peState: pe.state, frozen: true },
  });
}

/** The last IOVA split into 32-bit halves: a DMA stream that repeats an address skips the BigInt work. */
const lastIova: { iova: bigint | undefined; hi: number; lo: number } = { iova: undefined, hi: 0, lo: 0 };

function split(iova: bigint): void {
  if (iova === lastIova.iova) return;
  const v = BigInt.asUintN(64, iova);
  lastIova.hi = Number(v >> 32n);
  lastIova.lo = Number(v & 0xffffffffn);
  lastIova.iova = iova;
}

/**
 * Carries one DMA of a PE's function through the PHB. Never throws. The success path works on
 * the IOVA's 32-bit halves and reads each TCE as two 32-bit words: no BigInt (but the IOVA's
 * split when it changes), no float division, nothing allocated but the result. Fault records
 * are built on the fault path only.
 */
export function phbDma(memory: PhysicalMemoryLike, pe: PartitionableEndpoint, device: string, req: DmaRequest): DmaResult {
  if (req.pasid !== undefined) {
    // The PHB has no PASID support: a PASID-prefixed request is refused (not a translation error, no freeze).
    return failed({
      class: 'blocked',
      name: 'PASID prefix not supported (PAPR has no PASID)',
      code: 0,
      iova: req.iova,
      record: { device, configAddr: pe.configAddr, peState: pe.state, pasid: req.pasid },
    });
  }
  const write = req.write;
  if (pe.state !== EEH_PE_STATE_NORMAL) {
    return failed({
      class: 'frozen',
      name: PAPR_FROZEN_NAMES[pe.state] ?? `EEH: PE state ${pe.state}`,
      code: pe.state,
      iova: req.iova,
      record: { device, configAddr: pe.configAddr, peState: pe.state, frozen: true, write },
    });
  }
  const data = req.data;
  const length = write ? (data?.length ?? 0) : req.size;
  if (!(length >= 0) || !Number.isInteger(length)) {
    return failed({ class: 'bad-config', name: 'malformed DMA length', code: 0, iova: req.iova, record: { length } });
  }
  if (length === 0) return { ok: true, data: new Uint8Array(0) };
  split(req.iova);
  const hi = lastIova.hi;
  const lo = lastIova.lo;

  let window: TceTable | undefined;
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

  const need = write ? TCE_PCI_WRITE : TCE_PCI_READ;
  const pageSize = window.pageSize;
  const index = Math.floor(off * window.pageInv);
  const inPage = off - index * pageSize;
  if (inPage + length <= pageSize && off + length <= window.sizeNumber) {
    // One IOMMU page: the common case, without the segment lists.
    let real = window.pageOf(memory, index, need) + inPage;
    if (!(real >= inPage && memory.contains(real, length))) {
      const r = slowTranslate(memory, pe, device, req, window, index, inPage, length, need, 0);
      if (typeof r !== 'number') return r;
      real = r;
    }
    if (write) {
      memory.writeFrom(real, data!, 0, length);
      return { ok: true, data: new Uint8Array(0) };
    }
    const out = new Uint8Array(length);
    const inWord = real & 3;
    if (inWord + length <= 4) {
      // Inside one aligned 32-bit word (a register-sized read): one word load.
      const v = memory.read32At(real - inWord) >>> (8 * inWord);
      for (let i = 0; i < length; i++) out[i] = v >>> (8 * i);
    } else memory.readInto(real, out, 0, length);
    return { ok: true, data: out };
  }

  // All pages are translated before any byte moves, so a failed DMA transfers nothing.
  const segAddr: number[] = [];
  const segLen: number[] = [];
  let pos = 0;
  while (pos < length) {
    const o = off + pos;
    if (o >= window.sizeNumber) return freeze(pe, device, req, PAPR_DMA_ERR_NO_WINDOW, pos, undefined, undefined, undefined);
    const i = Math.floor(o * window.pageInv);
    const at = o - i * pageSize;
    const n = Math.min(pageSize - at, length - pos);
    let real = window.pageOf(memory, i, need) + at;
    if (!(real >= at && memory.contains(real, n))) {
      const r = slowTranslate(memory, pe, device, req, window, i, at, n, need, pos);
      if (typeof r !== 'number') return r;
      real = r;
    }
    segAddr.push(real);
    segLen.push(n);
    pos += n;
  }

  if (write) {
    let done = 0;
    for (let i = 0; i < segAddr.length; i++) {
      memory.writeFrom(segAddr[i]!, data!, done, segLen[i]!);
      done += segLen[i]!;
    }
    return { ok: true, data: new Uint8Array(0) };
  }
  const out = new Uint8Array(length);
  let done = 0;
  for (let i = 0; i < segAddr.length; i++) {
    memory.readInto(segAddr[i]!, out, done, segLen[i]!);
    done += segLen[i]!;
  }
  return { ok: true, data: out };
}

/**
 * The slow path of a translation the fast path refused: drops the TCE from the cache and
 * fetches it from the table again. The real address when the table's TCE allows the access
 * after all (the cache was stale), or the fault, with the PE frozen and the freeze recorded.
 */
function slowTranslate(
  memory: PhysicalMemoryLike,
  pe: PartitionableEndpoint,
  device: string,
  req: DmaRequest,
  window: TceTable,
  index: number,
  inPage: number,
  n: number,
  need: number,
  pos: number,
): number | DmaResult {
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
  return memory.contains(real, n) ? real : freeze(pe, device, req, PAPR_DMA_ERR_MEMORY, pos, window, index, tce);
}
