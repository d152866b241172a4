/**
 * An Arm LPAE (VMSAv8-64) I/O page table with a 4 KiB granule, as Linux's io-pgtable-arm builds
 * it (ARM_64_LPAE_S1 or ARM_64_LPAE_S2): 4K/2M/1G leaves where frames are contiguous and
 * aligned, tables allocated on the way, EEXIST over a live entry, ERANGE beyond IAS/OAS. A map
 * that fails (ENOMEM from the frame allocator) restores every entry it wrote and frees every
 * table it allocated. Descriptors are read and written as 32-bit halves.
 */

import { IoasidError, IOMMU_READ, IOMMU_WRITE, type PhysicalMemoryLike } from '@ioasid/uapi';
import {
  ARM_LPAE_MAIR_ATTR_IDX_CACHE,
  DESC_HI_DBM,
  S1_AP_RDONLY,
  descAddr,
  encodeS1Leaf,
  encodeS2Leaf,
  encodeTableDesc,
  levelShift,
  s1StartLevel,
  S2_MEMATTR_OIWB,
} from '../spec/pgtable.js';

const PAGE = 4096;

/** Options of an {@link IoPgtable}. */
export interface IoPgtableOptions {
  /** Stage 1 (CD.TTB0) or stage 2 (STE.S2TTB). */
  readonly stage: 1 | 2;
  /** Input address bits. */
  readonly ias: number;
  /** Output address bits. */
  readonly oas: number;
  /** IO_PGTABLE_QUIRK_ARM_HD: writable leaves carry DBM (stage 1 dirty tracking). */
  readonly dirty: boolean;
}

/** A Linux-style LPAE I/O page table in physical memory. */
export class IoPgtable {
  /** Physical address of the root table. */
  readonly root: number;
  /** First level. */
  readonly startLevel: number;
  private readonly tables = new Set<number>();
  private readonly desc = new Uint32Array(2);

  /**
   * @param memory - where the tables live
   * @param options - stage, IAS, OAS, dirty quirk
   */
  constructor(readonly memory: PhysicalMemoryLike, readonly options: IoPgtableOptions) {
    const pfn = memory.allocFrame();
    this.tables.add(pfn);
    this.root = pfn * PAGE;
    this.startLevel = s1StartLevel(options.ias, 12);
  }

  /** Frames held by the table. */
  get frames(): number {
    return this.tables.size;
  }

  private index(va: number, level: number): number {
    const idx = Math.floor(va / 2 ** levelShift(12, level));
    return level === this.startLevel ? idx : idx % 512;
  }

