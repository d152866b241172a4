/**
 * The PAPR hypervisor and its PHB: partitionable endpoints with TCE-table DMA windows, the
 * TCE hypercalls, the DDW and EEH RTAS calls, and DMA translation with EEH freezes. A test or
 * a third-party driver drives it by hcalls and RTAS alone; every call returns synchronously.
 */

import { IoasidError, type DmaFault, type DmaRequest, type DmaResult, type PhysicalMemoryLike } from '@ioasid/uapi';
import { NO_DMA_DATA, dmaReadSize, dmaResultOf, parsePciName } from '@ioasid/core';
import type { HcallResult } from '../spec/hcall.js';
import {
  DDW_PGSIZE_4K,
  DDW_PGSIZE_64K,
  RTAS_CREATE_PE_DMA_WINDOW,
  RTAS_HARDWARE_ERROR,
  RTAS_QUERY_PE_DMA_WINDOW,
  RTAS_CONFIGURE_PE,
  RTAS_READ_SLOT_RESET_STATE2,
  RTAS_REMOVE_PE_DMA_WINDOW,
  RTAS_RESET_PE_DMA_WINDOWS,
  RTAS_RESET_PE_DMA_WINDOW_QEMU,
  RTAS_SET_EEH_OPTION,
  RTAS_SET_SLOT_RESET,
  buidCells,
  configAddr,
  type RtasResult,
} from '../spec/rtas.js';
import {
  DEFAULT_WINDOW_PAGE_SHIFT,
  DEFAULT_WINDOW_START,
  PAPR_DEFAULT_WINDOW_SIZE,
  QEMU_DEFAULT_WINDOW_SIZE,
  QEMU_LARGEST_BLOCK,
  pciLiobn,
} from '../spec/dma-window.js';
import type { PaprFirmware, PhbNode } from '../spec/firmware.js';
import { PartitionableEndpoint, type PaprFreezeRecord } from './pe.js';
import { TceTable } from './tce-table.js';
import { tceHcall, type TceHcallContext } from './tce-hcalls.js';
import { createPeDmaWindow, queryPeDmaWindow, removePeDmaWindow, resetPeDmaWindows } from './ddw-rtas.js';
import { configurePe, readSlotResetState2, setEehOption, setSlotReset } from './eeh-rtas.js';
import type { RtasContext } from './rtas-context.js';
import { phbDmaInto } from './phb-dma.js';

/** QEMU's `SPAPR_PCI_BASE_BUID`: the first PHB's BUID. */
export const SPAPR_PCI_BASE_BUID = 0x800000020000000n;

/**
 * Platform profile. `'papr'`: a 2 GiB default window at 0, LoPAR/KVM argument checks
 * (misaligned IOBA → H_PARAMETER, H_STUFF_TCE count > 512 → H_P4). `'qemu'`: QEMU's 1 GiB
 * default window at 0, low IOBA bits masked, no 512 cap on H_STUFF_TCE.
 */
export type PaprProfile = 'papr' | 'qemu';

/** One PE: its functions and, optionally, its DMA capabilities. */
export interface PaprPeOptions {
  /** The PCI functions grouped in the PE (`DDDD:BB:DD.F`). */
  readonly devices: readonly string[];
  /** DDW I/O page-size mask (default 4 KiB | 64 KiB = 0x03, as QEMU's `pgsz`). */
  readonly pageSizeMask?: number;
  /** Dynamic DMA windows supported (default true). */
  readonly ddw?: boolean;
  /** The `ibm,reset-pe-dma-windows` extension (default true). */
  readonly resetExtension?: boolean;
  /** Largest block of TCEs a created window may have (default 0x80000000, QEMU's answer). */
  readonly largestBlock?: number;
  /** Default window size (default: the profile's; at most 4 GiB). */
  readonly defaultWindowSize?: bigint;
}

