/**
 * Wires the virtio-iommu device model to the platform and the driver to core:
 * `createVirtioIommuSystem({ devices: ['0000:00:01.0'] })`.
 */

import { createSystem, type System } from '@ioasid/core';
import type { BackendDefinition, SystemOptions } from '@ioasid/uapi';
import { VirtioIommuDevice } from './hw/device.js';
import { PROFILES, type VirtioIommuProfile, type VirtioIommuProfileName } from './hw/profile.js';
import { VIRTIO_IOMMU_F_X_IOASID } from './spec/extension.js';
import { featureBit } from './spec/features.js';
import { VirtioIommuDriver } from './driver/virtio-iommu-driver.js';
import { aarch64CpuPageTable } from './spec/arm-lpae.js';

/** Backend options. */
export interface VirtioIommuBackendOptions {
  /** Offered feature bits (default: the profile's; add `featureBit(VIRTIO_IOMMU_F_X_IOASID)` for the extension). */
  readonly features?: bigint;
  /** Device profile (default `strict`). */
  readonly profile?: VirtioIommuProfileName | VirtioIommuProfile;
}

/** Options of {@link createVirtioIommuSystem}. */
export interface VirtioIommuSystemOptions extends SystemOptions, VirtioIommuBackendOptions {}

/**
 * The virtio-iommu backend for core's `createSystem`. Processes use the AArch64 page-table
 * format (the extension's SVA walks it as an Arm LPAE stage-1 table). The endpoint ID of a PCI
 * function is its requester ID.
 */
export function virtioIommuBackend(options: VirtioIommuBackendOptions = {}): BackendDefinition {
  return {
    name: 'virtio-iommu',
    cpuPageTable: aarch64CpuPageTable,
    create(host) {
      const device = new VirtioIommuDevice({
        memory: host.memory,
        endpoints: host.endpoints.map((e) => e.rid),
        ...(options.features === undefined ? {} : { features: options.features }),
        ...(options.profile === undefined ? {} : { profile: options.profile }),
      });
      const driver = new VirtioIommuDriver({ transport: device, endpoints: host.endpoints, reportPageRequest: (r) => { host.reportPageRequest(r); } });
      return {
        driver,
        hardware: device,
        // The device's own non-allocating DMA; the endpoint's ID goes apart, so no request object is copied.
        dmaInto: (endpoint, request, into) => device.dmaInto(endpoint.rid, request, into),
      };
    },
  };
}

/** A machine with a virtio-iommu: `system.hardware` is the {@link VirtioIommuDevice}. */
export function createVirtioIommuSystem(options: VirtioIommuSystemOptions): System {
  return createSystem(virtioIommuBackend(options), options);
}

/** Extra configurations for reports: the extension, and each VMM profile. */
export const virtioIommuVariants: readonly { readonly id: string; readonly label: string; readonly options: Readonly<Record<string, unknown>> }[] = [
  {
    id: 'virtio-iommu+ext',
    label: 'virtio-iommu with the non-standard VIRTIO_IOMMU_F_X_IOASID extension (PASIDs, nesting, SVA, page requests)',
    options: { features: PROFILES.strict.features | featureBit(VIRTIO_IOMMU_F_X_IOASID) },
  },
  { id: 'virtio-iommu@qemu', label: 'virtio-iommu as QEMU models it', options: { profile: 'qemu' } },
  { id: 'virtio-iommu@cloud-hypervisor', label: 'virtio-iommu as cloud-hypervisor models it', options: { profile: 'cloud-hypervisor' } },
  { id: 'virtio-iommu@crosvm', label: 'virtio-iommu as crosvm models it', options: { profile: 'crosvm' } },
];
