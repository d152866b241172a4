/**
 * The backends under test, each with what a robustness test needs beyond the uAPI: how to
 * build a system, the guest side of its hardware nesting, how to recover a device after a DMA
 * fault (PAPR's EEH freeze), and the IOMMU page size each IOVA range needs.
 */

import { SMMU_CMDQ_BASE, SMMU_EVENTQ_BASE, SMMU_PRIQ_BASE, SmmuV3Hardware, createSmmuV3System, smmuV3NestingGuest } from '@ioasid/arm-smmuv3';
import type { System } from '@ioasid/core';
import {
  IQA_REG,
  QI_IWD_TYPE,
  VtdHardware,
  createVtdSystem,
  descriptorType,
  entryAddress,
  vtdNestingGuest,
} from '@ioasid/intel-vtd';
import {
  EEH_OPT_THAW_DMA,
  EEH_OPT_THAW_MMIO,
  RTAS_SET_EEH_OPTION,
  buidCells,
  createPaprSystem,
  type PaprHypervisor,
} from '@ioasid/papr-no-passthrough';
import type { DeviceSpec, IovaRange, NestingGuest } from '@ioasid/uapi';
import { PROFILES, VIRTIO_IOMMU_F_X_IOASID, createVirtioIommuSystem, featureBit, virtioNestingGuest } from '@ioasid/virtio-iommu';

/** A backend configuration under test. */
export interface BackendUnderTest {
  /** Id in reports: the backend name, plus `+variant` / `@profile` for configurations. */
  readonly id: string;
  /** A fresh system with these devices (and memory size). */
  create(devices: readonly (string | DeviceSpec)[], memorySize?: bigint): System;
  /** The guest-side stage-1 builder, when the backend has hardware nesting. */
  readonly guest: NestingGuest | undefined;
  /**
   * Brings a device back to normal after a DMA fault, when a fault isolates it (hw_info
   * `dmaFaultFreezes`): PAPR recovers the PE through EEH RTAS (thaw MMIO, then thaw DMA).
   * Returns whether the device's DMA is enabled again.
   */
  readonly recover: ((system: System, device: string) => boolean) | undefined;
  /** The IOMMU page size a mapping inside `range` must be made of (4 KiB but for PAPR's 64 KiB DDW). */
  unitFor(range: IovaRange): bigint;
  /**
   * Frames the driver uses as scratch (command/invalidation queue rings and their completion
   * words): their contents change with every command, even for a call that fails and leaves
   * every translation as it was.
   */
  readonly scratchFrames: ((system: System) => Set<number>) | undefined;
}

const K4 = 0x1000n;

/** PAPR EEH recovery of the PE of `device`: `ibm,set-eeh-option` thaw MMIO (2 → 4), thaw DMA (4 → 0). */
export function paprRecover(system: System, device: string): boolean {
  const hv = system.hardware as PaprHypervisor;
  const rid = device.split('/')[0]!; // a mediated device's DMA is its parent's
  if (hv.peState(rid) === 0) return true;
  const [hi, lo] = buidCells(hv.buid);
  const cfg = hv.configAddr(rid);
  hv.rtas(RTAS_SET_EEH_OPTION, [cfg, hi, lo, EEH_OPT_THAW_MMIO]);
  hv.rtas(RTAS_SET_EEH_OPTION, [cfg, hi, lo, EEH_OPT_THAW_DMA]);
  return hv.peState(rid) === 0;
}

/** VT-d: each unit's invalidation queue ring, and the status words its wait descriptors write. */
export function vtdScratchFrames(system: System): Set<number> {
  const out = new Set<number>();
  const units = (Array.isArray(system.hardware) ? system.hardware : [system.hardware]) as unknown[];
  for (const u of units) {
    if (!(u instanceof VtdHardware)) continue;
    const lo = u.mmio.read32(IQA_REG);
    const base = entryAddress(lo, u.mmio.read32(IQA_REG + 4));
    if (base === 0) continue;
    const bytes = 4096 * 2 ** (lo & 7);
    for (let a = base; a < base + bytes; a += 4096) out.add(a / 4096);
    const step = (lo & (1 << 11)) !== 0 ? 32 : 16;
    for (let a = base; a < base + bytes; a += step) {
      const d0 = system.memory.read32At(a);
      if (descriptorType(d0) === QI_IWD_TYPE && (d0 & 0x20) !== 0) {
        const addr = system.memory.read32At(a + 12) * 4294967296 + ((system.memory.read32At(a + 8) & 0xfffffffc) >>> 0);
        out.add(Math.floor(addr / 4096));
      }
    }
  }
  return out;
}