/** Options of {@link PaprHypervisor}. */
export interface PaprHypervisorOptions {
  /** Partition memory: TCE tables live in it and TCEs point into it. */
  readonly memory: PhysicalMemoryLike;
  /** The PEs; every function of `devices` not named here gets a PE of its own. */
  readonly pes?: readonly PaprPeOptions[];
  /** Functions given to the system (each gets its own PE unless `pes` groups it). */
  readonly devices?: readonly string[];
  /** Platform profile (default `'papr'`). */
  readonly profile?: PaprProfile;
  /** The PHB's BUID (default QEMU's 0x800000020000000). */
  readonly buid?: bigint;
  /**
   * Entries of the PHB's TCE cache per DMA window: direct-mapped, a power of two, 0 for none
   * (default {@link DEFAULT_TCE_CACHE_ENTRIES}).
   */
  readonly tceCacheEntries?: number;
}

/** The default size of a window's TCE cache. */
export const DEFAULT_TCE_CACHE_ENTRIES = 512;

/**
 * The longest read {@link PaprHypervisor.dmaFrom} gives a buffer of its own: a longer one is
 * translated (and faults as the PHB would) but moves no byte and, when it translates, ends in a
 * `bad-config` fault instead of a buffer the JS engine cannot allocate.
 */
const MAX_READ_BUFFER = 2 ** 32;

/**
 * The PHB's DMA path, bound once: a test runner that rewrites imports into module-object reads
 * (vitest's module runner) would otherwise read the import binding on every DMA.
 */
const dmaThroughPhb = phbDmaInto;

/** A DMA window as {@link PaprHypervisor.liobns} reports it. */
export interface PaprWindowInfo {
  /** The LIOBN naming the window's TCE table. */
  readonly liobn: number;
  /** First bus address. */
  readonly start: bigint;
  /** Size in bytes. */
  readonly size: bigint;
  /** log2 of the IOMMU page size. */
  readonly pageShift: number;
  /** Physical address of the TCE table (big-endian 8-byte entries). */
  readonly table: bigint;
}

/** A DMA issued by a function through the PHB. */
export interface PaprDmaRequest {
  /** The issuing function. */
  readonly device: string;
  /** Bus address. */
  readonly iova: bigint;
  /** Bytes to read (ignored for writes). */
  readonly size: number;
  /** A write (device → memory). */
  readonly write: boolean;
  /** The bytes to write. */
  readonly data?: Uint8Array;
  /** A PASID prefix (refused: PAPR has none). */
  readonly pasid?: number;
}

/** The sPAPR hypervisor with one PHB. */
export class PaprHypervisor implements PaprFirmware {
  /** The PHB's BUID. */
  readonly buid: bigint;
  /** Partition memory. */
  readonly memory: PhysicalMemoryLike;
  /** The platform profile. */
  readonly profile: PaprProfile;
  /** TCE cache entries per window (0: no cache). */
  readonly tceCacheEntries: number;
  /** `memory.sizeNumber`, read once (memory does not change size). */
  private readonly memSize: number;
  private readonly pes: PartitionableEndpoint[] = [];
  private readonly byDevice = new Map<string, PartitionableEndpoint>();
  private readonly defaults = new WeakMap<PartitionableEndpoint, TceTable>();
  private readonly bars = new Map<string, Map<number, number>>();
  private readonly tceCtx: TceHcallContext;
  private readonly rtasCtx: RtasContext;
  /** The function of the last DMA and its PE (a stream of DMAs from one function skips the lookup). */
  private lastDevice: string | undefined;
  private lastPe: PartitionableEndpoint | undefined;

