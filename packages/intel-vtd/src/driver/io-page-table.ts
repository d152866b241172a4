/**
 * An I/O page table the driver builds in physical memory, in the first-stage (x86-64) or
 * second-stage format, as Linux's generic page-table code does for VT-d: 4 KiB tables of 512
 * entries, large leaves where frames are contiguous and aligned, map with rollback, unmap that
 * hands back the tables it emptied (freed only after the IOTLB flush), dirty-bit harvesting.
 * Map and unmap loops use numbers only.
 */

import { IoasidError, type PhysicalMemoryLike } from '@ioasid/uapi';
import * as firstStage from '../spec/first-stage.js';
import * as secondStage from '../spec/second-stage.js';
import * as fields from '../spec/fields.js';

// Entry bits the map/unmap loops use per entry, bound once as module-local constants (under a
// module runner that implements import bindings as getters, as vitest's does, every read of an
// imported name would be a call).
const { FS_A, FS_D, FS_P, FS_PS, FS_RW, FS_TABLE_BITS, FS_US } = firstStage;
const { SS_D, SS_PS, SS_R, SS_W } = secondStage;
const { TWO32 } = fields;

/** The two VT-d page-table formats. */
export type PageTableFormat = 'first-stage' | 'second-stage';

const LEVEL_PAGES = [1, 1, 512, 262144, 134217728, 68719476736];

/** Sets bits `[from, to)` of a little-endian bitmap: single bits at the edges, whole bytes between. */
function setBits(bitmap: Uint8Array, from: number, to: number): void {
  let g = from;
  for (; g < to && (g & 7) !== 0; g++) bitmap[g >>> 3]! |= 1 << (g & 7);
  const whole = to - ((to - g) & 7); // end of the whole bytes
  if (g < whole) {
    bitmap.fill(0xff, g >>> 3, whole >>> 3);
    g = whole;
  }
  for (; g < to; g++) bitmap[g >>> 3]! |= 1 << (g & 7);
}

/** A page table and the frames it uses. */
export class IoPageTable {
  /** Physical address of the root table. */
  readonly root: number;
  /** Table frames in use. */
  tables = 1;
  /** A run of up to 512 entries (lo, hi words) as the map and unmap loops read and write it. */
  private readonly runWords = new Uint32Array(1024);
  private readonly runBytes = new Uint8Array(this.runWords.buffer);

  /**
   * @param memory - physical memory
   * @param format - first- or second-stage entries
   * @param levels - 4 or 5 (first stage), 3–5 (second stage)
   * @param largePages - bit 0: 2 MiB leaves, bit 1: 1 GiB leaves
   */
  constructor(
    private readonly memory: PhysicalMemoryLike,
    readonly format: PageTableFormat,
    readonly levels: number,
    readonly largePages: number,
  ) {
    this.root = memory.allocFrame() * 4096;
  }

  /** The bits that make an entry present (first stage: P; second stage: R or W). */
  private get presentBits(): number {
    return this.format === 'first-stage' ? FS_P : SS_R | SS_W;
  }

  private tableLo(pa: number): number {
    return ((pa % TWO32) | (this.format === 'first-stage' ? FS_TABLE_BITS : SS_R | SS_W)) >>> 0;
  }

  /** The low-dword flag bits of a leaf (the address bits are or-ed in per page). */
  private leafBits(read: boolean, write: boolean, large: boolean): number {
    if (this.format === 'first-stage') return FS_P | FS_US | FS_A | (write ? FS_RW | FS_D : 0) | (large ? FS_PS : 0);
    return (read ? SS_R : 0) | (write ? SS_W : 0) | (large ? SS_PS : 0);
  }

  private contiguous(pfns: Uint32Array, at: number, n: number): boolean {
    const first = pfns[at]!;
    for (let k = 1; k < n; k++) if (pfns[at + k] !== first + k) return false;
    return true;
  }

