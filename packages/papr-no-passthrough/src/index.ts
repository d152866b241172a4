/**
 * `@ioasid/papr-no-passthrough`: the sPAPR TCE hypervisor model (PEs, DMA windows, TCE
 * hypercalls, DDW and EEH RTAS calls) and the driver that programs it through hcalls and RTAS
 * only, as pseries Linux does. PAPR has no passthrough: a device cannot DMA until attached.
 *
 * @packageDocumentation
 */
export * from './spec/hcall.js';
export * from './spec/tce.js';
export * from './spec/rtas.js';
export * from './spec/dma-window.js';
export * from './spec/dma-error.js';
export type * from './spec/firmware.js';
export {
  PaprHypervisor,
  SPAPR_PCI_BASE_BUID,
  DEFAULT_TCE_CACHE_ENTRIES,
  type PaprProfile,
  type PaprPeOptions,
  type PaprHypervisorOptions,
  type PaprWindowInfo,
  type PaprDmaRequest,
} from './hw/hypervisor.js';
export type { PaprFreezeRecord } from './hw/pe.js';
export { PaprDriver, PAPR_UNSUPPORTED, type PaprDriverOptions } from './driver/papr-driver.js';
export type { DdwPolicy } from './driver/ddw-setup.js';
export { paprBackend, createPaprSystem, type PaprBackendOptions, type PaprSystemOptions } from './system.js';
