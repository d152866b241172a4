/**
 * The guest side of hardware nesting: how a vIOMMU driver in a guest builds the user-managed
 * stage-1 structures of one backend in guest memory, and which invalidation entries tell the
 * host about a change. Backends that accept nested HWPTs export one, so that workloads written
 * once against the uAPI can drive every architecture's nesting.
 */

import type { HwptData, InvalidateEntry } from './context.js';

/** Guest memory addressed by guest-physical address (the stage-2 input: the parent IOAS's IOVA). */
export interface GuestMemory {
  /** Reads a little-endian 64-bit word. */
  read64(gpa: bigint): bigint;
  /** Writes a little-endian 64-bit word. */
  write64(gpa: bigint, value: bigint): void;
  /** A zeroed, page-aligned guest page of `bytes` (default 4 KiB); returns its address. */
  alloc(bytes?: number): bigint;
}

/** One user-managed stage-1 translation built by a guest. */
export interface GuestStage1 {
  /** The vendor data to pass to allocHwpt. */
  readonly data: HwptData;
  /** Maps the 4 KiB page at `iova` to the guest page at `gpa` (writes entries only, no invalidation). */
  map(iova: bigint, gpa: bigint, write: boolean): void;
  /** Removes the mapping of the page at `iova` (entries only, no invalidation). */
  unmap(iova: bigint): void;
  /** The invalidation entries covering `[iova, iova+length)`. */
  invalidateRange(iova: bigint, length: bigint): InvalidateEntry[];
  /** The invalidation entries covering everything. */
  invalidateAll(): InvalidateEntry[];
}

/** A backend's guest-side stage-1 builder. */
export interface NestingGuest {
  /** The nesting format it builds (one of hw_info's nestingFormats). */
  readonly format: HwptData['type'];
  /** Builds an empty stage-1 in guest memory. */
  create(memory: GuestMemory): GuestStage1;
}