/** SMMUv3: the command, event and PRI queues, and the MSI words CMD_SYNCs write. */
export function smmuScratchFrames(system: System): Set<number> {
  const out = new Set<number>();
  const hw = system.hardware;
  if (!(hw instanceof SmmuV3Hardware)) return out;
  const mem = system.memory;
  for (const [reg, entryBytes] of [[SMMU_CMDQ_BASE, 16], [SMMU_EVENTQ_BASE, 32], [SMMU_PRIQ_BASE, 16]] as const) {
    const v = hw.mmio.read64(reg);
    const base = Number(v & 0xffffffffffe0n & ((1n << 52n) - 1n));
    if (base === 0) continue;
    const bytes = entryBytes * 2 ** Number(v & 0x1fn);
    for (let a = base; a < base + bytes; a += 4096) out.add(Math.floor(a / 4096));
    if (reg !== SMMU_CMDQ_BASE) continue;
    for (let a = base; a < base + bytes; a += 16) {
      if ((mem.read32At(a) & 0xff) !== 0x46) continue; // CMD_SYNC: its MSI write
      const addr = (mem.read32At(a + 12) & 0xfffff) * 4294967296 + ((mem.read32At(a + 8) & 0xfffffffc) >>> 0);
      if (addr !== 0) out.add(Math.floor(addr / 4096));
    }
  }
  return out;
}

const VIRTIO_EXT = PROFILES.strict.features | featureBit(VIRTIO_IOMMU_F_X_IOASID);

/** Intel VT-d (scalable mode). */
export const VTD: BackendUnderTest = {
  id: 'intel-vtd',
  create: (devices, memorySize) => createVtdSystem({ devices, ...(memorySize === undefined ? {} : { memorySize }) }),
  guest: vtdNestingGuest,
  recover: undefined,
  unitFor: () => K4,
  scratchFrames: vtdScratchFrames,
};

/** Arm SMMUv3. */
export const SMMUV3: BackendUnderTest = {
  id: 'arm-smmuv3',
  create: (devices, memorySize) => createSmmuV3System({ devices, ...(memorySize === undefined ? {} : { memorySize }) }),
  guest: smmuV3NestingGuest,
  recover: undefined,
  unitFor: () => K4,
  scratchFrames: smmuScratchFrames,
};

/** PAPR with Linux's 64-bit window policy (64 KiB pages above 4 GiB). */
export const PAPR: BackendUnderTest = {
  id: 'papr-no-passthrough',
  create: (devices, memorySize) => createPaprSystem({ devices, ...(memorySize === undefined ? {} : { memorySize }) }),
  guest: undefined,
  recover: paprRecover,
  unitFor: (r) => (r.start >= 1n << 32n ? 0x10000n : K4),
  scratchFrames: undefined,
};

/** PAPR with a 4 KiB-page 64-bit window (`ddw: { pageShift: 12 }`). */
export const PAPR_4K: BackendUnderTest = {
  id: 'papr-no-passthrough@ddw4k',
  create: (devices, memorySize) => createPaprSystem({ devices, ddw: { pageShift: 12 }, ...(memorySize === undefined ? {} : { memorySize }) }),
  guest: undefined,
  recover: paprRecover,
  unitFor: () => K4,
  scratchFrames: undefined,
};

/** virtio-iommu as the specification defines it (no PASIDs, no nesting). */
export const VIRTIO: BackendUnderTest = {
  id: 'virtio-iommu',
  create: (devices, memorySize) => createVirtioIommuSystem({ devices, ...(memorySize === undefined ? {} : { memorySize }) }),
  guest: undefined,
  recover: undefined,
  unitFor: () => K4,
  scratchFrames: undefined,
};

/** virtio-iommu with the non-standard extension (PASIDs, nesting, SVA, page requests). */
export const VIRTIO_PLUS_EXT: BackendUnderTest = {
  id: 'virtio-iommu+ext',
  create: (devices, memorySize) => createVirtioIommuSystem({ devices, features: VIRTIO_EXT, ...(memorySize === undefined ? {} : { memorySize }) }),
  guest: virtioNestingGuest,
  recover: undefined,
  unitFor: () => K4,
  scratchFrames: undefined,
};

/** virtio-iommu as a VMM's device model behaves (QEMU, cloud-hypervisor, crosvm quirks). */
export const VIRTIO_PROFILES: readonly BackendUnderTest[] = (['qemu', 'cloud-hypervisor', 'crosvm'] as const).map((profile) => ({
  id: `virtio-iommu@${profile}`,
  create: (devices, memorySize) => createVirtioIommuSystem({ devices, profile, ...(memorySize === undefined ? {} : { memorySize }) }),
  guest: undefined,
  recover: undefined,
  unitFor: () => K4,
  scratchFrames: undefined,
}));

/** Every backend configuration the uAPI-level tests run on. */
export const BACKENDS: readonly BackendUnderTest[] = [VTD, SMMUV3, PAPR, PAPR_4K, VIRTIO, VIRTIO_PLUS_EXT, ...VIRTIO_PROFILES];
