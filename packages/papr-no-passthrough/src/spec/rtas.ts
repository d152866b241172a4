/**
 * RTAS calls the PAPR IOMMU uses: dynamic DMA windows (LoPAR sec_rtas_dma_window.xml) and
 * the EEH calls (LoPAR ch_rtas.xml "ibm,set-eeh-option", "ibm,set-slot-reset",
 * "ibm,read-slot-reset-state2"), with their status codes, function codes and PE states.
 */

/** `ibm,query-pe-dma-window` (config_addr, BUID hi, BUID lo) → status, windows available, largest block, page-size mask, migration mask. */
export const RTAS_QUERY_PE_DMA_WINDOW = 'ibm,query-pe-dma-window';
/** `ibm,create-pe-dma-window` (config_addr, BUID hi, BUID lo, page shift, window shift) → status, LIOBN, start hi, start lo. */
export const RTAS_CREATE_PE_DMA_WINDOW = 'ibm,create-pe-dma-window';
/** `ibm,remove-pe-dma-window` (LIOBN) → status. */
export const RTAS_REMOVE_PE_DMA_WINDOW = 'ibm,remove-pe-dma-window';
/** `ibm,reset-pe-dma-windows` (config_addr, BUID hi, BUID lo) → status (LoPAR 2.7 extension). */
export const RTAS_RESET_PE_DMA_WINDOWS = 'ibm,reset-pe-dma-windows';
/** QEMU registers the reset call without the final "s"; the model answers to both names. */
export const RTAS_RESET_PE_DMA_WINDOW_QEMU = 'ibm,reset-pe-dma-window';
/** `ibm,set-eeh-option` (config_addr, BUID hi, BUID lo, function) → status. */
export const RTAS_SET_EEH_OPTION = 'ibm,set-eeh-option';
/** `ibm,set-slot-reset` (config_addr, BUID hi, BUID lo, function) → status. */
export const RTAS_SET_SLOT_RESET = 'ibm,set-slot-reset';
/** `ibm,read-slot-reset-state2` (config_addr, BUID hi, BUID lo) → status, PE state, EEH capability, PE unavailable info. */
export const RTAS_READ_SLOT_RESET_STATE2 = 'ibm,read-slot-reset-state2';
/** `ibm,configure-pe` (config_addr, BUID hi, BUID lo) → status: reconfigure the PE's bridges and devices after a reset. */
export const RTAS_CONFIGURE_PE = 'ibm,configure-pe';

/** RTAS status: success. */
export const RTAS_SUCCESS = 0;
/** RTAS status: hardware error. */
export const RTAS_HARDWARE_ERROR = -1;
/** RTAS status: busy, try again. */
export const RTAS_BUSY = -2;
/** RTAS status: parameter error. */
export const RTAS_PARAMETER_ERROR = -3;
/** RTAS status 9900–9905: extended delay of 10^(status−9900) ms (create). */
export const RTAS_EXTENDED_DELAY_MIN = 9900;

/**
 * `ibm,ddw-extensions` indices as Linux numbers them (0-based; LoPAR says "index 2/3"):
 * cell 0 is the count, cell 1 the reset token, cell 2 the 6-output query flag.
 */
export const DDW_EXT_SIZE = 0;
/** Index of the `ibm,reset-pe-dma-windows` token. */
export const DDW_EXT_RESET_DMA_WIN = 1;
/** Index of the "query may return 6 outputs" flag. */
export const DDW_EXT_QUERY_OUT_SIZE = 2;

/**
 * I/O page-size mask bits of `ibm,query-pe-dma-window` (LoPAR; 2 MiB is the late 0x100 bit
 * that QEMU and Linux use), bit → log2 of the page size.
 */
