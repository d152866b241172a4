/**
 * Device profiles: `strict` follows the virtio spec's MUST/SHOULD statements (and the
 * reasoned choices where the spec names no status); one profile per VMM reproduces how that
 * VMM's device model deviates (reference digest §5: QEMU hw/virtio/virtio-iommu.c,
 * cloud-hypervisor virtio-devices/src/iommu.rs after PR #8105, crosvm devices/src/virtio/iommu.rs).
 */

import { U64_MAX } from '@ioasid/uapi';
import {
  VIRTIO_F_VERSION_1, VIRTIO_IOMMU_F_BYPASS_CONFIG, VIRTIO_IOMMU_F_DOMAIN_RANGE, VIRTIO_IOMMU_F_INPUT_RANGE,
  VIRTIO_IOMMU_F_MAP_UNMAP, VIRTIO_IOMMU_F_MMIO, VIRTIO_IOMMU_F_PROBE, featureBit,
} from '../spec/features.js';
import { X86_MSI_WINDOW, type ResvMem } from '../spec/probe.js';

/** The profile names. */
export type VirtioIommuProfileName = 'strict' | 'qemu' | 'cloud-hypervisor' | 'crosvm';

/** How a device model behaves. */
export interface VirtioIommuProfile {
  /** Profile name. */
  readonly name: VirtioIommuProfileName;
  /** Feature bits offered by default. */
  readonly features: bigint;
  /** `page_size_mask`. */
  readonly pageSizeMask: bigint;
  /** `input_range`. */
  readonly inputStart: bigint;
  /** `input_range.end`. */
  readonly inputEnd: bigint;
  /** `domain_range`. */
  readonly domainStart: number;
  /** `domain_range.end`. */
  readonly domainEnd: number;
  /** `probe_size`. */
  readonly probeSize: number;
  /** Boot value of `bypass`. */
  readonly bypass: number;
  /** RESV_MEM properties of every endpoint. */
  readonly resvMem: readonly ResvMem[];
  /** Unknown request type: leave the buffer unwritten (spec) or write UNSUPP (QEMU). */
  readonly unknownType: 'unwritten' | 'unsupp';
  /** Request shorter than its type: unwritten (spec), INVAL (CH), or QEMU's DEVERR-for-head/INVAL-for-payload. */
  readonly shortRequest: 'unwritten' | 'inval' | 'qemu';
  /** A readable part longer than the type's struct is INVAL (CH checks exact sizes). */
  readonly exactSize: boolean;
  /** ATTACH checks `reserved` (QEMU does not). */
  readonly attachChecksReserved: boolean;
  /** ATTACH/DETACH check the endpoint exists (CH does not). */
  readonly checksEndpoint: boolean;
  /** QEMU: on ATTACH, detach from the old domain first, then check bypass consistency. */
  readonly detachBeforeBypassCheck: boolean;
  /** crosvm: an endpoint cannot leave a domain other endpoints share (UNSUPP). */
  readonly cannotLeaveSharedDomain: boolean;
  /** MAP checks alignment to the granule (QEMU does not). */
  readonly mapChecksAlignment: boolean;
  /** crosvm checks alignment before flags. */
  readonly alignmentBeforeFlags: boolean;
  /** MAP/UNMAP check input_range. */
  readonly checksInputRange: boolean;
  /** UNMAP checks input_range (CH). */
  readonly unmapChecksInputRange: boolean;
  /** MAP rejects overlap with RESV_MEM regions. */
  readonly mapChecksResvMem: boolean;
  /** MAP rejects virt_end < virt_start. */
  readonly mapChecksOrder: boolean;
  /** UNMAP removes covered mappings before finding the one it would split (QEMU). */
  readonly unmapPartial: boolean;
  /** ATTACH with a domain outside domain_range is RANGE. */
  readonly checksDomainRange: boolean;
  /** Fault events: every field (strict), QEMU's (READ/WRITE only on permission faults), or none. */
  readonly faultEvents: 'full' | 'qemu' | 'none';
  /** Most domains (NOMEM beyond). */
  readonly maxDomains: number;
  /** Most mappings per domain (NOMEM beyond). */
  readonly maxMappings: number;
}

const f = featureBit;
const STANDARD = f(VIRTIO_F_VERSION_1) | f(VIRTIO_IOMMU_F_MAP_UNMAP);

