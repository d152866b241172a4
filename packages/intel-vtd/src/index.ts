/**
 * `@ioasid/intel-vtd`: an Intel VT-d (scalable mode) IOMMU — the hardware model, bit-exact to
 * the specification, and the driver that programs it like Linux's intel-iommu.
 *
 * @packageDocumentation
 */
export * from './spec/fields.js';
export * from './spec/registers.js';
export * from './spec/defaults.js';
export * from './spec/root-entry.js';
export * from './spec/context-entry.js';
export * from './spec/pasid-entry.js';
export * from './spec/first-stage.js';
export * from './spec/second-stage.js';
export * from './spec/invalidation.js';
export * from './spec/faults.js';
export * from './spec/page-request.js';
export * from './spec/x86-64.js';
export {
  VtdHardware,
  type VtdHardwareOptions,
  type VtdDmaRequest,
  type VtdMmio,
  type VtdProfile,
  type VtdInterrupt,
  type VtdStats,
} from './hw/vtd-hardware.js';
export type { PageRequestRecord } from './hw/page-request-queue.js';
export { createVtdSystem, vtdBackend, type VtdSystemOptions } from './system.js';
export { VtdDriver, MSI_WINDOW } from './driver/vtd-driver.js';
export type { LoggedFault } from './driver/intel-iommu.js';
export { vtdNestingGuest } from './guest.js';
