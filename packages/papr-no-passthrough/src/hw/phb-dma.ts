/**
 * DMA through a PHB: the bus address selects the window it falls in, the window's TCE gives
 * the real page. A DMA outside every window, through a "page fault" TCE, or against the TCE's
 * direction freezes the whole PE (EEH state 2) and is recorded; while the PE is not in state 0
 * every DMA fails. All pages are translated before any byte moves, so a failed DMA transfers
 * nothing. No BigInt on the success path: the IOVA is split into 32-bit halves once.
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
import { TCE_ENTRY_SIZE, TCE_PCI_READ, TCE_PCI_WRITE } from '../spec/tce.js';
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

/** A DMA as the PHB sees it: the request plus the function that issued it. */
export interface PhbDmaRequest extends DmaRequest {
  /** The issuing function (`DDDD:BB:DD.F`). */
  readonly device: string;
}

function failed(fault: DmaFault): DmaResult {
  return { ok: false, fault };
}

function freeze(
  pe: PartitionableEndpoint,
  req: PhbDmaRequest,
  code: number,
  at: number,
  window: TceTable | undefined,
  tceIndex: number | undefined,
  tce: bigint | undefined,
): DmaResult {
  const iova = BigInt.asUintN(64, req.iova + BigInt(at));
  const name = PAPR_DMA_ERROR_NAMES[code]!;
  const rec = { code, name, device: req.device, iova, write: req.write, liobn: window?.liobn, tceIndex, tce };
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

/** Carries one DMA of a PE's function through the PHB. Never throws. */
export function phbDma(memory: PhysicalMemoryLike, pe: PartitionableEndpoint, req: PhbDmaRequest): DmaResult {
  if (req.pasid !== undefined) {
    // The PHB has no PASID support: a PASID-prefixed request is refused (not a translation error, no freeze).
    return failed({
      class: 'blocked',
      name: 'PASID prefix not supported (PAPR has no PASID)',
      code: 0,
      iova: req.iova,
      record: { device: req.device, configAddr: pe.configAddr, peState: pe.state, pasid: req.pasid },
    });
  }
  if (pe.state !== EEH_PE_STATE_NORMAL) {
    return failed({
      class: 'frozen',
      name: PAPR_FROZEN_NAMES[pe.state] ?? `EEH: PE state ${pe.state}`,
      code: pe.state,
      iova: req.iova,
      record: { device: req.device, configAddr: pe.configAddr, peState: pe.state, frozen: true, write: req.write },
    });
  }
  const length = req.write ? (req.data?.length ?? 0) : req.size;
  if (!(length >= 0) || !Number.isInteger(length)) {
    return failed({ class: 'bad-config', name: 'malformed DMA length', code: 0, iova: req.iova, record: { length } });
  }
  if (length === 0) return { ok: true, data: new Uint8Array(0) };
  const iova = BigInt.asUintN(64, req.iova);
  const hi = Number(iova >> 32n);
  const lo = Number(iova & 0xffffffffn);

  let window: TceTable | undefined;
  let off = -1;
  for (const w of pe.windows) {
    if (w === undefined) continue;
    const o = w.offsetOf(hi, lo);
    if (o >= 0) {
      window = w;
      off = o;
      break;
    }
  }
  if (window === undefined) return freeze(pe, req, PAPR_DMA_ERR_NO_WINDOW, 0, undefined, undefined, undefined);

  const need = req.write ? TCE_PCI_WRITE : TCE_PCI_READ;
  const pageSize = window.pageSize;
  const segAddr: number[] = [];
  const segLen: number[] = [];
  const words = new Uint32Array(2);
  let pos = 0;
  while (pos < length) {
    const o = off + pos;
    if (o >= window.sizeNumber) return freeze(pe, req, PAPR_DMA_ERR_NO_WINDOW, pos, undefined, undefined, undefined);
    const index = Math.floor(o / pageSize);
    const inPage = o - index * pageSize;
    const n = Math.min(pageSize - inPage, length - pos);
    const entryAddr = window.table + index * TCE_ENTRY_SIZE;
    if (!memory.contains(entryAddr, TCE_ENTRY_SIZE)) {
      return freeze(pe, req, PAPR_DMA_ERR_MEMORY, pos, window, index, undefined);
    }
    window.read(memory, index, words);
    const tHi = words[0]!;
    const tLo = words[1]!;
    const perm = tLo & 3;
    if ((perm & need) === 0) {
      const tce = (BigInt(tHi) << 32n) | BigInt(tLo);
      const code = perm === 0 ? PAPR_DMA_ERR_INVALID_TCE : req.write ? PAPR_DMA_ERR_WRITE_PROTECTED : PAPR_DMA_ERR_READ_PROTECTED;
      return freeze(pe, req, code, pos, window, index, tce);
    }
    // QEMU masks the TCE to the window's page size (translate: `tce & ~(page_mask)`).
    const addr = tHi * TWO32 + ((tLo & ~0xfff) >>> 0);
    const real = addr - (addr % pageSize) + inPage;
    if (!memory.contains(real, n)) {
      return freeze(pe, req, PAPR_DMA_ERR_MEMORY, pos, window, index, (BigInt(tHi) << 32n) | BigInt(tLo));
    }
    segAddr.push(real);
    segLen.push(n);
    pos += n;
  }

  if (req.write) {
    const data = req.data!;
    let done = 0;
    for (let i = 0; i < segAddr.length; i++) {
      memory.writeFrom(segAddr[i]!, data, done, segLen[i]!);
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
