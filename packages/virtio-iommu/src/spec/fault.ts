/**
 * `struct virtio_iommu_fault`, the eventq record (virtio spec "Fault reporting"), 24 bytes:
 * reason @0 u8, reserved[3] @1, flags @4 le32, endpoint @8 le32, reserved1 @12 le32,
 * address @16 le64.
 */

import { le32, le64, put32, put64 } from './bytes.js';

/** Size of a fault record. */
export const VIRTIO_IOMMU_FAULT_SIZE = 24;
/** An internal error, or one the other reasons cannot describe. */
export const VIRTIO_IOMMU_FAULT_R_UNKNOWN = 0;
/** The endpoint accessed `address` without being attached to a domain. */
export const VIRTIO_IOMMU_FAULT_R_DOMAIN = 1;
/** `address` was not mapped in the domain, or the protection flags did not allow the access. */
export const VIRTIO_IOMMU_FAULT_R_MAPPING = 2;
/** The access was a read. */
export const VIRTIO_IOMMU_FAULT_F_READ = 1 << 0;
/** The access was a write. */
export const VIRTIO_IOMMU_FAULT_F_WRITE = 1 << 1;
/** `address` is valid. */
export const VIRTIO_IOMMU_FAULT_F_ADDRESS = 1 << 8;
/**
 * Instruction fetch: not in the spec; Linux's include/uapi/linux/virtio_iommu.h defines it
 * (bit 2) and the extension uses it.
 */
export const VIRTIO_IOMMU_FAULT_F_EXEC = 1 << 2;

/** Reason names by value. */
export const FAULT_REASON_NAMES: readonly string[] = [
  'VIRTIO_IOMMU_FAULT_R_UNKNOWN',
  'VIRTIO_IOMMU_FAULT_R_DOMAIN',
  'VIRTIO_IOMMU_FAULT_R_MAPPING',
];

/** A decoded fault record. */
export interface VirtioIommuFaultRecord {
  /** VIRTIO_IOMMU_FAULT_R_*. */
  readonly reason: number;
  /** VIRTIO_IOMMU_FAULT_F_* (and extension flags). */
  readonly flags: number;
  /** Endpoint ID. */
  readonly endpoint: number;
  /** `reserved1` (the extension's PASID field when `VIRTIO_IOMMU_FAULT_F_X_PASID` is set). */
  readonly reserved1: number;
  /** Address (meaningful with F_ADDRESS). */
  readonly address: bigint;
  /** Bytes 1..3, which must be zero (a driver drops the record otherwise). */
  readonly reserved: number;
}

/** Encodes a 24-byte fault record. */
export function encodeFault(r: Omit<VirtioIommuFaultRecord, 'reserved'>): Uint8Array {
  const b = new Uint8Array(VIRTIO_IOMMU_FAULT_SIZE);
  b[0] = r.reason;
  put32(b, 4, r.flags);
  put32(b, 8, r.endpoint);
  put32(b, 12, r.reserved1);
  put64(b, 16, r.address);
  return b;
}

/** Decodes a fault record. */
export function decodeFault(b: Uint8Array): VirtioIommuFaultRecord {
  return {
    reason: b[0] ?? 0,
    reserved: (le32(b, 0) & 0xffffff00) >>> 0,
    flags: le32(b, 4),
    endpoint: le32(b, 8),
    reserved1: le32(b, 12),
    address: le64(b, 16),
  };
}