  /** @param options - memory, PEs, profile */
  constructor(options: PaprHypervisorOptions) {
    this.memory = options.memory;
    this.memSize = options.memory.sizeNumber;
    this.profile = options.profile ?? 'papr';
    this.buid = options.buid ?? SPAPR_PCI_BASE_BUID;
    const cacheEntries = options.tceCacheEntries ?? DEFAULT_TCE_CACHE_ENTRIES;
    if (!Number.isInteger(cacheEntries) || cacheEntries < 0 || (cacheEntries & (cacheEntries - 1)) !== 0 || cacheEntries > 1 << 20) {
      throw new IoasidError('EINVAL', 'tceCacheEntries', 'the TCE cache size is 0 or a power of two up to 2^20');
    }
    this.tceCacheEntries = cacheEntries;
    const groups: PaprPeOptions[] = [...(options.pes ?? [])];
    const named = new Set(groups.flatMap((g) => g.devices));
    for (const d of options.devices ?? []) if (!named.has(d)) groups.push({ devices: [d] });
    const defaultSize = this.profile === 'qemu' ? QEMU_DEFAULT_WINDOW_SIZE : PAPR_DEFAULT_WINDOW_SIZE;
    const byAddr = new Map<number, string>();
    groups.forEach((g, index) => {
      if (g.devices.length === 0) throw new IoasidError('EINVAL', 'pes', `PE ${index} has no device`);
      const addrs = new Set<number>();
      for (const d of g.devices) {
        const a = parsePciName(d, 'pes');
        const ca = configAddr(a.bus, (a.device << 3) | a.fn);
        const other = byAddr.get(ca);
        if (other !== undefined || this.byDevice.has(d)) {
          throw new IoasidError('EEXIST', 'pes', `${d} has the config address of ${other ?? d}, already in a PE`);
        }
        byAddr.set(ca, d);
        addrs.add(ca);
      }
      const size = g.defaultWindowSize ?? defaultSize;
      if (size <= 0n || size > 1n << 32n || size % 4096n !== 0n) {
        throw new IoasidError('EINVAL', 'defaultWindowSize', 'the default window lies below 4 GiB in 4 KiB pages');
      }
      const first = parsePciName(g.devices[0]!, 'pes');
      const pe = new PartitionableEndpoint(index, configAddr(first.bus, (first.device << 3) | first.fn), addrs, {
        devices: [...g.devices],
        pageSizeMask: g.pageSizeMask ?? DDW_PGSIZE_4K | DDW_PGSIZE_64K,
        ddw: g.ddw ?? true,
        resetExtension: g.resetExtension ?? true,
        largestBlock: g.largestBlock ?? QEMU_LARGEST_BLOCK,
        defaultWindowSize: size,
      });
      this.pes.push(pe);
      for (const d of g.devices) this.byDevice.set(d, pe);
    });
    this.tceCtx = {
      memory: this.memory,
      qemuQuirks: this.profile === 'qemu',
      table: (liobn) => (liobn > 0xffffffffn ? undefined : this.windowOf(Number(liobn))?.table),
    };
    const [bHi, bLo] = buidCells(this.buid);
    this.rtasCtx = {
      memory: this.memory,
      buid: this.buid,
      tceCacheEntries: this.tceCacheEntries,
      peAt: (ca, hi, lo) => (hi === bHi && lo === bLo ? this.pes.find((p) => p.configAddrs.has(ca)) : undefined),
      windowOf: (liobn) => this.windowOf(liobn),
      newDefaultWindow: (pe) => this.newDefaultWindow(pe),
      isDefault: (pe, t) => this.defaults.get(pe) === t,
    };
    const made: PartitionableEndpoint[] = [];
    try {
      for (const pe of this.pes) {
        this.newDefaultWindow(pe);
        made.push(pe);
      }
    } catch (e) {
      for (const pe of made) pe.windows[0]?.free(this.memory);
      throw e;
    }
  }

  private newDefaultWindow(pe: PartitionableEndpoint): TceTable {
    const t = TceTable.allocate(
      this.memory,
      pciLiobn(pe.index, 0),
      DEFAULT_WINDOW_START,
      pe.config.defaultWindowSize,
      DEFAULT_WINDOW_PAGE_SHIFT,
      this.tceCacheEntries,
    );
    pe.setWindow(0, t);
    this.defaults.set(pe, t);
    return t;
  }

