/** The platform as the uAPI and the backends see it: memory, processes, endpoints. */

import type { DmaFault, DmaRequest, DmaResult } from './dma.js';

/**
 * Guest-physical memory: what every hardware model reads and writes. Addresses are bigints
 * on the public surface; the `*At` accessors take plain numbers (exact below 2^53) so that
 * table walks never allocate a BigInt. 32/64-bit accessors are little-endian. An access at or
 * beyond `size` throws an IoasidError (EFAULT); `contains()` lets a model check first and
 * report its architecture's external abort instead.
 */
export interface PhysicalMemoryLike {
  /** Size in bytes. */
  readonly size: bigint;
  /** `size` as a number (exact: sizes are at most 2^52). */
  readonly sizeNumber: number;
  /** True when `[addr, addr+length)` lies inside memory. */
  contains(addr: number, length: number): boolean;
  /** Reads a little-endian 32-bit word. */
  read32(addr: bigint): number;
  /** Writes a little-endian 32-bit word. */
  write32(addr: bigint, value: number): void;
  /** Reads a little-endian 64-bit word. */
  read64(addr: bigint): bigint;
  /** Writes a little-endian 64-bit word. */
  write64(addr: bigint, value: bigint): void;
  /** Reads `length` bytes into a new array (a copy). */
  read(addr: bigint, length: number): Uint8Array;
  /** Writes bytes. */
  write(addr: bigint, data: Uint8Array): void;
  /**
   * The 32-bit words of a frame, or undefined while the frame was never written (it reads as
   * zero). For table walkers that read several entries of one table: index `(addr & 0xfff) >>> 2`.
   */
  frameWords(pfn: number): Uint32Array | undefined;
  /** Reads a 32-bit word at a number address (4-byte aligned). */
  read32At(addr: number): number;
  /** Writes a 32-bit word at a number address (4-byte aligned). */
  write32At(addr: number, value: number): void;
  /** Copies bytes out at a number address into `out[offset…]`. */
  readInto(addr: number, out: Uint8Array, offset: number, length: number): void;
  /** Copies bytes in at a number address from `data[offset…]`. */
  writeFrom(addr: number, data: Uint8Array, offset: number, length: number): void;
  /** Allocates one zeroed 4 KiB frame and returns its frame number (ENOMEM when injected or full). */
  allocFrame(): number;
  /** Allocates `count` contiguous zeroed frames aligned to `alignFrames` (a power of two). */
  allocFrames(count: number, alignFrames?: number): number;
  /** Frees frames allocated earlier; their contents are discarded (they read as zero again). */
  freeFrames(pfn: number, count?: number): void;
  /** Frames currently allocated. */
  readonly framesInUse: number;
}

/** A CPU page-table format the platform's processes use (the table SVA hands to an IOMMU). */
export interface CpuPageTableFormat {
  /** `'x86-64'` or `'aarch64'` (4 KiB granule). */
  readonly name: string;
  /** Number of levels (4: 48-bit virtual addresses). */
  readonly levels: number;
  /** Encodes a next-level table descriptor pointing at `pa`: writes [low, high] words. */
  table(pa: number, out: Uint32Array): void;
  /** Encodes a 4 KiB leaf for `pa` with the permissions given: writes [low, high] words. */
  leaf(pa: number, writable: boolean, executable: boolean, out: Uint32Array): void;
}

/** A process's address space as an IOMMU driver sees it for SVA. */
export interface ProcessMm {
  /** Process id (non-zero). */
  readonly pid: number;
  /** The physical address of the root of the process's CPU page table. */
  readonly pageTableRoot: bigint;
  /** The CPU page-table format. */
  readonly format: CpuPageTableFormat;
  /** Registers a listener for CPU page-table changes (unmap/remap); returns its remover. */
  onInvalidate(listener: (vaddr: bigint, length: bigint) => void): () => void;
}

/** A process of the simulated platform: mmap/munmap, read/write and pinning accounting. */
export interface Process extends ProcessMm {
  /** Locked-memory limit in bytes (undefined: none). */
  readonly lockedMemoryLimit: bigint | undefined;
  /** Maps `length` bytes of anonymous memory (rounded up to pages) and returns the address. */
  mmap(length: bigint, options?: { readonly write?: boolean }): bigint;
  /** Unmaps a page-aligned part of earlier mmaps, as POSIX munmap does. Pinned pages stay alive for their holders. */
  munmap(vaddr: bigint, length: bigint): void;
  /** Reads bytes of the process's memory. */
  read(vaddr: bigint, length: number): Uint8Array;
  /** Writes bytes to the process's memory. */
  write(vaddr: bigint, data: Uint8Array): void;
  /** The pin count of the page holding `vaddr`, or with no argument the number of pinned pages. */
  pinCount(vaddr?: bigint): number;
}

/** The kind of a PCI endpoint function. */
export type EndpointKind = 'pf' | 'vf' | 'mdev';

/** An endpoint as the platform describes it to a backend. */
export interface EndpointDescriptor {
  /** `DDDD:BB:DD.F` (a mediated sub-device: `DDDD:BB:DD.F/mdevN`). */
  readonly name: string;
  /** PCI segment. */
  readonly segment: number;
  /** Bus number. */
  readonly bus: number;
  /** Device/function byte `(device << 3) | function`. */
  readonly devfn: number;
  /** Requester ID `(bus << 8) | devfn`. */
  readonly rid: number;
  /** Physical function, SR-IOV virtual function or mediated sub-device. */
  readonly kind: EndpointKind;
  /** The parent function's name (for VFs and mdevs). */
  readonly parent: string | undefined;
  /** The function supports PASID prefixes. */
  readonly pasid: boolean;
  /** The function supports PRI page requests. */
  readonly pri: boolean;
}

/** An endpoint's DMA entry point on the simulated bus. */
export interface Endpoint {
  /** The endpoint's description. */
  readonly descriptor: EndpointDescriptor;
  /**
   * Issues a DMA: reads `size` bytes or writes `data`. Never throws for a translation problem:
   * a fault is a result. A read of more than 1 GiB is EINVAL (argument `size`) — no result
   * buffer is made that large; {@link dmaInto} takes the caller's own.
   */
  dma(request: DmaRequest): DmaResult;
  /**
   * Issues a DMA without allocating when it succeeds: a read's `size` bytes land in
   * `into[0 … size)`, a write takes `request.data` (`into` is not used). Returns `undefined` on
   * success and the fault otherwise — the same outcome, bytes and fault record as {@link dma}.
   * Reuse one request object and one buffer across calls for an allocation-free hot path. A
   * read whose `into` is shorter than `size` is EINVAL (argument `into`): a caller error, not a
   * DMA outcome, so nothing is issued.
   */
  dmaInto(request: DmaRequest, into?: Uint8Array): DmaFault | undefined;
}
