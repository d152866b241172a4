/**
 * The backends the benchmarks run on, each with the hooks a benchmark needs beyond the uAPI:
 * how to empty the model's translation caches (for cold-cache walks) and how to build a nested
 * translation.
 */

import { createSmmuV3System, smmuV3NestingGuest } from '@ioasid/arm-smmuv3';
import { createVtdSystem, vtdNestingGuest } from '@ioasid/intel-vtd';
import { createPaprSystem } from '@ioasid/papr-no-passthrough';
import type { IoasidSystem, NestingGuest } from '@ioasid/uapi';
import { PROFILES, VIRTIO_IOMMU_F_X_IOASID, createVirtioIommuSystem, featureBit, virtioNestingGuest } from '@ioasid/virtio-iommu';

/** A backend under benchmark. */
export interface BenchBackend {
  /** Package name without scope. */
  readonly name: string;
  /** A fresh system with these devices. */
  create(devices: string[]): IoasidSystem;
  /** Empties every translation cache of the system's hardware model (undefined: it has none). */
  readonly flush: ((system: IoasidSystem) => void) | undefined;
  /** The guest stage-1 builder (nested translation), if any. */
  readonly guest: NestingGuest | undefined;
}

interface Flushable {
  flushCaches(): void;
}

const hasFlush = (hw: unknown): hw is Flushable =>
  typeof hw === 'object' && hw !== null && typeof (hw as Partial<Flushable>).flushCaches === 'function';

/** Every model that has caches exposes `flushCaches()` on its hardware object. */
const flush = (system: IoasidSystem): void => {
  const hw = (system as IoasidSystem & { hardware?: unknown }).hardware;
  if (hasFlush(hw)) hw.flushCaches();
  else if (Array.isArray(hw)) for (const h of hw) if (hasFlush(h)) h.flushCaches();
};

/** The four backends. */
export const BACKENDS: readonly BenchBackend[] = [
  { name: 'intel-vtd', create: (devices) => createVtdSystem({ devices }), flush, guest: vtdNestingGuest },
  { name: 'arm-smmuv3', create: (devices) => createSmmuV3System({ devices }), flush, guest: smmuV3NestingGuest },
  { name: 'papr-no-passthrough', // 4 KiB pages in the 64-bit window too, so that 10^6 4 KiB mappings fit (Linux would pick 64 KiB)
    create: (devices) => createPaprSystem({ devices, ddw: { pageShift: 12 } }), flush: undefined, guest: undefined },
  {
    name: 'virtio-iommu',
    // with the extension offered, so that the nested (ATTACH_TABLE) translation can be measured
    create: (devices) => createVirtioIommuSystem({ devices, features: PROFILES.strict.features | featureBit(VIRTIO_IOMMU_F_X_IOASID) }),
    flush,
    guest: virtioNestingGuest,
  },
];
