/**
 * One DMA window: a TCE table in memory named by a LIOBN. Entries are big-endian 64-bit
 * words, read and written as two 32-bit halves (no BigInt on the DMA path).
 */

import type { PhysicalMemoryLike } from '@ioasid/uapi';
import { TCE_ENTRY_SIZE, bswap32 } from '../spec/tce.js';

const TWO32 = 4294967296;
const PAGE = 4096;

/** A DMA window and its TCE table. */
export class TceTable {
  /** The window's LIOBN. */
  readonly liobn: number;
  /** First bus address. */
  readonly start: bigint;
  /** Size in bytes. */
  readonly size: bigint;
  /** log2 of the IOMMU page size. */
  readonly pageShift: number;
  /** Number of TCEs. */
  readonly entries: number;
  /** Physical address of the table. */
  readonly table: number;
  /** `start` as 32-bit halves and `size` as a number, for the DMA path. */
  readonly startHi: number;
  /** Low half of `start`. */
  readonly startLo: number;
  /** Size in bytes as a number (exact: windows are at most 2^52 bytes). */
  readonly sizeNumber: number;
  /** IOMMU page size in bytes, as a number. */
  readonly pageSize: number;
  private readonly tablePfn: number;
  private readonly tableFrames: number;

  private constructor(liobn: number, start: bigint, size: bigint, pageShift: number, pfn: number, frames: number) {
    this.liobn = liobn;
    this.start = start;
    this.size = size;
    this.pageShift = pageShift;
    this.entries = Number(size >> BigInt(pageShift));
    this.tablePfn = pfn;
    this.tableFrames = frames;
    this.table = pfn * PAGE;
    this.startHi = Number(start >> 32n);
    this.startLo = Number(start & 0xffffffffn);
    this.sizeNumber = Number(size);
    this.pageSize = 2 ** pageShift;
  }

  /** Allocates a zeroed (all "page fault") table for a window; throws ENOMEM when memory fails. */
  static allocate(memory: PhysicalMemoryLike, liobn: number, start: bigint, size: bigint, pageShift: number): TceTable {
    const entries = Number(size >> BigInt(pageShift));
    const frames = Math.max(1, Math.ceil((entries * TCE_ENTRY_SIZE) / PAGE));
    const pfn = memory.allocFrames(frames);
    return new TceTable(liobn, start, size, pageShift, pfn, frames);
  }

  /** Frees the table's frames. */
  free(memory: PhysicalMemoryLike): void {
    memory.freeFrames(this.tablePfn, this.tableFrames);
  }

  /** The TCE index of a bus address, or −1 outside the window (BigInt: hcall path). */
  indexOf(ioba: bigint): number {
    if (ioba < this.start || ioba >= this.start + this.size) return -1;
    return Number((ioba - this.start) >> BigInt(this.pageShift));
  }

  /** Byte offset of `[hi:lo]` into the window, or −1 outside it (no BigInt: DMA path). */
  offsetOf(hi: number, lo: number): number {
    const off = (hi - this.startHi) * TWO32 + (lo - this.startLo);
    return off >= 0 && off < this.sizeNumber ? off : -1;
  }

  /** Reads entry `index` as [high word, low word] (big-endian in memory) into `out`. */
  read(memory: PhysicalMemoryLike, index: number, out: Uint32Array): void {
    const addr = this.table + index * TCE_ENTRY_SIZE;
    out[0] = bswap32(memory.read32At(addr));
    out[1] = bswap32(memory.read32At(addr + 4));
  }

  /** Writes entry `index` from its high and low words (stored big-endian). */
  write(memory: PhysicalMemoryLike, index: number, hi: number, lo: number): void {
    const addr = this.table + index * TCE_ENTRY_SIZE;
    memory.write32At(addr, bswap32(hi >>> 0));
    memory.write32At(addr + 4, bswap32(lo >>> 0));
  }

  /** Reads entry `index` as a bigint (hcall path). */
  read64(memory: PhysicalMemoryLike, index: number): bigint {
    const w = new Uint32Array(2);
    this.read(memory, index, w);
    return (BigInt(w[0]!) << 32n) | BigInt(w[1]!);
  }
}