  /**
   * The window a LIOBN names. Its PE is found from the LIOBN's index field (bits 8–30, see
   * {@link pciLiobn}) without a scan, unless the PHB has so many PEs that the field wraps.
   */
  private windowOf(liobn: number): { pe: PartitionableEndpoint; slot: number; table: TceTable } | undefined {
    const pe = this.pes[(liobn >>> 8) & 0x7fffff];
    if (pe !== undefined) {
      const slot = pe.windows.findIndex((w) => w?.liobn === liobn);
      if (slot >= 0) return { pe, slot, table: pe.windows[slot]! };
    }
    if (this.pes.length <= 0x800000) return undefined;
    for (const p of this.pes) {
      const slot = p.windows.findIndex((w) => w?.liobn === liobn);
      if (slot >= 0) return { pe: p, slot, table: p.windows[slot]! };
    }
    return undefined;
  }

  private pe(device: string): PartitionableEndpoint {
    const pe = this.byDevice.get(device);
    if (pe === undefined) throw new IoasidError('ENODEV', 'device', `${device} is not in any PE of this PHB`);
    return pe;
  }

  /** Makes a hypervisor call: `hcall(H_PUT_TCE, liobn, ioba, tce)` → `{ ret, values }`. */
  hcall(opcode: number | bigint, ...args: (bigint | number)[]): HcallResult {
    const regs: bigint[] = [];
    for (const a of args) regs.push(typeof a === 'bigint' ? a : BigInt(a));
    return tceHcall(this.tceCtx, Number(opcode), regs);
  }

  /**
   * Calls an RTAS function by name with its input cells; `nret` is the number of outputs
   * including Status (only `ibm,query-pe-dma-window` looks at it: 5 by default, or 6). An
   * unknown name is RTAS_UNKNOWN_SERVICE's −1.
   */
  rtas(name: string, args: readonly (number | bigint)[], nret?: number): RtasResult {
    switch (name) {
      case RTAS_QUERY_PE_DMA_WINDOW:
        return queryPeDmaWindow(this.rtasCtx, args, nret ?? 5);
      case RTAS_CREATE_PE_DMA_WINDOW:
        return createPeDmaWindow(this.rtasCtx, args);
      case RTAS_REMOVE_PE_DMA_WINDOW:
        return removePeDmaWindow(this.rtasCtx, args);
      case RTAS_RESET_PE_DMA_WINDOWS:
      case RTAS_RESET_PE_DMA_WINDOW_QEMU:
        return resetPeDmaWindows(this.rtasCtx, args);
      case RTAS_SET_EEH_OPTION:
        return setEehOption(this.rtasCtx, args);
      case RTAS_SET_SLOT_RESET:
        return setSlotReset(this.rtasCtx, args);
      case RTAS_READ_SLOT_RESET_STATE2:
        return readSlotResetState2(this.rtasCtx, args);
      case RTAS_CONFIGURE_PE:
        return configurePe(this.rtasCtx, args);
      default:
        return { status: RTAS_HARDWARE_ERROR, outputs: [] };
    }
  }

  /** The device's PE windows, default first, then by start address. */
  liobns(device: string): PaprWindowInfo[] {
    const pe = this.pe(device);
    const def = this.defaults.get(pe);
    return pe
      .activeWindows()
      .sort((a, b) => (a === def ? -1 : b === def ? 1 : 0))
      .map((t) => ({ liobn: t.liobn, start: t.start, size: t.size, pageShift: t.pageShift, table: BigInt(t.table) }));
  }

  /** A DMA from a function: `{ ok, data }`, or `{ ok: false, fault }` with the PE's freeze state. Never throws. */
  dma(request: PaprDmaRequest): DmaResult {
    return this.dmaFrom(request.device, request);
  }

  /**
   * A DMA from the function named `device` (what {@link dma} does, without a request object
   * that names the device): {@link dmaInto} with a fresh buffer, as a `DmaResult`.
   */
  dmaFrom(device: string, request: DmaRequest): DmaResult {
    if (dmaReadSize(request) > MAX_READ_BUFFER) {
      const fault = this.dmaInto(device, request, NO_DMA_DATA);
      return fault === undefined ? { ok: true, data: NO_DMA_DATA } : { ok: false, fault };
    }
    return dmaResultOf(request, (into) => this.dmaInto(device, request, into));
  }

