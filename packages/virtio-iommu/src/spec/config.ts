/**
 * `struct virtio_iommu_config` (virtio spec "Device configuration layout"), 40 bytes:
 * page_size_mask @0 le64, input_range.start @8 le64, input_range.end @16 le64 (inclusive),
 * domain_range.start @24 le32, domain_range.end @28 le32 (inclusive), probe_size @32 le32,
 * bypass @36 u8, reserved[3] @37.
 */

import { le32, le64, put32, put64 } from './bytes.js';

/** Size of the config space in bytes. */
export const VIRTIO_IOMMU_CONFIG_SIZE = 40;
/** Offset of `page_size_mask`. */
export const CONFIG_PAGE_SIZE_MASK = 0;
/** Offset of `input_range.start`. */
export const CONFIG_INPUT_RANGE_START = 8;
/** Offset of `input_range.end`. */
export const CONFIG_INPUT_RANGE_END = 16;
/** Offset of `domain_range.start`. */
export const CONFIG_DOMAIN_RANGE_START = 24;
/** Offset of `domain_range.end`. */
export const CONFIG_DOMAIN_RANGE_END = 28;
/** Offset of `probe_size`. */
export const CONFIG_PROBE_SIZE = 32;
/** Offset of `bypass` (the only driver-writable field, with BYPASS_CONFIG negotiated). */
export const CONFIG_BYPASS = 36;

/** The decoded config space. */
export interface VirtioIommuConfig {
  /** Page sizes that can be mapped; the lowest set bit is the granule. */
  readonly pageSizeMask: bigint;
  /** First IOVA the device translates. */
  readonly inputStart: bigint;
  /** Last IOVA (inclusive). */
  readonly inputEnd: bigint;
  /** First domain ID. */
  readonly domainStart: number;
  /** Last domain ID (inclusive). */
  readonly domainEnd: number;
  /** Bytes of `properties[]` in a PROBE reply. */
  readonly probeSize: number;
  /** 0 or 1. */
  readonly bypass: number;
}

/** Encodes the 40-byte config space. */
export function encodeConfig(c: VirtioIommuConfig): Uint8Array {
  const b = new Uint8Array(VIRTIO_IOMMU_CONFIG_SIZE);
  put64(b, CONFIG_PAGE_SIZE_MASK, c.pageSizeMask);
  put64(b, CONFIG_INPUT_RANGE_START, c.inputStart);
  put64(b, CONFIG_INPUT_RANGE_END, c.inputEnd);
  put32(b, CONFIG_DOMAIN_RANGE_START, c.domainStart);
  put32(b, CONFIG_DOMAIN_RANGE_END, c.domainEnd);
  put32(b, CONFIG_PROBE_SIZE, c.probeSize);
  b[CONFIG_BYPASS] = c.bypass & 1;
  return b;
}

/** Decodes the config space (the driver ignores bits 1–7 of `bypass`, as the spec says). */
export function decodeConfig(b: Uint8Array): VirtioIommuConfig {
  return {
    pageSizeMask: le64(b, CONFIG_PAGE_SIZE_MASK),
    inputStart: le64(b, CONFIG_INPUT_RANGE_START),
    inputEnd: le64(b, CONFIG_INPUT_RANGE_END),
    domainStart: le32(b, CONFIG_DOMAIN_RANGE_START),
    domainEnd: le32(b, CONFIG_DOMAIN_RANGE_END),
    probeSize: le32(b, CONFIG_PROBE_SIZE),
    bypass: (b[CONFIG_BYPASS] ?? 0) & 1,
  };
}

/** The page sizes of a `page_size_mask`, ascending, in bytes. */
export function pageSizesOf(mask: bigint): bigint[] {
  const out: bigint[] = [];
  for (let bit = 0n; bit < 64n; bit++) if ((mask >> bit) & 1n) out.push(1n << bit);
  return out;
}
