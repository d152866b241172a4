/**
 * TCE programming as pseries Linux does it (arch/powerpc/platforms/pseries/iommu.c):
 * `tce_buildmulti_pSeriesLP` fills one 4 KiB page with up to 4096/8 = 512 big-endian TCEs
 * and hands it to H_PUT_TCE_INDIRECT (a single page goes by H_PUT_TCE);
 * `tce_freemulti_pSeriesLP` clears with H_STUFF_TCE in chunks of 512.
 */

import { IoasidError, type PhysicalMemoryLike } from '@ioasid/uapi';
import {
  H_PARAMETER,
  H_PUT_TCE,
  H_PUT_TCE_INDIRECT,
  H_STUFF_TCE,
  H_SUCCESS,
  TCE_LIST_MAX,
  hcallReturnName,
} from '../spec/hcall.js';
import { TCE_ENTRY_SIZE } from '../spec/tce.js';
import type { PaprFirmware } from '../spec/firmware.js';

/** The TCE list being built: big-endian bytes, and host-order words over them. */
const list8 = new Uint8Array(TCE_LIST_MAX * TCE_ENTRY_SIZE);
const list32 = new Uint32Array(list8.buffer);

/** A DMA window as the driver knows it (from `ibm,dma-window` or `ibm,create-pe-dma-window`). */
export interface DriverWindow {
  /** `'default'` (32-bit, from the device tree) or `'ddw'` (created through RTAS). */
  readonly kind: 'default' | 'ddw';
  /** The LIOBN. */
  readonly liobn: number;
  /** First bus address. */
  readonly start: bigint;
  /** Last bus address (inclusive). */
  readonly last: bigint;
  /** log2 of the IOMMU page size. */
  readonly pageShift: number;
}

/** Issues batched TCE hcalls through one TCE list page (Linux's per-CPU `tce_page`). */
export class TceOps {
  /**
   * @param firmware - the hcall entry point
   * @param memory - partition memory (the list page lives there)
   * @param listPage - physical address of the 4 KiB TCE list page
   */
  constructor(
    private readonly firmware: PaprFirmware,
    private readonly memory: PhysicalMemoryLike,
    private readonly listPage: number,
  ) {}

  /**
   * Stores `count` TCEs from entry `first` of a window: entry i maps the IOMMU page whose
   * first 4 KiB frame is `pfns[i]`, with permission bits `perm`. Returns H_SUCCESS, or the
   * failing return code after clearing what this call stored.
   */
  put(win: DriverWindow, first: number, pfns: Uint32Array, count: number, perm: number): number {
    let done = 0;
    while (done < count) {
      const n = Math.min(TCE_LIST_MAX, count - done);
      const ioba = win.start + (BigInt(first + done) << BigInt(win.pageShift));
      let ret: number;
      if (n === 1) {
        const tce = (BigInt(pfns[done]!) << 12n) | BigInt(perm);
        ret = this.firmware.hcall(H_PUT_TCE, BigInt(win.liobn), ioba, tce).ret;
      } else {
        for (let i = 0; i < n; i++) {
          // TCE = pfn << 12 | perm, big-endian: high word pfn >>> 20, low word pfn << 12 | perm, each byte-swapped
          const pfn = pfns[done + i]!;
          const h = pfn >>> 20;
          const l = (pfn << 12) | perm;
          list32[2 * i] = ((h & 0xff) << 24) | ((h & 0xff00) << 8) | ((h >>> 8) & 0xff00) | (h >>> 24);
          list32[2 * i + 1] = ((l & 0xff) << 24) | ((l & 0xff00) << 8) | ((l >>> 8) & 0xff00) | (l >>> 24);
        }
        this.memory.writeFrom(this.listPage, list8, 0, n * TCE_ENTRY_SIZE);
        ret = this.firmware.hcall(H_PUT_TCE_INDIRECT, BigInt(win.liobn), ioba, BigInt(this.listPage), BigInt(n)).ret;
      }
      if (ret !== H_SUCCESS) {
        this.clear(win, first, done);
        return ret;
      }
      done += n;
    }
    return H_SUCCESS;
  }

  /** Clears `count` TCEs from entry `first` (H_STUFF_TCE with 0, ≤ 512 per call). */
  clear(win: DriverWindow, first: number, count: number): number {
    let done = 0;
    while (done < count) {
      const n = Math.min(TCE_LIST_MAX, count - done);
      const ioba = win.start + (BigInt(first + done) << BigInt(win.pageShift));
      const ret = this.firmware.hcall(H_STUFF_TCE, BigInt(win.liobn), ioba, 0n, BigInt(n)).ret;
      if (ret !== H_SUCCESS) return ret;
      done += n;
    }
    return H_SUCCESS;
  }
}

/** The IoasidError for a failed TCE hcall (H_PARAMETER → EINVAL, anything else → EIO). */
export function hcallError(ret: number, argument: string, what: string): IoasidError {
  return new IoasidError(ret === H_PARAMETER ? 'EINVAL' : 'EIO', argument, `${what}: the hypervisor answered ${hcallReturnName(ret)}`);
}