  /**
   * A DMA from the function named `device`, a read's bytes landing in `into[0, size)`:
   * `undefined` on success, or the fault (with the PE's freeze state). Never throws; the success
   * path allocates no object, BigInt or array of its own (copies above 64 bytes go through
   * `memory.readInto`/`writeFrom`, which may make views). A read whose buffer is shorter than `size` is translated as usual
   * (and faults as the PHB would) but moves no byte and ends in a `bad-config` fault.
   */
  dmaInto(device: string, request: DmaRequest, into: Uint8Array): DmaFault | undefined {
    let pe = this.lastPe;
    if (device !== this.lastDevice || pe === undefined) {
      pe = this.byDevice.get(device);
      if (pe === undefined) {
        return { class: 'blocked', name: 'no PE: the function is not on this PHB', code: 0, iova: request.iova, record: { device } };
      }
      this.lastDevice = device;
      this.lastPe = pe;
    }
    return dmaThroughPhb(this.memory, this.memSize, pe, device, request, into);
  }

  /**
   * Empties the PHB's translation caches: every window's TCE cache, so that the next DMA through
   * each window fetches its TCE from the table in memory. The PE and window configuration (which
   * function is in which PE, the windows' TCE table descriptors) stays as it is.
   */
  flushTranslationCaches(): void {
    for (const pe of this.pes) for (const w of pe.windows) w?.flush();
  }

  /**
   * Empties every cache of the model: the TCE caches ({@link flushTranslationCaches}), the
   * resolution of the last DMA's function to its PE and each PE's decode of its last DMA's
   * window, so that the next DMA looks its PE and window up again.
   */
  flushCaches(): void {
    this.flushTranslationCaches();
    this.lastDevice = undefined;
    this.lastPe = undefined;
    for (const pe of this.pes) pe.decodedWindow = undefined;
  }

  /**
   * An MMIO load from a 32-bit register of the function's BAR (a 4 KiB register file in this
   * model). While the PE's MMIO is stopped (state 1 reset, 2 frozen, 5 unavailable) a load
   * returns all ones, as LoPAR's EEH says a frozen PE's loads do.
   */
  mmioLoad(device: string, offset: number): number {
    const pe = this.pe(device);
    if (pe.state !== 0 && pe.state !== 4) return 0xffffffff;
    return this.bar(device).get(offset & 0xffc) ?? 0;
  }

  /** An MMIO store to the function's BAR; discarded while the PE's MMIO is stopped. Returns whether it landed. */
  mmioStore(device: string, offset: number, value: number): boolean {
    const pe = this.pe(device);
    if (pe.state !== 0 && pe.state !== 4) return false;
    this.bar(device).set(offset & 0xffc, value >>> 0);
    return true;
  }

  private bar(device: string): Map<number, number> {
    let b = this.bars.get(device);
    if (b === undefined) this.bars.set(device, (b = new Map<number, number>()));
    return b;
  }

  /** The EEH state of the device's PE (0 normal, 1 reset, 2 MMIO+DMA stopped, 4 DMA stopped). */
  peState(device: string): number {
    return this.pe(device).state;
  }

  /** The freezes recorded on the device's PE, oldest first. */
  freezes(device: string): readonly PaprFreezeRecord[] {
    return this.pe(device).freezes;
  }

  /** The PE config address of a device (what RTAS calls take). */
  configAddr(device: string): number {
    return this.pe(device).configAddr;
  }

  /** The device tree the partition firmware hands the OS. */
  deviceTree(): PhbNode {
    return {
      buid: this.buid,
      pes: this.pes.map((pe) => {
        const def = this.defaults.get(pe);
        const active = def !== undefined && pe.windows.includes(def);
        return {
          configAddr: pe.configAddr,
          devices: pe.config.devices,
          dmaWindow: active ? { liobn: def.liobn, busAddress: def.start, size: def.size, pageShift: def.pageShift } : undefined,
          ddwApplicable: pe.config.ddw,
          ddwExtensions: pe.config.ddw ? [2, pe.config.resetExtension ? 1 : 0, 1] : [],
        };
      }),
    };
  }
}