const STRICT: VirtioIommuProfile = {
  name: 'strict',
  features: STANDARD | f(VIRTIO_IOMMU_F_PROBE) | f(VIRTIO_IOMMU_F_INPUT_RANGE) | f(VIRTIO_IOMMU_F_DOMAIN_RANGE) | f(VIRTIO_IOMMU_F_BYPASS_CONFIG),
  pageSizeMask: (1n << 12n) | (1n << 21n) | (1n << 30n),
  inputStart: 0n,
  inputEnd: U64_MAX,
  domainStart: 0,
  domainEnd: 0xffff,
  probeSize: 512,
  bypass: 0,
  resvMem: [X86_MSI_WINDOW],
  unknownType: 'unwritten',
  shortRequest: 'unwritten',
  exactSize: false,
  attachChecksReserved: true,
  checksEndpoint: true,
  detachBeforeBypassCheck: false,
  cannotLeaveSharedDomain: false,
  mapChecksAlignment: true,
  alignmentBeforeFlags: false,
  checksInputRange: true,
  unmapChecksInputRange: true,
  mapChecksResvMem: true,
  mapChecksOrder: true,
  unmapPartial: false,
  checksDomainRange: true,
  faultEvents: 'full',
  maxDomains: 0x10000,
  maxMappings: 1 << 20,
};

/** The built-in profiles. */
export const PROFILES: Readonly<Record<VirtioIommuProfileName, VirtioIommuProfile>> = {
  strict: STRICT,
  // QEMU: granule = host page (4 KiB host: 0xfffffffffffff000), aw-bits 64 device default,
  // domain_range 0..~0, probe_size 512, boot-bypass on; no alignment/input-range/RESV_MEM/order
  // checks on MAP, no reserved check on ATTACH, UNSUPP for unknown types, partial UNMAP.
  qemu: {
    ...STRICT,
    name: 'qemu',
    features: STANDARD | f(VIRTIO_IOMMU_F_PROBE) | f(VIRTIO_IOMMU_F_INPUT_RANGE) | f(VIRTIO_IOMMU_F_DOMAIN_RANGE) |
      f(VIRTIO_IOMMU_F_MMIO) | f(VIRTIO_IOMMU_F_BYPASS_CONFIG),
    pageSizeMask: 0xfffffffffffff000n,
    domainEnd: 0xffffffff,
    bypass: 1,
    unknownType: 'unsupp',
    shortRequest: 'qemu',
    attachChecksReserved: false,
    detachBeforeBypassCheck: true,
    mapChecksAlignment: false,
    checksInputRange: false,
    unmapChecksInputRange: false,
    mapChecksResvMem: false,
    mapChecksOrder: false,
    unmapPartial: true,
    checksDomainRange: false,
    faultEvents: 'qemu',
    maxDomains: 2 ** 32,
    maxMappings: 2 ** 32,
  },
  // cloud-hypervisor (after PR #8105): 4 KiB | 2 MiB, probe_size 24 (one RESV_MEM), no
  // DOMAIN_RANGE / INPUT_RANGE (64-bit address width) / MMIO; exact request sizes (INVAL);
  // never NOENT for an endpoint; 65536 domains and 2^20 mappings (NOMEM beyond). bypass boots
  // at 1 (BYPASS_CONFIG was added for firmware without a driver, issues #3941/#3987).
  'cloud-hypervisor': {
    ...STRICT,
    name: 'cloud-hypervisor',
    features: STANDARD | f(VIRTIO_IOMMU_F_PROBE) | f(VIRTIO_IOMMU_F_BYPASS_CONFIG),
    pageSizeMask: 0x201000n,
    domainEnd: 0xffffffff,
    probeSize: 24,
    bypass: 1,
    shortRequest: 'inval',
    exactSize: true,
    checksEndpoint: false,
    mapChecksResvMem: false,
    checksDomainRange: false,
    faultEvents: 'none',
  },
  // crosvm: MAP_UNMAP, INPUT_RANGE, PROBE (x86); no bypass of any kind; granule from the host
  // page; RANGE for misalignment checked before flags; UNSUPP when an endpoint would leave a
  // shared domain; unknown type and short requests left unwritten.
  crosvm: {
    ...STRICT,
    name: 'crosvm',
    features: STANDARD | f(VIRTIO_IOMMU_F_INPUT_RANGE) | f(VIRTIO_IOMMU_F_PROBE),
    pageSizeMask: 0xfffffffffffff000n,
    inputEnd: (1n << 48n) - 1n,
    domainEnd: 0xffffffff,
    cannotLeaveSharedDomain: true,
    alignmentBeforeFlags: true,
    unmapChecksInputRange: false,
    mapChecksResvMem: false,
    mapChecksOrder: false,
    checksDomainRange: false,
    faultEvents: 'none',
  },
};
