/**
 * A partitionable endpoint (PE): the isolation unit (LoPAR: "each PE must have its own
 * independent TCE table"). It owns up to two DMA windows and an EEH state.
 */

import type { TceTable } from './tce-table.js';

/** A freeze the PHB recorded on a PE: its cause and the DMA that caused it. */
export interface PaprFreezeRecord {
  /** The model's DMA error code (PAPR_DMA_ERR_*). */
  readonly code: number;
  /** Its name. */
  readonly name: string;
  /** The function that issued the DMA. */
  readonly device: string;
  /** The bus address at fault. */
  readonly iova: bigint;
  /** A write (device → memory) or a read. */
  readonly write: boolean;
  /** The window's LIOBN, when the address fell in one. */
  readonly liobn: number | undefined;
  /** The TCE index, when the address fell in a window. */
  readonly tceIndex: number | undefined;
  /** The TCE read, when one was. */
  readonly tce: bigint | undefined;
}

/** How a PE is configured. */
export interface PeConfig {
  /** Functions in the PE (`DDDD:BB:DD.F`). */
  readonly devices: readonly string[];
  /** DDW page-size mask (query output). */
  readonly pageSizeMask: number;
  /** The PE supports dynamic DMA windows (`ibm,ddw-applicable`). */
  readonly ddw: boolean;
  /** The reset extension (`ibm,reset-pe-dma-windows`) is available. */
  readonly resetExtension: boolean;
  /** The largest block of TCEs a created window may have. */
  readonly largestBlock: number;
  /** The default window's size. */
  readonly defaultWindowSize: bigint;
}

/** A PE's state in the hypervisor. */
export class PartitionableEndpoint {
  /** Index of the PE under the PHB (part of its LIOBNs). */
  readonly index: number;
  /** `(bus << 16) | (devfn << 8)` of the PE's first function. */
  readonly configAddr: number;
  /** Config addresses of every function in the PE (any of them names the PE in RTAS calls). */
  readonly configAddrs: ReadonlySet<number>;
  /** Configuration. */
  readonly config: PeConfig;
  /** The window slots, changed only by {@link setWindow} (which drops {@link decodedWindow}). */
  private readonly slots: (TceTable | undefined)[] = [undefined, undefined];
  /** Window slots: each is a window or empty; slot n has window number n in its LIOBN. */
  readonly windows: readonly (TceTable | undefined)[] = this.slots;
  /**
   * The PHB's decode of the last DMA's bus address to a window, kept so that a stream of DMAs
   * into one IOMMU page skips the window search: the window, the high word of the page's bus
   * address, the low word of its start, and its TCE index. It is only a memo of what the search
   * over {@link windows} answers (a window's start, size and page size never change), dropped by
   * every change of the windows and by `flushCaches`; unused for pages of 2^31 bytes or more.
   */
  decodedWindow: TceTable | undefined = undefined;
  /** High word of the bus address of the page {@link decodedWindow} was decoded for. */
  decodedHi = 0;
  /** Low word of the start of that page. */
  decodedLo = 0;
  /** That page's TCE index in {@link decodedWindow}. */
  decodedIndex = 0;
  /** EEH enabled by the OS (`ibm,set-eeh-option` 1/0); LPAR platforms enable it by default. */
  eehEnabled = true;
  /** EEH PE state (0 normal, 1 reset, 2 MMIO+DMA stopped, 4 DMA stopped, 5 unavailable). */
  state = 0;
  /** Freezes recorded, oldest first. */
  readonly freezes: PaprFreezeRecord[] = [];

  /** @param index - PE index @param configAddr - PE config address @param addrs - every function's config address @param config - configuration */
  constructor(index: number, configAddr: number, addrs: ReadonlySet<number>, config: PeConfig) {
    this.index = index;
    this.configAddr = configAddr;
    this.configAddrs = addrs;
    this.config = config;
  }

  /** Puts a window into slot `slot` (or empties it) and drops the decode of the last DMA's window. */
  setWindow(slot: number, table: TceTable | undefined): void {
    this.slots[slot] = table;
    this.decodedWindow = undefined;
  }

  /** The active windows, ascending by start address. */
  activeWindows(): TceTable[] {
    return this.windows.filter((w): w is TceTable => w !== undefined).sort((a, b) => (a.start < b.start ? -1 : 1));
  }
}