export const DDW_PGSIZE_4K = 0x01;
/** 64 KiB. */
export const DDW_PGSIZE_64K = 0x02;
/** 16 MiB. */
export const DDW_PGSIZE_16M = 0x04;
/** 32 MiB. */
export const DDW_PGSIZE_32M = 0x08;
/** 64 MiB. */
export const DDW_PGSIZE_64M = 0x10;
/** 128 MiB. */
export const DDW_PGSIZE_128M = 0x20;
/** 256 MiB. */
export const DDW_PGSIZE_256M = 0x40;
/** 16 GiB. */
export const DDW_PGSIZE_16G = 0x80;
/** 2 MiB. */
export const DDW_PGSIZE_2M = 0x100;

/** Each page-size mask bit and the page shift it stands for (Linux `shift_to_mask`'s table). */
export const DDW_PAGE_SHIFTS: readonly (readonly [mask: number, shift: number])[] = [
  [DDW_PGSIZE_4K, 12],
  [DDW_PGSIZE_64K, 16],
  [DDW_PGSIZE_2M, 21],
  [DDW_PGSIZE_16M, 24],
  [DDW_PGSIZE_32M, 25],
  [DDW_PGSIZE_64M, 26],
  [DDW_PGSIZE_128M, 27],
  [DDW_PGSIZE_256M, 28],
  [DDW_PGSIZE_16G, 34],
];

/** The page shifts a page-size mask allows, ascending. */
export function pageShiftsOfMask(mask: number): number[] {
  return DDW_PAGE_SHIFTS.filter(([m]) => (mask & m) !== 0)
    .map(([, s]) => s)
    .sort((a, b) => a - b);
}

/** The mask bit of a page shift (0 when the shift has none). */
export function maskOfPageShift(shift: number): number {
  return DDW_PAGE_SHIFTS.find(([, s]) => s === shift)?.[0] ?? 0;
}

/** `ibm,set-eeh-option` function: disable EEH. */
export const EEH_OPT_DISABLE = 0;
/** Enable EEH. */
export const EEH_OPT_ENABLE = 1;
/** Thaw MMIO: PE state 2 → 4. */
export const EEH_OPT_THAW_MMIO = 2;
/** Thaw DMA: PE state 4 → 0. */
export const EEH_OPT_THAW_DMA = 3;

/** `ibm,set-slot-reset` function: deactivate reset (→ state 0). */
export const EEH_RESET_DEACTIVATE = 0;
/** Activate (hot) reset (→ state 1). */
export const EEH_RESET_HOT = 1;
/** Activate fundamental reset (→ state 1). */
export const EEH_RESET_FUNDAMENTAL = 3;

/** PE state: not reset, not frozen — MMIO and DMA enabled. */
export const EEH_PE_STATE_NORMAL = 0;
/** PE state: reset asserted. */
export const EEH_PE_STATE_RESET = 1;
/** PE state: MMIO and DMA stopped (frozen). */
export const EEH_PE_STATE_STOPPED_IO_DMA = 2;
/** PE state: MMIO enabled, DMA stopped. */
export const EEH_PE_STATE_STOPPED_DMA = 4;
/** PE state: temporarily or permanently unavailable. */
export const EEH_PE_STATE_UNAVAIL = 5;

/** `ibm,read-slot-reset-state2` output 2: the PE supports EEH. */
export const EEH_CAPABILITY_SUPPORTED = 1;

/** A PE's configuration address: `(bus << 16) | (devfn << 8)`. */
export function configAddr(bus: number, devfn: number): number {
  return ((bus & 0xff) << 16) | ((devfn & 0xff) << 8);
}

/** Splits a BUID into its two 32-bit RTAS argument cells. */
export function buidCells(buid: bigint): readonly [hi: number, lo: number] {
  return [Number((buid >> 32n) & 0xffffffffn), Number(buid & 0xffffffffn)];
}

/** What an RTAS call returns: Status and the output cells after it, in LoPAR order. */
export interface RtasResult {
  /** Status (0 success, −1 hardware error, −3 parameter error …). */
  readonly status: number;
  /** The output cells after Status. */
  readonly outputs: readonly number[];
}