  /**
   * The table at `level` that holds the entry for page `v`, walking down from the root and
   * allocating missing tables (recorded in `newTables` as parent slot, table address).
   */
  private tableFor(v: number, level: number, present: number, newTables: number[]): number {
    const mem = this.memory;
    const vlo = v >>> 0;
    const vhi = (v - vlo) / TWO32;
    let table = this.root;
    for (let l = this.levels; l > level; l--) {
      const sh = 9 * (l - 1);
      const i = sh <= 23 ? (vlo >>> sh) & 511 : sh >= 32 ? (vhi >>> (sh - 32)) & 511 : ((vlo >>> sh) | (vhi << (32 - sh))) & 511;
      const slot = table + i * 8;
      const lo = mem.read32At(slot);
      if ((lo & present) === 0) {
        const next = mem.allocFrame() * 4096;
        this.tables++;
        newTables.push(slot, next);
        mem.write32At(slot + 4, Math.floor(next / TWO32));
        mem.write32At(slot, this.tableLo(next));
        table = next;
      } else {
        if ((lo & FS_PS) !== 0) throw new IoasidError('EEXIST', 'iova', `IOVA page 0x${v.toString(16)} is already mapped`);
        table = (mem.read32At(slot + 4) & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
      }
    }
    return table;
  }

  /**
   * Writes 4 KiB leaves for `pfns[at…at+n)` into the `n` slots from `first` (one table): the
   * run is read, checked, filled and written back with one bulk copy each way. Stops at the
   * first slot already present; returns the number of leaves written. (A small method of its
   * own, so that it is compiled, and optimized, quickly.)
   */
  private fillRun(first: number, n: number, pfns: Uint32Array, at: number, bits: number, present: number): number {
    const w = this.runWords;
    this.memory.readInto(first, this.runBytes, 0, n * 8);
    let k = 0;
    for (; k < n; k++) {
      if ((w[2 * k]! & present) !== 0) break;
      const p = pfns[at + k]!;
      w[2 * k] = ((p << 12) | bits) >>> 0;
      w[2 * k + 1] = p >>> 20; // pa = pfn · 4096: bits 63:32 are pfn >> 20
    }
    if (k > 0) this.memory.writeFrom(first, this.runBytes, 0, k * 8);
    return k;
  }

  /**
   * Maps `count` pages from `vpn` to `pfns[0…count)`. All or nothing: on ENOMEM (table
   * allocation) or EEXIST (something already mapped) every leaf written and every table
   * allocated by this call is removed again. 4 KiB leaves are written a last-level table at a
   * time (one walk per 512 pages, integer ops per page); 1 GiB and 2 MiB leaves where the
   * frames are contiguous and aligned and the format allows them.
   */
  map(vpn: number, pfns: Uint32Array, count: number, read: boolean, write: boolean): void {
    const mem = this.memory;
    const present = this.presentBits;
    const small = this.leafBits(read, write, false);
    const large = this.leafBits(read, write, true);
    const newTables: number[] = []; // pairs: parent slot, table address
    const written: number[] = []; // pairs: first leaf slot, number of consecutive leaf slots
    let i = 0;
    try {
      while (i < count) {
        const v = vpn + i;
        const pfn = pfns[i]!;
        const left = count - i;
        // (v & 511): the low bits of the page number, exact for any v below 2^53
        if ((v & 511) === 0 && (pfn & 511) === 0 && left >= 512 && (this.largePages & 3) !== 0) {
          let size = 0;
          if ((this.largePages & 2) !== 0 && (v & 262143) === 0 && (pfn & 262143) === 0 && left >= 262144 && this.contiguous(pfns, i, 262144)) size = 2;
          else if ((this.largePages & 1) !== 0 && this.contiguous(pfns, i, 512)) size = 1;
          if (size > 0) {
            const table = this.tableFor(v, size + 1, present, newTables);
            const sh = 9 * size;
            const slot = table + ((v >>> sh) & 511) * 8; // levels 2 and 3 index bits 9…26: in the low half
            if ((mem.read32At(slot) & present) !== 0) throw new IoasidError('EEXIST', 'iova', `IOVA page 0x${v.toString(16)} is already mapped`);
            mem.write32At(slot + 4, pfn >>> 20);
            mem.write32At(slot, ((pfn << 12) | large) >>> 0);
            written.push(slot, 1);
            i += size === 2 ? 262144 : 512;
            continue;
          }
        }
        // 4 KiB leaves up to the end of this last-level table, as one run (two calls into
        // memory for up to 512 pages instead of three per page)
        const table = this.tableFor(v, 1, present, newTables);
        const first = table + (v & 511) * 8;
        const n = Math.min(left, 512 - (v & 511));
        const k = this.fillRun(first, n, pfns, i, small, present);
        written.push(first, k);
        if (k < n) throw new IoasidError('EEXIST', 'iova', `IOVA page 0x${(v + k).toString(16)} is already mapped`);
        i += n;
      }
    } catch (e) {
      for (let k = 0; k < written.length; k += 2) {
        const first = written[k]!;
        for (let j = 0; j < written[k + 1]!; j++) {
          mem.write32At(first + j * 8, 0);
          mem.write32At(first + j * 8 + 4, 0);
        }
      }
      for (let k = newTables.length - 2; k >= 0; k -= 2) {
        const slot = newTables[k]!;
        mem.write32At(slot, 0);
        mem.write32At(slot + 4, 0);
        mem.freeFrames(newTables[k + 1]! / 4096);
        this.tables--;
      }
      throw e;
    }
  }

  /**
   * Clears the leaves of `[vpn, vpn + pages)` and unhooks tables wholly inside the range;
   * their frame numbers are pushed to `freed` (free them after the IOTLB flush). Returns the
   * number of 4 KiB pages that were mapped.
   */
  unmap(vpn: number, pages: number, freed: number[]): number {
    return this.clear(this.root, this.levels, 0, vpn, vpn + pages, freed);
  }

  /** Clears the present leaves among the `n` slots from `first` (one table; read once, written back once); returns how many. */
  private clearRun(first: number, n: number, present: number): number {
    const w = this.runWords;
    this.memory.readInto(first, this.runBytes, 0, n * 8);
    let cleared = 0;
    for (let k = 0; k < n; k++) {
      if ((w[2 * k]! & present) === 0) continue;
      w[2 * k] = 0;
      w[2 * k + 1] = 0;
      cleared++;
    }
    if (cleared > 0) this.memory.writeFrom(first, this.runBytes, 0, n * 8);
    return cleared;
  }

  private clear(table: number, level: number, base: number, start: number, end: number, freed: number[]): number {
    const mem = this.memory;
    const present = this.presentBits;
    const span = LEVEL_PAGES[level]!;
    const first = Math.max(0, Math.floor((start - base) / span));
    const last = Math.min(511, Math.floor((end - 1 - base) / span));
    let unmapped = 0;
    if (level === 1) return this.clearRun(table + first * 8, last - first + 1, present);
    for (let i = first; i <= last; i++) {
      const slot = table + i * 8;
      const lo = mem.read32At(slot);
      if ((lo & present) === 0) continue;
      const entryBase = base + i * span;
      if ((lo & FS_PS) !== 0) {
        mem.write32At(slot, 0);
        mem.write32At(slot + 4, 0);
        unmapped += span;
        continue;
      }
      const child = (mem.read32At(slot + 4) & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
      unmapped += this.clear(child, level - 1, entryBase, start, end, freed);
      if (entryBase >= start && entryBase + span <= end) {
        mem.write32At(slot, 0);
        mem.write32At(slot + 4, 0);
        freed.push(child / 4096);
        this.tables--;
      }
    }
    return unmapped;
  }

  /**
   * Reads second-stage dirty bits of leaves in `[vpn, vpn + pages)` into `bitmap` (bit n = the
   * granule of `granulePages` pages at vpn + n·granulePages), clearing them unless `noClear`.
   * Returns true when a D bit was cleared (the IOTLB must then be flushed).
   */
  readDirty(vpn: number, pages: number, granulePages: number, bitmap: Uint8Array, noClear: boolean): boolean {
    return this.dirty(this.root, this.levels, 0, vpn, vpn + pages, granulePages, bitmap, noClear);
  }

  private dirty(
    table: number,
    level: number,
    base: number,
    start: number,
    end: number,
    granule: number,
    bitmap: Uint8Array,
    noClear: boolean,
  ): boolean {
    const mem = this.memory;
    const present = this.presentBits;
    const span = LEVEL_PAGES[level]!;
    const first = Math.max(0, Math.floor((start - base) / span));
    const last = Math.min(511, Math.floor((end - 1 - base) / span));
    let cleared = false;
    if (level === 1) {
      // A run of leaves: read once, harvest and clear D, write back once if anything changed.
      const n = last - first + 1;
      const w = this.runWords;
      mem.readInto(table + first * 8, this.runBytes, 0, n * 8);
      for (let k = 0; k < n; k++) {
        const lo = w[2 * k]!;
        if ((lo & present) === 0 || (lo & SS_D) === 0) continue;
        const g = Math.floor((base + first + k - start) / granule);
        bitmap[g >>> 3]! |= 1 << (g & 7);
        if (!noClear) {
          w[2 * k] = (lo & ~SS_D) >>> 0;
          cleared = true;
        }
      }
      if (cleared) mem.writeFrom(table + first * 8, this.runBytes, 0, n * 8);
      return cleared;
    }
    for (let i = first; i <= last; i++) {
      const slot = table + i * 8;
      const lo = mem.read32At(slot);
      if ((lo & present) === 0) continue;
      const entryBase = base + i * span;
      if ((lo & SS_PS) !== 0) {
        if ((lo & SS_D) === 0) continue;
        const from = Math.max(entryBase, start);
        const to = Math.min(entryBase + span, end);
        // granules g with g·granule + start in [from, to): a 2 MiB or 1 GiB leaf sets whole bytes
        setBits(bitmap, Math.floor((from - start) / granule), Math.ceil((to - start) / granule));
        if (!noClear) {
          mem.write32At(slot, (lo & ~SS_D) >>> 0);
          cleared = true;
        }
        continue;
      }
      const child = (mem.read32At(slot + 4) & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
      if (this.dirty(child, level - 1, entryBase, start, end, granule, bitmap, noClear)) cleared = true;
    }
    return cleared;
  }

  /** Frees every table frame (the table must no longer be in use by the hardware). */
  destroy(): void {
    this.free(this.root, this.levels);
    this.tables = 0;
  }

  private free(table: number, level: number): void {
    const mem = this.memory;
    const present = this.presentBits;
    if (level > 1) {
      for (let i = 0; i < 512; i++) {
        const lo = mem.read32At(table + i * 8);
        if ((lo & present) === 0 || (lo & FS_PS) !== 0) continue;
        this.free((mem.read32At(table + i * 8 + 4) & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0), level - 1);
      }
    }
    mem.freeFrames(table / 4096);
  }
}
