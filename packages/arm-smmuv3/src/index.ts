/**
 * `@ioasid/arm-smmuv3`: an Arm SMMUv3 hardware model, bit-exact to IHI0070, and the driver that
 * programs it through memory, registers and the command queue as Linux's arm-smmu-v3 does.
 *
 * @packageDocumentation
 */
export * from './spec/index.js';
export {
  SmmuV3Hardware,
  type SmmuV3Options,
  type SmmuDmaRequest,
  type SmmuPageRequest,
  type SmmuInterrupt,
  type SmmuMmio,
  type PriResponse,
  type StalledTransaction,
} from './hw/smmu-v3.js';
export { DEFAULT_IDR, QEMU_IDR, type SmmuIdRegisters } from './hw/defaults.js';
export { SmmuV3Driver, MSI_IOVA_BASE, MSI_IOVA_LENGTH, type SmmuV3DriverOptions } from './driver/smmu-driver.js';
export type { SmmuRegisterWindow, PciCapabilities } from './driver/interfaces.js';
export { smmuV3Backend, createSmmuV3System, type SmmuV3BackendOptions, type SmmuV3SystemOptions } from './system.js';
export { smmuV3NestingGuest, smmuV3NestingGuestWith, GUEST_IAS, GUEST_MAX_TLBI_OPS, type SmmuV3NestingGuestOptions } from './guest/nesting-guest.js';
