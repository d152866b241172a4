/**
 * PROBE properties (virtio spec "PROBE properties"): a header `le16 {type:12, reserved:4}`,
 * `le16 length` (bytes after the header), then the value. RESV_MEM: `u8 subtype`,
 * `u8 reserved[3]`, `le64 start`, `le64 end` (inclusive) → length 20, 24 bytes in all.
 */

import { le16, le64, put16, put64 } from './bytes.js';

/** Terminates the property list. */
export const VIRTIO_IOMMU_PROBE_T_NONE = 0;
/** A reserved IOVA region. */
export const VIRTIO_IOMMU_PROBE_T_RESV_MEM = 1;
/** Size of the property header. */
export const PROBE_PROPERTY_HEADER_SIZE = 4;
/** `length` of a RESV_MEM property. */
export const RESV_MEM_LENGTH = 20;
/** RESV_MEM subtype: the driver must not map these addresses. */
export const VIRTIO_IOMMU_RESV_MEM_T_RESERVED = 0;
/** RESV_MEM subtype: an MSI doorbell (not mappable either). */
export const VIRTIO_IOMMU_RESV_MEM_T_MSI = 1;

/** A RESV_MEM property. */
export interface ResvMem {
  /** RESERVED (0), MSI (1), or another value (treated as RESERVED by drivers). */
  readonly subtype: number;
  /** First address. */
  readonly start: bigint;
  /** Last address (inclusive). */
  readonly end: bigint;
}

/** The x86 MSI window QEMU, cloud-hypervisor and crosvm report: 0xfee00000–0xfeefffff. */
export const X86_MSI_WINDOW: ResvMem = { subtype: VIRTIO_IOMMU_RESV_MEM_T_MSI, start: 0xfee00000n, end: 0xfeefffffn };

/** Writes a RESV_MEM property at `off`; returns the offset after it. */
export function writeResvMem(b: Uint8Array, off: number, r: ResvMem): number {
  put16(b, off, VIRTIO_IOMMU_PROBE_T_RESV_MEM);
  put16(b, off + 2, RESV_MEM_LENGTH);
  b[off + 4] = r.subtype;
  put64(b, off + 8, r.start);
  put64(b, off + 16, r.end);
  return off + PROBE_PROPERTY_HEADER_SIZE + RESV_MEM_LENGTH;
}

/** A parsed property. */
export type ProbeProperty =
  | { readonly type: typeof VIRTIO_IOMMU_PROBE_T_RESV_MEM; readonly resvMem: ResvMem }
  | { readonly type: number; readonly length: number; readonly ignored: string };

/**
 * Parses `properties[]` the way the spec tells the driver to: stop at type NONE or the end,
 * ignore (and skip) properties with reserved bits set or of unknown type, never deduce a
 * length from a type.
 */
export function parseProperties(b: Uint8Array, size: number): ProbeProperty[] {
  const out: ProbeProperty[] = [];
  let off = 0;
  for (let guard = 0; guard < size && off + PROBE_PROPERTY_HEADER_SIZE <= size; guard++) {
    const word = le16(b, off);
    const type = word & 0xfff;
    const length = le16(b, off + 2);
    if (type === VIRTIO_IOMMU_PROBE_T_NONE) break;
    const next = off + PROBE_PROPERTY_HEADER_SIZE + length;
    if (next > size) {
      out.push({ type, length, ignored: 'property runs past probe_size' });
      break;
    }
    if (word >> 12 !== 0) out.push({ type, length, ignored: 'reserved bits set' });
    else if (type === VIRTIO_IOMMU_PROBE_T_RESV_MEM && length >= RESV_MEM_LENGTH) {
      out.push({
        type: VIRTIO_IOMMU_PROBE_T_RESV_MEM,
        resvMem: { subtype: b[off + 4] ?? 0, start: le64(b, off + 8), end: le64(b, off + 16) },
      });
    } else out.push({ type, length, ignored: 'unknown type' });
    off = next;
  }
  return out;
}
