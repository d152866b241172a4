/**
 * The backends the benchmarks run on, each with the hooks a benchmark needs beyond the uAPI:
 * how to empty the model's translation caches (for cold-cache walks) and how to build a nested
 * translation. Each backend package is imported when it is benchmarked, so one backend can be
 * measured alone (`npm run bench -- intel-vtd`).
 */

import type { IoasidSystem, NestingGuest } from '@ioasid/uapi';

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

/** Every model that has caches exposes `flushCaches()` on its hardware object (or objects). */
const flush = (system: IoasidSystem): void => {
  const hw = (system as IoasidSystem & { hardware?: unknown }).hardware;
  if (hasFlush(hw)) hw.flushCaches();
  else if (Array.isArray(hw)) for (const h of hw as unknown[]) if (hasFlush(h)) h.flushCaches();
};

/** The four backends, by name, each loaded on demand. */
export const BACKEND_LOADERS: Readonly<Record<string, () => Promise<BenchBackend>>> = {
  'intel-vtd': async () => {
    const m = await import('@ioasid/intel-vtd');
    return { name: 'intel-vtd', create: (devices) => m.createVtdSystem({ devices }), flush, guest: m.vtdNestingGuest };
  },
  'arm-smmuv3': async () => {
    const m = await import('@ioasid/arm-smmuv3');
    return { name: 'arm-smmuv3', create: (devices) => m.createSmmuV3System({ devices }), flush, guest: m.smmuV3NestingGuest };
  },
  'papr-no-passthrough': async () => {
    const m = await import('@ioasid/papr-no-passthrough');
    // 4 KiB pages in the 64-bit window too, so that 10^6 4 KiB mappings fit (Linux would pick 64 KiB)
    return { name: 'papr-no-passthrough', create: (devices) => m.createPaprSystem({ devices, ddw: { pageShift: 12 } }), flush, guest: undefined };
  },
  'virtio-iommu': async () => {
    const m = await import('@ioasid/virtio-iommu');
    // with the extension offered, so that the nested (ATTACH_TABLE) translation can be measured
    const features = m.PROFILES.strict.features | m.featureBit(m.VIRTIO_IOMMU_F_X_IOASID);
    return { name: 'virtio-iommu', create: (devices) => m.createVirtioIommuSystem({ devices, features }), flush, guest: m.virtioNestingGuest };
  },
};
