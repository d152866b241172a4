/**
 * Wires VT-d hardware units to the platform and the driver to core: `vtdBackend()` for
 * core's createSystem, and `createVtdSystem()`.
 */

import { createSystem, type System } from '@ioasid/core';
import type { BackendDefinition, EndpointDescriptor, SystemOptions } from '@ioasid/uapi';
import { VtdHardware, type VtdProfile } from './hw/vtd-hardware.js';
import { VtdDriver } from './driver/vtd-driver.js';
import { X86_64_PAGE_TABLE } from './spec/x86-64.js';

/** Options of a VT-d system. */
export interface VtdSystemOptions extends SystemOptions {
  /** Number of remapping units (default 1). PFs are spread round-robin in the order given; VFs follow their PF. */
  readonly units?: number;
  /** CAP_REG of every unit. */
  readonly cap?: bigint;
  /** ECAP_REG of every unit. */
  readonly ecap?: bigint;
  /** Fault-code profile. */
  readonly profile?: VtdProfile;
}

/** The VT-d backend definition: `units` VtdHardware models on the platform memory and a VtdDriver. */
export function vtdBackend(options: Omit<VtdSystemOptions, 'devices'> = {}): BackendDefinition {
  return {
    name: 'intel-vtd',
    cpuPageTable: X86_64_PAGE_TABLE,
    create(host) {
      const n = Math.max(1, Math.floor(options.units ?? 1));
      const ref: { driver?: VtdDriver } = {};
      const units = Array.from({ length: n }, (_, i) => {
        const hw = new VtdHardware({
          memory: host.memory,
          ...(options.cap === undefined ? {} : { cap: options.cap }),
          ...(options.ecap === undefined ? {} : { ecap: options.ecap }),
          ...(options.profile === undefined ? {} : { profile: options.profile }),
        });
        // The interrupt line: the unit's fault / page-request events reach the driver's handlers.
        hw.onInterrupt = (source) => {
          ref.driver?.interrupt(i, source);
        };
        return hw;
      });
      const unit0 = units[0]!;
      const assign = new Map<string, number>();
      let next = 0;
      for (const e of host.endpoints) {
        const parentUnit = e.parent === undefined ? undefined : assign.get(e.parent);
        assign.set(e.name, e.kind === 'vf' && parentUnit !== undefined ? parentUnit : next++ % n);
      }
      const unitIndex = (e: EndpointDescriptor) => assign.get(e.name) ?? 0;
      const driver = new VtdDriver(host, units.map((u) => u.mmio), unitIndex);
      ref.driver = driver;
      return {
        driver,
        hardware: units,
        // The endpoint puts its RID on the bus: the request is passed on as it is (copying it
        // with an object spread would cost more than the whole translation), and the unit reads
        // straight into the caller's buffer.
        dmaInto: n === 1 ? (endpoint, request, into) => unit0.dmaInto(endpoint.rid, request, into) : (endpoint, request, into) => units[unitIndex(endpoint)]!.dmaInto(endpoint.rid, request, into),
      };
    },
  };
}

/** Creates a simulated machine with VT-d units: `createVtdSystem({ devices: ['0000:00:02.0'] })`. */
export function createVtdSystem(options: VtdSystemOptions): System {
  return createSystem(vtdBackend(options), options);
}
