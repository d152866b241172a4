/**
 * `@ioasid/virtio-iommu`: the virtio-iommu device model (byte-exact requests, config space,
 * PROBE properties and fault records; strict, QEMU, cloud-hypervisor and crosvm profiles), the
 * driver that speaks only request bytes to it, and a clearly non-standard extension
 * (VIRTIO_IOMMU_F_X_IOASID: ATTACH_TABLE, INVALIDATE, PAGE_RESP, PASID contexts, nested domains).
 *
 * @packageDocumentation
 */
export * from './spec/bytes.js';
export * from './spec/features.js';
export * from './spec/config.js';
export * from './spec/status.js';
export * from './spec/requests.js';
export * from './spec/probe.js';
export * from './spec/fault.js';
export * from './spec/extension.js';
export * from './spec/arm-lpae.js';
export * from './spec/cd.js';
export { VirtioIommuDevice, type VirtioIommuDeviceOptions, type VirtioIommuDma } from './hw/device.js';
export { PROFILES, type VirtioIommuProfile, type VirtioIommuProfileName } from './hw/profile.js';
export { VirtioIommuDriver, type VirtioIommuDriverOptions } from './driver/virtio-iommu-driver.js';
export type { VirtioIommuTransport } from './driver/transport.js';
export { virtioNestingGuest } from './driver/nesting-guest.js';
export { virtioIommuBackend, createVirtioIommuSystem, virtioIommuVariants, type VirtioIommuBackendOptions, type VirtioIommuSystemOptions } from './system.js';
