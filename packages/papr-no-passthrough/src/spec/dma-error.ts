/**
 * Why a PHB froze a PE on a DMA (LoPAR: "access to a TCE with code 00, or a write through a
 * read-only TCE, or a read through a write-only TCE is an error"; a bus address outside every
 * window isolates the PE). LoPAR leaves the numeric encoding to the platform's error log
 * (`ibm,slot-error-detail`); the codes below are this model's, one per LoPAR error case.
 */

/** The bus address is outside every DMA window of the PE. */
export const PAPR_DMA_ERR_NO_WINDOW = 1;
/** The TCE's page mapping and control field is 00 ("page fault"). */
export const PAPR_DMA_ERR_INVALID_TCE = 2;
/** A read (device reads memory) through a write-only TCE. */
export const PAPR_DMA_ERR_READ_PROTECTED = 3;
/** A write (device writes memory) through a read-only TCE. */
export const PAPR_DMA_ERR_WRITE_PROTECTED = 4;
/** The TCE table fetch or the translated real address is outside memory (external abort). */
export const PAPR_DMA_ERR_MEMORY = 5;

/** The name of each DMA error code. */
export const PAPR_DMA_ERROR_NAMES: Readonly<Record<number, string>> = {
  [PAPR_DMA_ERR_NO_WINDOW]: 'EEH freeze: DMA outside every DMA window',
  [PAPR_DMA_ERR_INVALID_TCE]: 'EEH freeze: TCE page fault (mapping code 00)',
  [PAPR_DMA_ERR_READ_PROTECTED]: 'EEH freeze: read through a write-only TCE',
  [PAPR_DMA_ERR_WRITE_PROTECTED]: 'EEH freeze: write through a read-only TCE',
  [PAPR_DMA_ERR_MEMORY]: 'EEH freeze: TCE fetch or real address outside memory',
};

/** The name of a frozen PE's refusal, by PE state. */
export const PAPR_FROZEN_NAMES: Readonly<Record<number, string>> = {
  1: 'EEH: PE in reset',
  2: 'EEH: PE frozen (MMIO and DMA stopped)',
  4: 'EEH: PE frozen (DMA stopped)',
  5: 'EEH: PE unavailable',
};
