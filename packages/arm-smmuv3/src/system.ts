/**
 * Wires the SMMUv3 model to the platform and the driver to core:
 * `createSmmuV3System({ devices: ['0000:00:02.0'] })`. The driver reaches the model through
 * its MMIO window and memory; the model's interrupt lines call the driver's handler; endpoints
 * issue DMA with their requester ID as StreamID, through ATS when the driver enabled it, and
 * send a PRI Page Request when an ATS translation fails and PRI is enabled.
 */

import type { BackendDefinition, DmaFault, DmaRequest, EndpointDescriptor, SystemOptions } from '@ioasid/uapi';
import { createSystem, type System } from '@ioasid/core';
import { SmmuV3Hardware } from './hw/smmu-v3.js';
import type { SmmuIdRegisters } from './hw/defaults.js';
import { SmmuV3Driver } from './driver/smmu-driver.js';
import { aarch64CpuPageTable } from './spec/cpu-page-table.js';

/** Backend options: identification registers and the profile. */
export interface SmmuV3BackendOptions {
  /** Identification registers overriding the profile's. */
  readonly idr?: Partial<SmmuIdRegisters>;
  /** `'default'` (the full model) or `'qemu'` (QEMU's emulated SMMUv3 limits). */
  readonly profile?: 'default' | 'qemu';
}

/** Options of {@link createSmmuV3System}. */
export interface SmmuV3SystemOptions extends SystemOptions, SmmuV3BackendOptions {}

/** The SMMUv3 backend definition for core's `createSystem` (AArch64 processes for SVA). */
export function smmuV3Backend(options: SmmuV3BackendOptions = {}): BackendDefinition {
  return {
    name: 'arm-smmuv3',
    cpuPageTable: aarch64CpuPageTable,
    create(host) {
      const hw = new SmmuV3Hardware({
        memory: host.memory,
        ...(options.idr === undefined ? {} : { idr: options.idr }),
        ...(options.profile === undefined ? {} : { profile: options.profile }),
      });
      // The endpoints' PCI capability enables (ATS Enable, PRI Enable) and PRG indexes.
      const ats = new Set<number>();
      const pri = new Set<number>();
      const prgi = new Map<number, number>();
      const driver = new SmmuV3Driver({
        memory: host.memory,
        regs: hw.mmio,
        endpoints: host.endpoints,
        reportPageRequest: (r) => {
          host.reportPageRequest(r);
        },
        pci: {
          setAts: (rid, on) => {
            if (on) ats.add(rid);
            else ats.delete(rid);
          },
          setPri: (rid, on) => {
            if (on) pri.add(rid);
            else pri.delete(rid);
          },
        },
      });
      hw.onInterrupt = (line) => {
        driver.handleIrq(line);
      };
      // ATS off (no endpoint has it enabled): straight to the model, nothing else on the path.
      const dmaInto = (ep: EndpointDescriptor, req: DmaRequest, into: Uint8Array): DmaFault | undefined => {
        if (ats.size === 0) return hw.endpointDmaInto(ep.rid, req, false, into);
        return atsDmaInto(ep, req, into);
      };
      const atsDmaInto = (ep: EndpointDescriptor, req: DmaRequest, into: Uint8Array): DmaFault | undefined => {
        const useAts = ats.has(ep.rid);
        const fault = hw.endpointDmaInto(ep.rid, req, useAts, into);
        if (fault === undefined || !useAts || !pri.has(ep.rid) || (fault.class !== 'translation' && fault.class !== 'permission')) return fault;
        // The ATS Translation Completion failed: the endpoint asks for the page (PCIe PRI).
        const index = ((prgi.get(ep.rid) ?? 0) % 511) + 1;
        prgi.set(ep.rid, index);
        hw.pageRequest({
          streamId: ep.rid,
          ...(req.pasid === undefined ? {} : { substreamId: req.pasid }),
          iova: fault.iova & ~0xfffn,
          read: !req.write,
          write: req.write,
          exec: req.exec === true,
          priv: req.priv === true,
          last: true,
          prgi: index,
        });
        return { class: 'page-request', name: 'PRI_PAGE_REQUEST', code: fault.code, iova: fault.iova, record: { ...fault.record, prgi: index } };
      };
      return { driver, hardware: hw, dmaInto };
    },
  };
}

/** A simulated Arm machine with an SMMUv3. `system.hardware` is the {@link SmmuV3Hardware}. */
export function createSmmuV3System(options: SmmuV3SystemOptions): System {
  return createSystem(smmuV3Backend(options), options);
}