  /** Maps `count` 4 KiB frames at `iova` with IOMMU_READ/IOMMU_WRITE `prot`, using blocks where possible. */
  map(iova: bigint, pfns: Uint32Array, count: number, prot: number): void {
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) throw new IoasidError('EINVAL', 'prot', 'a mapping needs read or write permission');
    if (iova % BigInt(PAGE) !== 0n) throw new IoasidError('EINVAL', 'iova', 'iova is not page aligned');
    if (iova < 0n || iova + BigInt(count) * BigInt(PAGE) > 1n << BigInt(this.options.ias)) {
      throw new IoasidError('ERANGE', 'iova', `the range is beyond the ${this.options.ias}-bit input address size`);
    }
    const limit = 2 ** (this.options.oas - 12);
    for (let i = 0; i < count; i++) {
      if (pfns[i]! >= limit) throw new IoasidError('ERANGE', 'pfns', `frame ${pfns[i]} is beyond the ${this.options.oas}-bit output address size`);
    }
    const base = Number(iova);
    const journal: number[] = []; // slot, lo, hi triples
    const fresh: number[] = [];
    try {
      let i = 0;
      while (i < count) {
        const va = base + i * PAGE;
        let level = 3;
        for (const l of [1, 2]) {
          const pages = 2 ** (levelShift(12, l) - 12);
          if (l < this.startLevel || i + pages > count || va % (pages * PAGE) !== 0 || pfns[i]! % pages !== 0) continue;
          let ok = true;
          for (let j = 1; j < pages && ok; j++) ok = pfns[i + j] === pfns[i]! + j;
          if (ok) {
            level = l;
            break;
          }
        }
        this.install(va, pfns[i]! * PAGE, level, prot, journal, fresh);
        i += 2 ** (levelShift(12, level) - 12);
      }
    } catch (e) {
      for (let k = journal.length - 3; k >= 0; k -= 3) {
        this.memory.write32At(journal[k]!, journal[k + 1]!);
        this.memory.write32At(journal[k]! + 4, journal[k + 2]!);
      }
      for (const pfn of fresh) {
        this.tables.delete(pfn);
        this.memory.freeFrames(pfn);
      }
      throw e;
    }
  }

  private install(va: number, pa: number, level: number, prot: number, journal: number[], fresh: number[]): void {
    const mem = this.memory;
    let table = this.root;
    for (let l = this.startLevel; l < level; l++) {
      const slot = table + this.index(va, l) * 8;
      const lo = mem.read32At(slot);
      const hi = mem.read32At(slot + 4);
      if ((lo & 3) === 3) {
        table = descAddr(lo, hi, 12);
        continue;
      }
      if ((lo & 1) !== 0) throw new IoasidError('EEXIST', 'iova', `0x${va.toString(16)} is inside an existing block`);
      const pfn = mem.allocFrame();
      fresh.push(pfn);
      this.tables.add(pfn);
      encodeTableDesc(pfn * PAGE, this.desc);
      journal.push(slot, lo, hi);
      mem.write32At(slot, this.desc[0]!);
      mem.write32At(slot + 4, this.desc[1]!);
      table = pfn * PAGE;
    }
    const slot = table + this.index(va, level) * 8;
    const lo = mem.read32At(slot);
    const hi = mem.read32At(slot + 4);
    if ((lo & 1) !== 0) throw new IoasidError('EEXIST', 'iova', `0x${va.toString(16)} is already mapped`);
    const page = level === 3;
    const w = (prot & IOMMU_WRITE) !== 0;
    if (this.options.stage === 1) {
      // arm_lpae_prot_to_pte: nG, AP_UNPRIV (no IOMMU_PRIV), AP_RDONLY without write (else DBM
      // with the HD quirk), AttrIndx cacheable, SH ISH, AF.
      encodeS1Leaf(
        { pa, page, attrIndx: ARM_LPAE_MAIR_ATTR_IDX_CACHE, ap: w ? 0b01 : 0b11, sh: 3, af: true, ng: true, dbm: w && this.options.dirty },
        this.desc,
      );
    } else {
      encodeS2Leaf({ pa, page, memAttr: S2_MEMATTR_OIWB, s2ap: ((prot & IOMMU_READ) !== 0 ? 1 : 0) | (w ? 2 : 0), sh: 3, af: true }, this.desc);
    }
    journal.push(slot, lo, hi);
    mem.write32At(slot, this.desc[0]!);
    mem.write32At(slot + 4, this.desc[1]!);
  }

  /**
   * Clears every leaf in `[iova, iova + length)` and frees sub-tables wholly inside it. Returns
   * the bytes unmapped and whether any table was freed (the TLBI must then cover walk caches).
   */
  unmap(iova: bigint, length: bigint): { readonly unmapped: number; readonly tablesFreed: boolean } {
    const start = Number(iova);
    const end = start + Number(length);
    const st = { unmapped: 0, tablesFreed: false };
    this.unmapLevel(this.root, this.startLevel, 0, start, end, st);
    return st;
  }

  private unmapLevel(table: number, level: number, tableBase: number, start: number, end: number, st: { unmapped: number; tablesFreed: boolean }): void {
    const mem = this.memory;
    const size = 2 ** levelShift(12, level);
    const entries = level === this.startLevel ? 2 ** (this.options.ias - levelShift(12, level)) : 512;
    const first = Math.max(0, Math.floor((start - tableBase) / size));
    for (let i = first; i < entries; i++) {
      const va = tableBase + i * size;
      if (va >= end) break;
      const slot = table + i * 8;
      const lo = mem.read32At(slot);
      if ((lo & 1) === 0) continue;
      const hi = mem.read32At(slot + 4);
      const inside = va >= start && va + size <= end;
      if (level < 3 && (lo & 3) === 3) {
        const next = descAddr(lo, hi, 12);
        if (inside) {
          st.unmapped += this.freeTable(next, level + 1);
          st.tablesFreed = true;
          mem.write32At(slot, 0);
          mem.write32At(slot + 4, 0);
        } else this.unmapLevel(next, level + 1, va, start, end, st);
        continue;
      }
      // A leaf: a partial unmap of a large leaf is refused (Linux v6.13+ returns 0 for it).
      if (!inside) continue;
      mem.write32At(slot, 0);
      mem.write32At(slot + 4, 0);
      st.unmapped += size;
    }
  }

  private freeTable(table: number, level: number): number {
    const mem = this.memory;
    let bytes = 0;
    for (let i = 0; i < 512; i++) {
      const lo = mem.read32At(table + i * 8);
      if ((lo & 1) === 0) continue;
      if (level < 3 && (lo & 3) === 3) bytes += this.freeTable(descAddr(lo, mem.read32At(table + i * 8 + 4), 12), level + 1);
      else bytes += 2 ** levelShift(12, level);
    }
    const pfn = table / PAGE;
    this.tables.delete(pfn);
    mem.freeFrames(pfn);
    return bytes;
  }

  /**
   * Visits every leaf overlapping `[iova, iova+length)`: `fn(slot, va, size, lo, hi)`. Used by
   * dirty tracking (iopte_writeable_dirty: DBM set and AP_RDONLY clear).
   */
  walkLeaves(iova: number, length: number, fn: (slot: number, va: number, size: number, lo: number, hi: number) => void): void {
    const visit = (table: number, level: number, base: number) => {
      const size = 2 ** levelShift(12, level);
      const entries = level === this.startLevel ? 2 ** (this.options.ias - levelShift(12, level)) : 512;
      const first = Math.max(0, Math.floor((iova - base) / size));
      for (let i = first; i < entries; i++) {
        const va = base + i * size;
        if (va >= iova + length) break;
        const slot = table + i * 8;
        const lo = this.memory.read32At(slot);
        if ((lo & 1) === 0) continue;
        const hi = this.memory.read32At(slot + 4);
        if (level < 3 && (lo & 3) === 3) visit(descAddr(lo, hi, 12), level + 1, va);
        else fn(slot, va, size, lo, hi);
      }
    };
    visit(this.root, this.startLevel, 0);
  }

  /** Frees every table frame. */
  free(): void {
    for (const pfn of this.tables) this.memory.freeFrames(pfn);
    this.tables.clear();
  }
}

/** True when a stage-1 leaf is writable-dirty (DBM set, AP_RDONLY clear). */
export function leafDirty(lo: number, hi: number): boolean {
  return (hi & DESC_HI_DBM) !== 0 && (lo & S1_AP_RDONLY) === 0;
}
