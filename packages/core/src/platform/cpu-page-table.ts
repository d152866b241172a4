/**
 * A process's CPU page table in physical memory: a 4 KiB-granule radix table of 8-byte
 * entries, 9 bits per level, in the format the platform's CPU uses (x86-64 or AArch64, given
 * by a backend as a {@link CpuPageTableFormat}). This is the table SVA hands to an IOMMU.
 */

import type { CpuPageTableFormat } from '@ioasid/uapi';
import type { PhysicalMemory } from './physical-memory.js';

const PAGE = 4096;

/** A 4-level (48-bit) CPU page table kept in physical memory. */
export class CpuPageTable {
  /** Physical address of the root table. */
  readonly root: number;
  private readonly scratch = new Uint32Array(2);
  private readonly tables: number[] = [];

  /**
   * @param memory - where the table lives
   * @param format - the CPU's entry encodings
   */
  constructor(
    private readonly memory: PhysicalMemory,
    private readonly format: CpuPageTableFormat,
  ) {
    const pfn = memory.allocFrame();
    this.tables.push(pfn);
    this.root = pfn * PAGE;
  }

  /** Writes the leaf for the page at `vaddr` (allocating tables on the way). */
  map(vpn: number, pfn: number, writable: boolean): void {
    let table = this.root;
    for (let level = this.format.levels - 1; level > 0; level--) {
      const idx = Math.floor(vpn / 2 ** (9 * level)) % 512;
      const slot = table + idx * 8;
      const lo = this.memory.read32At(slot);
      const hi = this.memory.read32At(slot + 4);
      if (lo === 0 && hi === 0) {
        const next = this.memory.allocFrame();
        this.tables.push(next);
        this.format.table(next * PAGE, this.scratch);
        this.memory.write32At(slot, this.scratch[0]!);
        this.memory.write32At(slot + 4, this.scratch[1]!);
        table = next * PAGE;
      } else {
        // Both formats keep the next-level address in bits 12..51.
        table = (hi & 0xfffff) * 2 ** 32 + ((lo >>> 12) << 12 >>> 0);
      }
    }
    const slot = table + (vpn % 512) * 8;
    this.format.leaf(pfn * PAGE, writable, false, this.scratch);
    this.memory.write32At(slot, this.scratch[0]!);
    this.memory.write32At(slot + 4, this.scratch[1]!);
  }

  /** Clears the leaf of a page (tables are kept until the table is destroyed). */
  unmap(vpn: number): void {
    let table = this.root;
    for (let level = this.format.levels - 1; level > 0; level--) {
      const idx = Math.floor(vpn / 2 ** (9 * level)) % 512;
      const slot = table + idx * 8;
      const lo = this.memory.read32At(slot);
      const hi = this.memory.read32At(slot + 4);
      if (lo === 0 && hi === 0) return;
      table = (hi & 0xfffff) * 2 ** 32 + ((lo >>> 12) << 12 >>> 0);
    }
    const slot = table + (vpn % 512) * 8;
    this.memory.write32At(slot, 0);
    this.memory.write32At(slot + 4, 0);
  }

  /** Frees every table frame. */
  destroy(): void {
    for (const pfn of this.tables) this.memory.freeFrames(pfn);
    this.tables.length = 0;
  }
}
