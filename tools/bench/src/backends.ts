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
  /**
   * The call that empties every cache of the system's hardware model (undefined: it has none),
   * resolved once per system so that timing loops call it directly.
   */
  readonly flush: ((system: IoasidSystem) => () => void) | undefined;
  /**
   * Empties only the translation caches (IOTLB, paging-structure caches; configuration caches
   * such as context, PASID, STE and CD caches stay warm), where the model can: the miss the
   * reference walker's 4-level walk is compared with. Undefined: the bench uses {@link flush}.
   */
  readonly flushTranslations: ((system: IoasidSystem) => () => void) | undefined;
  /** The guest stage-1 builder (nested translation), if any. */
  readonly guest: NestingGuest | undefined;
}

type FlushName = 'flushCaches' | 'flushTranslationCaches';

const has = (hw: unknown, method: FlushName): hw is Record<FlushName, () => void> =>
  typeof hw === 'object' && hw !== null && typeof (hw as Partial<Record<FlushName, unknown>>)[method] === 'function';

/** The system's hardware model objects (one, or one per IOMMU unit). */
const models = (system: IoasidSystem): unknown[] => {
  const hw = (system as IoasidSystem & { hardware?: unknown }).hardware;
  return Array.isArray(hw) ? (hw as unknown[]) : [hw];
};

/**
 * The flush call of a system, resolved once (the bench subtracts the cost of a flush from a
 * flush + DMA pair, so the flush itself must be cheap and steady: no lookup or array per call).
 * `prefer` is called where a model has it, else `flushCaches`.
 */
function flusher(prefer: FlushName): (system: IoasidSystem) => () => void {
  return (system) => {
    const calls = models(system).flatMap((h) => (has(h, prefer) ? [h[prefer].bind(h)] : has(h, 'flushCaches') ? [h.flushCaches.bind(h)] : []));
    const one = calls[0];
    return calls.length === 1 && one !== undefined
      ? one
      : () => {
          for (const c of calls) c();
        };
  };
}

/** Every model that has caches exposes `flushCaches()` on its hardware object (or objects). */
const flush = flusher('flushCaches');

/**
 * `flushTranslationCaches()` where the model has it (only the translation caches), else
 * `flushCaches()` (everything).
 */
const flushTranslations = flusher('flushTranslationCaches');

/** The four backends, by name, each loaded on demand. */
export const BACKEND_LOADERS: Readonly<Record<string, () => Promise<BenchBackend>>> = {
  'intel-vtd': async () => {
    const m = await import('@ioasid/intel-vtd');
    return { name: 'intel-vtd', create: (devices) => m.createVtdSystem({ devices }), flush, flushTranslations, guest: m.vtdNestingGuest };
  },
  'arm-smmuv3': async () => {
    const m = await import('@ioasid/arm-smmuv3');
    return { name: 'arm-smmuv3', create: (devices) => m.createSmmuV3System({ devices }), flush, flushTranslations, guest: m.smmuV3NestingGuest };
  },
  'papr-no-passthrough': async () => {
    const m = await import('@ioasid/papr-no-passthrough');
    // 4 KiB pages in the 64-bit window too, so that 10^6 4 KiB mappings fit (Linux would pick 64 KiB)
    return { name: 'papr-no-passthrough', create: (devices) => m.createPaprSystem({ devices, ddw: { pageShift: 12 } }), flush, flushTranslations, guest: undefined };
  },
  'virtio-iommu': async () => {
    const m = await import('@ioasid/virtio-iommu');
    // with the extension offered, so that the nested (ATTACH_TABLE) translation can be measured
    const features = m.PROFILES.strict.features | m.featureBit(m.VIRTIO_IOMMU_F_X_IOASID);
    return { name: 'virtio-iommu', create: (devices) => m.createVirtioIommuSystem({ devices, features }), flush, flushTranslations, guest: m.virtioNestingGuest };
  },
};
