/**
 * The request virtqueue's requests (virtio spec "Device operations"): a device-readable part
 * that starts with `struct virtio_iommu_req_head` (u8 type, u8 reserved[3]) and a
 * device-writable part that ends with `struct virtio_iommu_req_tail` (u8 status, u8
 * reserved[3]). Offsets below are within the whole request, as the spec's structs lay them out.
 */

import { put32, put64 } from './bytes.js';

/** ATTACH: attach an endpoint to a domain (creating the domain). */
export const VIRTIO_IOMMU_T_ATTACH = 1;
/** DETACH: detach an endpoint from a domain. */
export const VIRTIO_IOMMU_T_DETACH = 2;
/** MAP: map `[virt_start, virt_end]` to `phys_start`. */
export const VIRTIO_IOMMU_T_MAP = 3;
/** UNMAP: remove the mappings inside `[virt_start, virt_end]`. */
export const VIRTIO_IOMMU_T_UNMAP = 4;
/** PROBE: read an endpoint's properties. */
export const VIRTIO_IOMMU_T_PROBE = 5;

/** Size of the head and of the tail. */
export const HEAD_SIZE = 4;
/** Size of the tail. */
export const TAIL_SIZE = 4;

/** `struct virtio_iommu_req_attach`: domain @4, endpoint @8, flags @12, reserved[4] @16, tail @20. */
export const ATTACH_SIZE = 24;
/** Offset of `domain` in ATTACH, DETACH, MAP and UNMAP. */
export const REQ_DOMAIN = 4;
/** Offset of `endpoint` in ATTACH and DETACH. */
export const REQ_ENDPOINT = 8;
/** Offset of ATTACH `flags`. */
export const ATTACH_FLAGS = 12;
/** Offset of ATTACH `reserved[4]`. */
export const ATTACH_RESERVED = 16;
/** `VIRTIO_IOMMU_ATTACH_F_BYPASS`: create (or join) a bypass domain. */
export const VIRTIO_IOMMU_ATTACH_F_BYPASS = 1 << 0;

/** `struct virtio_iommu_req_detach`: domain @4, endpoint @8, reserved[8] @12, tail @20. */
export const DETACH_SIZE = 24;
/** Offset of DETACH `reserved[8]`. */
export const DETACH_RESERVED = 12;

/** `struct virtio_iommu_req_map`: domain @4, virt_start @8, virt_end @16, phys_start @24, flags @32, tail @36. */
export const MAP_SIZE = 40;
/** Offset of `virt_start` in MAP and UNMAP. */
export const REQ_VIRT_START = 8;
/** Offset of `virt_end` (inclusive) in MAP and UNMAP. */
export const REQ_VIRT_END = 16;
/** Offset of MAP `phys_start`. */
export const MAP_PHYS_START = 24;
/** Offset of MAP `flags`. */
export const MAP_FLAGS = 32;
/** Read access is allowed. */
export const VIRTIO_IOMMU_MAP_F_READ = 1 << 0;
/** Write access is allowed. */
export const VIRTIO_IOMMU_MAP_F_WRITE = 1 << 1;
/** The range is memory-mapped I/O (only with VIRTIO_IOMMU_F_MMIO). */
export const VIRTIO_IOMMU_MAP_F_MMIO = 1 << 2;

/** `struct virtio_iommu_req_unmap`: domain @4, virt_start @8, virt_end @16, reserved[4] @24, tail @28. */
export const UNMAP_SIZE = 32;
/** Offset of UNMAP `reserved[4]`. */
export const UNMAP_RESERVED = 24;

/** `struct virtio_iommu_req_probe` readable part: endpoint @4, reserved[64] @8 → 72 bytes. */
export const PROBE_READABLE_SIZE = 72;
/** Offset of PROBE `endpoint`. */
export const PROBE_ENDPOINT = 4;

/** Size of the device-readable part of each standard request (whole size minus the tail). */
export function readableSize(type: number): number | undefined {
  switch (type) {
    case VIRTIO_IOMMU_T_ATTACH:
      return ATTACH_SIZE - TAIL_SIZE;
    case VIRTIO_IOMMU_T_DETACH:
      return DETACH_SIZE - TAIL_SIZE;
    case VIRTIO_IOMMU_T_MAP:
      return MAP_SIZE - TAIL_SIZE;
    case VIRTIO_IOMMU_T_UNMAP:
      return UNMAP_SIZE - TAIL_SIZE;
    case VIRTIO_IOMMU_T_PROBE:
      return PROBE_READABLE_SIZE;
    default:
      return undefined;
  }
}

function head(size: number, type: number): Uint8Array {
  const b = new Uint8Array(size);
  b[0] = type;
  return b;
}

/** The readable part of an ATTACH request. */
export function encodeAttach(domain: number, endpoint: number, flags = 0, reserved = 0): Uint8Array {
  const b = head(ATTACH_SIZE - TAIL_SIZE, VIRTIO_IOMMU_T_ATTACH);
  put32(b, REQ_DOMAIN, domain);
  put32(b, REQ_ENDPOINT, endpoint);
  put32(b, ATTACH_FLAGS, flags);
  put32(b, ATTACH_RESERVED, reserved);
  return b;
}

/** The readable part of a DETACH request. */
export function encodeDetach(domain: number, endpoint: number): Uint8Array {
  const b = head(DETACH_SIZE - TAIL_SIZE, VIRTIO_IOMMU_T_DETACH);
  put32(b, REQ_DOMAIN, domain);
  put32(b, REQ_ENDPOINT, endpoint);
  return b;
}

/** The readable part of a MAP request (`virtEnd` inclusive). */
export function encodeMap(domain: number, virtStart: bigint, virtEnd: bigint, physStart: bigint, flags: number): Uint8Array {
  const b = head(MAP_SIZE - TAIL_SIZE, VIRTIO_IOMMU_T_MAP);
  put32(b, REQ_DOMAIN, domain);
  put64(b, REQ_VIRT_START, virtStart);
  put64(b, REQ_VIRT_END, virtEnd);
  put64(b, MAP_PHYS_START, physStart);
  put32(b, MAP_FLAGS, flags);
  return b;
}

/** The readable part of an UNMAP request (`virtEnd` inclusive). */
export function encodeUnmap(domain: number, virtStart: bigint, virtEnd: bigint): Uint8Array {
  const b = head(UNMAP_SIZE - TAIL_SIZE, VIRTIO_IOMMU_T_UNMAP);
  put32(b, REQ_DOMAIN, domain);
  put64(b, REQ_VIRT_START, virtStart);
  put64(b, REQ_VIRT_END, virtEnd);
  return b;
}

/** The readable part of a PROBE request. */
export function encodeProbe(endpoint: number): Uint8Array {
  const b = head(PROBE_READABLE_SIZE, VIRTIO_IOMMU_T_PROBE);
  put32(b, PROBE_ENDPOINT, endpoint);
  return b;
}
