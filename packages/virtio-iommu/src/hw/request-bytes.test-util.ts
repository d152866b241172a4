/**
 * virtio-iommu requests built by hand from the layouts of the virtio spec (§5.13.6) and of
 * `src/spec/extension.ts`, for tests that drive the device model with raw bytes.
 */

import { PROFILES } from './profile.js';

/** The endpoint ID the tests use. */
export const EP = 0x10;
/** The strict profile's features plus VIRTIO_IOMMU_F_X_IOASID (bit 23, the extension). */
export const EXT = PROFILES.strict.features | (1n << 23n);
/** The status byte of a request's writable tail. */
export const status = (w: Uint8Array): number | undefined => w[w.length - 4];

/** Writes a little-endian u32. */
export function u32(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer).setUint32(off, v, true);
}
/** Writes a little-endian u64. */
export function u64(b: Uint8Array, off: number, v: bigint): void {
  new DataView(b.buffer).setBigUint64(off, v, true);
}

/** ATTACH (20 readable bytes): domain @4, endpoint @8, flags @12, the extension's word @16. */
export function attach(domain: number, flags = 0, extra = 0): Uint8Array {
  const b = new Uint8Array(20);
  b[0] = 1;
  u32(b, 4, domain);
  u32(b, 8, EP);
  u32(b, 12, flags);
  u32(b, 16, extra);
  return b;
}
/** DETACH (20 readable bytes): domain @4, endpoint @8. */
export function detach(domain: number): Uint8Array {
  const b = new Uint8Array(20);
  b[0] = 2;
  u32(b, 4, domain);
  u32(b, 8, EP);
  return b;
}
/** MAP (36 readable bytes): domain @4, virt_start @8, virt_end @16, phys_start @24, flags @32 (default R|W). */
export function map(domain: number, start: bigint, end: bigint, phys: bigint, flags = 3): Uint8Array {
  const b = new Uint8Array(36);
  b[0] = 3;
  u32(b, 4, domain);
  u64(b, 8, start);
  u64(b, 16, end);
  u64(b, 24, phys);
  u32(b, 32, flags);
  return b;
}
/** UNMAP (28 readable bytes): domain @4, virt_start @8, virt_end @16. */
export function unmap(domain: number, start: bigint, end: bigint): Uint8Array {
  const b = new Uint8Array(28);
  b[0] = 4;
  u32(b, 4, domain);
  u64(b, 8, start);
  u64(b, 16, end);
  return b;
}
/** ATTACH_TABLE (76 readable bytes): domain @4, endpoint @8, flags @12, pasid @16, parent @20, format @28, desc @32. */
export function attachTable(o: { domain: number; flags: number; pasid?: number; parent?: number; format: number; tcr?: bigint; ttbr0?: bigint; cd?: [number, number, number, bigint] }): Uint8Array {
  const b = new Uint8Array(76);
  b[0] = 6;
  u32(b, 4, o.domain);
  u32(b, 8, EP);
  u32(b, 12, o.flags);
  u32(b, 16, o.pasid ?? 0);
  u32(b, 20, o.parent ?? 0);
  b[28] = o.format;
  if (o.format === 1) {
    u64(b, 40, o.tcr ?? 16n);
    u64(b, 48, o.ttbr0 ?? 0n);
  }
  if (o.cd) {
    b[32] = o.cd[0];
    b[33] = o.cd[1];
    u32(b, 36, o.cd[2]);
    u64(b, 40, o.cd[3]);
  }
  return b;
}
