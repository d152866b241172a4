/**
 * One DMA window: a TCE table in memory named by a LIOBN, and the PHB's TCE cache for it.
 * Entries are big-endian 64-bit words, read and written as two 32-bit halves (no BigInt on
 * the DMA path). The cache is direct-mapped (tagged by TCE index, in typed arrays) and holds
 * valid TCEs only; every store through {@link TceTable.write} — the TCE hcalls' only way to
 * the table — invalidates the entry it replaces, as the hypervisor kills a PHB's TCE cache
 * entries on H_PUT_TCE. A store to the table's memory that bypasses the hypervisor is not
 * seen by a cached entry until {@link TceTable.flush}, as on hardware.
 */

import type { PhysicalMemoryLike } from '@ioasid/uapi';
import { TCE_ENTRY_SIZE, TCE_PCI_READ, TCE_PCI_WRITE, TCE_PERM_MASK, bswap32 } from '../spec/tce.js';

const TWO32 = 4294967296;
const PAGE = 4096;
/** Module-local copies of the spec's names for the DMA path (no import binding read per DMA). */
const ENTRY = TCE_ENTRY_SIZE;
const PERM = TCE_PERM_MASK;
const swap = bswap32;
const READ = TCE_PCI_READ;
const WRITE = TCE_PCI_WRITE;
/** One epoch of the TCE cache tags: above every TCE index + 1 (windows hold at most 2^40 TCEs). */
const EPOCH = 2 ** 41;
/** Epochs before the tags are zeroed (`EPOCH * EPOCHS` + 2^40 stays below 2^53: tags are exact). */
const EPOCHS = 2 ** 11;
/** TCEs in one 4 KiB frame of a table. */
const TCES_PER_FRAME = PAGE / TCE_ENTRY_SIZE;
const FRAMES_PER_TCE = 1 / TCES_PER_FRAME;
/** log2 of {@link TCES_PER_FRAME}. */
const TCE_FRAME_SHIFT = 9;
/** 2^31: numbers below it are exact in 32-bit integer operations. */
const INT31 = 2 ** 31;
/** TCEs per bulk store (one 4 KiB page of them). */
const BULK = 512;
/** Scratch for bulk stores: `BULK` big-endian TCEs, as bytes and as host-order words. */
const bulk8 = new Uint8Array(BULK * TCE_ENTRY_SIZE);
const bulk32 = new Uint32Array(bulk8.buffer);

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
  /** The page-offset mask `2^pageShift − 1` as a bigint (hcall path). */
  readonly pageMaskN: bigint;
  private readonly shiftN: bigint;
  private readonly endN: bigint;
  /** 1 / pageSize (exact: a power of two), so the DMA path multiplies instead of dividing. */
  readonly pageInv: number;
  /** Mask of a TCE's high word that keeps the real page number (bits 63..pageShift). */
  readonly rpnMaskHi: number;
  /** Mask of a TCE's low word that keeps the real page number (bits 31..max(12, pageShift)). */
  readonly rpnMaskLo: number;
  /** Bits of a TCE's low word that must be zero: below the page, above the permission field. */
  readonly reservedLo: number;
  /** Bits of a TCE's high word that must be zero (pages above 4 GiB). */
  readonly reservedHi: number;
  private readonly tablePfn: number;
  private readonly tableFrames: number;
  /** TCE cache entries − 1 (a power of two minus one), or −1: no cache. */
  private readonly cacheMask: number;
  /**
   * The TCE cache, made on the first fill: entry `e` is `cache[4e … 4e+3]` = [tag, the real page
   * for a read or −1, the real page for a write or −1, unused], so that a lookup is one tag
   * compare and one load at `4e + need` (need: 1 read, 2 write, the TCE's own permission bits).
   * The tag is `index + tagBase`, where `tagBase` is 1 + an epoch (a multiple of 2^41, above
   * every index + 1, which is at most 2^40) that a flush advances, so that a flush empties the
   * cache without touching it; 0 never matches.
   */
  private cache: Float64Array | undefined;
  /** 1 + the current epoch (see `cache`); the epoch wraps to 0 after `EPOCHS` flushes, zeroing the tags. */
  private tagBase = 1;

  private constructor(liobn: number, start: bigint, size: bigint, pageShift: number, pfn: number, frames: number, cacheEntries: number) {
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
    this.pageInv = 1 / this.pageSize;
    this.shiftN = BigInt(pageShift);
    this.pageMaskN = (1n << this.shiftN) - 1n;
    this.endN = start + size;
    // QEMU masks the TCE to the window's page size (translate: `tce & ~(page_mask)`).
    this.rpnMaskLo = pageShift >= 32 ? 0 : (~(2 ** pageShift - 1) & ~0xfff) >>> 0;
    this.rpnMaskHi = pageShift <= 32 ? 0xffffffff : ~(2 ** (pageShift - 32) - 1) >>> 0;
    this.reservedLo = ((pageShift >= 32 ? 0xffffffff : 2 ** pageShift - 1) & ~TCE_PERM_MASK) >>> 0;
    this.reservedHi = pageShift > 32 ? 2 ** (pageShift - 32) - 1 : 0;
    this.cacheMask = cacheEntries - 1;
  }

  /**
   * Allocates a zeroed (all "page fault") table for a window, with a TCE cache of
   * `cacheEntries` (0 or a power of two); throws ENOMEM when memory fails.
   */
  static allocate(memory: PhysicalMemoryLike, liobn: number, start: bigint, size: bigint, pageShift: number, cacheEntries: number): TceTable {
    const entries = Number(size >> BigInt(pageShift));
    const frames = Math.max(1, Math.ceil((entries * TCE_ENTRY_SIZE) / PAGE));
    const pfn = memory.allocFrames(frames);
    return new TceTable(liobn, start, size, pageShift, pfn, frames, cacheEntries);
  }

  /** Frees the table's frames. */
  free(memory: PhysicalMemoryLike): void {
    memory.freeFrames(this.tablePfn, this.tableFrames);
  }

  /** The TCE index of a bus address, or −1 outside the window (BigInt: hcall path). */
  indexOf(ioba: bigint): number {
    if (ioba < this.start || ioba >= this.endN) return -1;
    return Number((ioba - this.start) >> this.shiftN);
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

  /** Writes entry `index` from its high and low words (stored big-endian); its cached copy is dropped. */
  write(memory: PhysicalMemoryLike, index: number, hi: number, lo: number): void {
    const addr = this.table + index * TCE_ENTRY_SIZE;
    memory.write32At(addr, bswap32(hi >>> 0));
    memory.write32At(addr + 4, bswap32(lo >>> 0));
    this.invalidate(index);
  }

  /**
   * Stores `n` TCEs from entry `index`, given as their big-endian bytes (`bytes[0, 8n)`), in
   * one copy; their cached copies are dropped.
   */
  writeBytes(memory: PhysicalMemoryLike, index: number, bytes: Uint8Array, n: number): void {
    memory.writeFrom(this.table + index * TCE_ENTRY_SIZE, bytes, 0, n * TCE_ENTRY_SIZE);
    this.invalidateRange(index, n);
  }

  /** Stores the TCE `[hi, lo]` into `n` entries from `index`, a page of entries per copy; their cached copies are dropped. */
  fill(memory: PhysicalMemoryLike, index: number, n: number, hi: number, lo: number): void {
    const bh = bswap32(hi >>> 0);
    const bl = bswap32(lo >>> 0);
    const m = Math.min(n, BULK);
    for (let i = 0; i < m; i++) {
      bulk32[2 * i] = bh;
      bulk32[2 * i + 1] = bl;
    }
    for (let done = 0; done < n; done += BULK) {
      memory.writeFrom(this.table + (index + done) * TCE_ENTRY_SIZE, bulk8, 0, Math.min(BULK, n - done) * TCE_ENTRY_SIZE);
    }
    this.invalidateRange(index, n);
  }

  /**
   * The real page address TCE `index` gives to an access needing permission `need` (1 read,
   * 2 write), or −1 when it does not (a page-fault TCE, the wrong direction, a table outside
   * memory): from the TCE cache, or fetched from the table and cached. No allocation, no BigInt.
   */
  pageOf(memory: PhysicalMemoryLike, index: number, need: number): number {
    const c = this.cache;
    if (c !== undefined) {
      const k = (index & this.cacheMask) << 2;
      if (c[k] === index + this.tagBase) return c[k + need]!;
    }
    return this.fetch(memory, index, need);
  }

  /** {@link pageOf} on a TCE cache miss: reads TCE `index` from the table and caches it when valid. */
  private fetch(memory: PhysicalMemoryLike, index: number, need: number): number {
    const entry = this.table + index * ENTRY;
    if (!(entry >= 0 && entry + ENTRY <= memory.sizeNumber)) return -1;
    // Both words of the TCE lie in one frame of the table (512 TCEs a frame): one frame lookup.
    // (An index below 2^31 takes integer operations all the way into the frame lookup.)
    const frame = index < INT31 ? index >>> TCE_FRAME_SHIFT : Math.floor(index * FRAMES_PER_TCE);
    const words = memory.frameWords(this.tablePfn + frame);
    if (words === undefined) return -1; // a never-written frame: TCE 0, a page fault
    const w = (index - frame * TCES_PER_FRAME) << 1;
    // The TCE is big-endian: its low word (RPN bits 31..12, the permission field in bits 1..0) is
    // the second, and the permission field is in its last byte (the high byte of the host word).
    const loWord = words[w + 1]!;
    const perm = (loWord >>> 24) & PERM;
    if (perm === 0) return -1;
    const page = ((swap(words[w]!) & this.rpnMaskHi) >>> 0) * TWO32 + ((swap(loWord) & this.rpnMaskLo) >>> 0);
    if (this.cacheMask >= 0) {
      let c = this.cache;
      if (c === undefined) c = this.cache = new Float64Array((this.cacheMask + 1) * 4);
      const k = (index & this.cacheMask) << 2;
      c[k] = index + this.tagBase;
      c[k + READ] = (perm & READ) !== 0 ? page : -1;
      c[k + WRITE] = (perm & WRITE) !== 0 ? page : -1;
    }
    return (perm & need) !== 0 ? page : -1;
  }

  /** Drops TCE `index` from the cache. */
  invalidate(index: number): void {
    const c = this.cache;
    if (c === undefined) return;
    const k = (index & this.cacheMask) << 2;
    if (c[k] === index + this.tagBase) c[k] = 0;
  }

  /** Drops TCEs `[index, index + n)` from the cache (all of it when `n` covers the cache). */
  invalidateRange(index: number, n: number): void {
    const c = this.cache;
    if (c === undefined) return;
    if (n > this.cacheMask) {
      this.flush();
      return;
    }
    const mask = this.cacheMask;
    const first = index + this.tagBase;
    for (let j = 0; j < n; j++) {
      const k = ((index + j) & mask) << 2;
      if (c[k] === first + j) c[k] = 0;
    }
  }

  /** Empties the TCE cache. */
  flush(): void {
    this.tagBase += EPOCH;
    if (this.tagBase === 1 + EPOCH * EPOCHS) {
      this.tagBase = 1;
      const c = this.cache;
      if (c !== undefined) for (let k = 0; k < c.length; k += 4) c[k] = 0;
    }
  }

  /** Reads entry `index` as a bigint (hcall path). */
  read64(memory: PhysicalMemoryLike, index: number): bigint {
    const w = new Uint32Array(2);
    this.read(memory, index, w);
    return (BigInt(w[0]!) << 32n) | BigInt(w[1]!);
  }
}
