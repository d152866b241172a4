/**
 * An I/O page table the driver builds in physical memory, in the first-stage (x86-64) or
 * second-stage format, as Linux's generic page-table code does for VT-d: 4 KiB tables of 512
 * entries, large leaves where frames are contiguous and aligned, map with rollback, unmap that
 * hands back the tables it emptied (freed only after the IOTLB flush), dirty-bit harvesting.
 * Map and unmap loops use numbers only.
 */

import { IoasidError, type PhysicalMemoryLike } from '@ioasid/uapi';
import { FS_A, FS_D, FS_P, FS_PS, FS_RW, FS_TABLE_BITS, FS_US } from '../spec/first-stage.js';
import { SS_D, SS_PS, SS_R, SS_W } from '../spec/second-stage.js';
import { TWO32 } from '../spec/fields.js';

/** The two VT-d page-table formats. */
export type PageTableFormat = 'first-stage' | 'second-stage';

const LEVEL_PAGES = [1, 1, 512, 262144, 134217728, 68719476736];

function idx(vpn: number, level: number): number {
  return Math.floor(vpn / LEVEL_PAGES[level]!) % 512;
}

/** A page table and the frames it uses. */
export class IoPageTable {
  /** Physical address of the root table. */
  readonly root: number;
  /** Table frames in use. */
  tables = 1;

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

  private present(lo: number): boolean {
    return this.format === 'first-stage' ? (lo & FS_P) !== 0 : (lo & (SS_R | SS_W)) !== 0;
  }

  private tableLo(pa: number): number {
    return ((pa % TWO32) | (this.format === 'first-stage' ? FS_TABLE_BITS : SS_R | SS_W)) >>> 0;
  }

  private leafLo(pa: number, read: boolean, write: boolean, large: boolean): number {
    let lo = pa % TWO32;
    if (this.format === 'first-stage') lo |= FS_P | FS_US | FS_A | (write ? FS_RW | FS_D : 0) | (large ? FS_PS : 0);
    else lo |= (read ? SS_R : 0) | (write ? SS_W : 0) | (large ? SS_PS : 0);
    return lo >>> 0;
  }

  private contiguous(pfns: Uint32Array, at: number, n: number): boolean {
    const first = pfns[at]!;
    for (let k = 1; k < n; k++) if (pfns[at + k] !== first + k) return false;
    return true;
  }

  /**
   * Maps `count` pages from `vpn` to `pfns[0…count)`. All or nothing: on ENOMEM (table
   * allocation) or EEXIST (something already mapped) every leaf written and every table
   * allocated by this call is removed again.
   */
  map(vpn: number, pfns: Uint32Array, count: number, read: boolean, write: boolean): void {
    const mem = this.memory;
    const newTables: number[] = []; // pairs: parent slot, table address
    const leaves: number[] = [];
    let lastRegion = -1;
    let lastTable = 0;
    try {
      let i = 0;
      while (i < count) {
        const v = vpn + i;
        const pfn = pfns[i]!;
        let size = 0;
        if ((this.largePages & 2) !== 0 && v % 262144 === 0 && pfn % 262144 === 0 && count - i >= 262144 && this.contiguous(pfns, i, 262144)) size = 2;
        else if ((this.largePages & 1) !== 0 && v % 512 === 0 && pfn % 512 === 0 && count - i >= 512 && this.contiguous(pfns, i, 512)) size = 1;
        let table: number;
        if (size === 0 && Math.floor(v / 512) === lastRegion) table = lastTable;
        else {
          table = this.root;
          for (let level = this.levels; level > size + 1; level--) {
            const slot = table + idx(v, level) * 8;
            const lo = mem.read32At(slot);
            const hi = mem.read32At(slot + 4);
            if (!this.present(lo)) {
              const next = mem.allocFrame() * 4096;
              this.tables++;
              newTables.push(slot, next);
              mem.write32At(slot + 4, Math.floor(next / TWO32));
              mem.write32At(slot, this.tableLo(next));
              table = next;
            } else {
              if ((lo & FS_PS) !== 0) throw new IoasidError('EEXIST', 'iova', `IOVA page 0x${v.toString(16)} is already mapped`);
              table = (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
            }
          }
          if (size === 0) {
            lastRegion = Math.floor(v / 512);
            lastTable = table;
          }
        }
        const slot = table + idx(v, size + 1) * 8;
        if (this.present(mem.read32At(slot))) throw new IoasidError('EEXIST', 'iova', `IOVA page 0x${v.toString(16)} is already mapped`);
        const pa = pfn * 4096;
        mem.write32At(slot + 4, Math.floor(pa / TWO32));
        mem.write32At(slot, this.leafLo(pa, read, write, size > 0));
        leaves.push(slot);
        i += LEVEL_PAGES[size + 1]!;
      }
    } catch (e) {
      for (const slot of leaves) {
        mem.write32At(slot, 0);
        mem.write32At(slot + 4, 0);
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

  private clear(table: number, level: number, base: number, start: number, end: number, freed: number[]): number {
    const mem = this.memory;
    const span = LEVEL_PAGES[level]!;
    const first = Math.max(0, Math.floor((start - base) / span));
    const last = Math.min(511, Math.floor((end - 1 - base) / span));
    let unmapped = 0;
    for (let i = first; i <= last; i++) {
      const slot = table + i * 8;
      const lo = mem.read32At(slot);
      if (!this.present(lo)) continue;
      const entryBase = base + i * span;
      if (level === 1 || (lo & FS_PS) !== 0) {
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
    const span = LEVEL_PAGES[level]!;
    const first = Math.max(0, Math.floor((start - base) / span));
    const last = Math.min(511, Math.floor((end - 1 - base) / span));
    let cleared = false;
    for (let i = first; i <= last; i++) {
      const slot = table + i * 8;
      const lo = mem.read32At(slot);
      if (!this.present(lo)) continue;
      const entryBase = base + i * span;
      if (level === 1 || (lo & SS_PS) !== 0) {
        if ((lo & SS_D) === 0) continue;
        const from = Math.max(entryBase, start);
        const to = Math.min(entryBase + span, end);
        for (let g = Math.floor((from - start) / granule); g * granule + start < to; g++) bitmap[g >>> 3]! |= 1 << (g & 7);
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
    if (level > 1) {
      for (let i = 0; i < 512; i++) {
        const lo = mem.read32At(table + i * 8);
        if (!this.present(lo) || (lo & FS_PS) !== 0) continue;
        this.free((mem.read32At(table + i * 8 + 4) & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0), level - 1);
      }
    }
    mem.freeFrames(table / 4096);
  }
}
