/**
 * Wires the PAPR hypervisor model to the platform and the driver to core:
 * `createPaprSystem({ devices: ['0000:00:02.0'] })`.
 */

import type { BackendDefinition, SystemOptions } from '@ioasid/uapi';
import { createSystem, type System } from '@ioasid/core';
import { PaprHypervisor, type PaprPeOptions, type PaprProfile } from './hw/hypervisor.js';
import { PaprDriver } from './driver/papr-driver.js';
import type { DdwPolicy } from './driver/ddw-setup.js';

/** Backend options: PE grouping, the platform profile and the driver's 64-bit window policy. */
export interface PaprBackendOptions {
  /** PEs grouping functions (default: one PE per PF and per VF). */
  readonly pes?: readonly PaprPeOptions[];
  /** `'papr'` (2 GiB default window, LoPAR checks) or `'qemu'` (1 GiB default window, QEMU quirks). */
  readonly profile?: PaprProfile;
  /** How the driver creates the 64-bit dynamic window (default: Linux's choice, largest page). */
  readonly ddw?: DdwPolicy;
  /** TCE cache entries per DMA window (0 or a power of two; default 512). */
  readonly tceCacheEntries?: number;
}

/** Options of {@link createPaprSystem}. */
export interface PaprSystemOptions extends SystemOptions, PaprBackendOptions {}

/** The PAPR backend definition for core's `createSystem` (no CPU page-table format: no SVA). */
export function paprBackend(options: PaprBackendOptions = {}): BackendDefinition {
  return {
    name: 'papr-no-passthrough',
    create(host) {
      const hv = new PaprHypervisor({
        memory: host.memory,
        devices: host.endpoints.map((e) => e.name),
        ...(options.pes === undefined ? {} : { pes: options.pes }),
        ...(options.profile === undefined ? {} : { profile: options.profile }),
        ...(options.tceCacheEntries === undefined ? {} : { tceCacheEntries: options.tceCacheEntries }),
      });
      const driver = new PaprDriver({
        firmware: hv,
        tree: hv.deviceTree(),
        memory: host.memory,
        ...(options.ddw === undefined ? {} : { ddw: options.ddw }),
      });
      return {
        driver,
        hardware: hv,
        dmaInto: (endpoint, request, into) => hv.dmaInto(endpoint.name, request, into),
      };
    },
  };
}

/** A simulated pseries machine: PAPR TCE hypervisor, PEs, the uAPI. `system.hardware` is the {@link PaprHypervisor}. */
export function createPaprSystem(options: PaprSystemOptions): System {
  return createSystem(paprBackend(options), options);
}
