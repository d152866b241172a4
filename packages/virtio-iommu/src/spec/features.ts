/**
 * Feature bits of the virtio-iommu device (virtio spec, device-types/iommu/description.tex,
 * "Feature bits") and the one transport bit a virtio 1.x device always offers.
 */

/** `input_range` is valid: the IOVA window the device translates. */
export const VIRTIO_IOMMU_F_INPUT_RANGE = 0;
/** `domain_range` is valid: the domain IDs the device accepts. */
export const VIRTIO_IOMMU_F_DOMAIN_RANGE = 1;
/** MAP and UNMAP requests are available. */
export const VIRTIO_IOMMU_F_MAP_UNMAP = 2;
/** Legacy: endpoints not attached to a domain are in bypass mode (superseded by BYPASS_CONFIG). */
export const VIRTIO_IOMMU_F_BYPASS = 3;
/** The PROBE request is available and `probe_size` is valid. */
export const VIRTIO_IOMMU_F_PROBE = 4;
/** The `VIRTIO_IOMMU_MAP_F_MMIO` flag is available. */
export const VIRTIO_IOMMU_F_MMIO = 5;
/** The config `bypass` byte and `VIRTIO_IOMMU_ATTACH_F_BYPASS` are available. */
export const VIRTIO_IOMMU_F_BYPASS_CONFIG = 6;
/** Transport feature: the device conforms to virtio 1.x (virtio spec "Reserved Feature Bits"). */
export const VIRTIO_F_VERSION_1 = 32;

/** The mask of one feature bit. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

/** True when `mask` has feature `bit`. */
export function hasFeature(mask: bigint, bit: number): boolean {
  return (mask & featureBit(bit)) !== 0n;
}

/** Spec names of the feature bits this package knows, by bit number. */
export const FEATURE_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_IOMMU_F_INPUT_RANGE]: 'VIRTIO_IOMMU_F_INPUT_RANGE',
  [VIRTIO_IOMMU_F_DOMAIN_RANGE]: 'VIRTIO_IOMMU_F_DOMAIN_RANGE',
  [VIRTIO_IOMMU_F_MAP_UNMAP]: 'VIRTIO_IOMMU_F_MAP_UNMAP',
  [VIRTIO_IOMMU_F_BYPASS]: 'VIRTIO_IOMMU_F_BYPASS',
  [VIRTIO_IOMMU_F_PROBE]: 'VIRTIO_IOMMU_F_PROBE',
  [VIRTIO_IOMMU_F_MMIO]: 'VIRTIO_IOMMU_F_MMIO',
  [VIRTIO_IOMMU_F_BYPASS_CONFIG]: 'VIRTIO_IOMMU_F_BYPASS_CONFIG',
  [VIRTIO_F_VERSION_1]: 'VIRTIO_F_VERSION_1',
};

/** The names of the bits set in `mask` (unknown bits as `bit N`). */
export function featureNames(mask: bigint, extra: Readonly<Record<number, string>> = {}): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (hasFeature(mask, bit)) out.push(extra[bit] ?? FEATURE_NAMES[bit] ?? `bit ${bit}`);
  }
  return out;
}
