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
  levelShift,
  encodeS1Leaf,
  encodeS2Leaf,
  encodeTableDesc,
  s1StartLevel,
  S2_MEMATTR_OIWB,
} from '../spec/pgtable.js';

const PAGE = 4096;
const TWO32 = 4294967296;
/** Pages under one level-2 (2 MiB) and one level-1 (1 GiB) entry. */
const PAGES_L2 = 512;
const PAGES_L1 = 512 * 512;
/** Bytes mapped by one entry at levels 0-3 (4 KiB granule). */
const LEVEL_SIZE = [2 ** 39, 2 ** 30, 2 ** 21, 2 ** 12] as const;

/** Index of `va` (as hi:lo 32-bit halves) in a level's table, 4 KiB granule: VA[47:39], [38:30], [29:21], [20:12]. */
function levelIndex(hi: number, lo: number, level: number): number {
  switch (level) {
    case 0:
      return (hi >>> 7) & 511;
    case 1:
      return ((lo >>> 30) | (hi << 2)) & 511;
    case 2:
      return (lo >>> 21) & 511;
    default:
      return (lo >>> 12) & 511;
  }
}

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
  /** Entries of the root table. */
  private readonly rootEntries: number;
  private readonly tables = new Set<number>();
  private readonly desc = new Uint32Array(2);
  // Table descriptors written by the map in progress (slot, old lo, old hi) and its new tables.
  private readonly journal: number[] = [];
  private readonly fresh: number[] = [];

  /**
   * @param memory - where the tables live
   * @param options - stage, IAS, OAS, dirty quirk
   */
  constructor(readonly memory: PhysicalMemoryLike, readonly options: IoPgtableOptions) {
    const pfn = memory.allocFrame();
    this.tables.add(pfn);
    this.root = pfn * PAGE;
    this.startLevel = s1StartLevel(options.ias, 12);
    this.rootEntries = 2 ** (options.ias - levelShift(12, this.startLevel));
  }

  /** Frames held by the table. */
  get frames(): number {
    return this.tables.size;
  }

  /** The leaf descriptor template (attributes without the output address) for `prot`. */
  private template(prot: number, page: boolean): Uint32Array {
    const w = (prot & IOMMU_WRITE) !== 0;
    if (this.options.stage === 1) {
      // arm_lpae_prot_to_pte: nG, AP_UNPRIV (no IOMMU_PRIV), AP_RDONLY without write (else DBM
      // with the HD quirk), AttrIndx cacheable, SH ISH, AF.
      return encodeS1Leaf(
        { pa: 0, page, attrIndx: ARM_LPAE_MAIR_ATTR_IDX_CACHE, ap: w ? 0b01 : 0b11, sh: 3, af: true, ng: true, dbm: w && this.options.dirty },
        this.desc,
      );
    }
    return encodeS2Leaf({ pa: 0, page, memAttr: S2_MEMATTR_OIWB, s2ap: ((prot & IOMMU_READ) !== 0 ? 1 : 0) | (w ? 2 : 0), sh: 3, af: true }, this.desc);
  }

  /** True when `pfns[i…i+n)` are consecutive and `pfns[i]` is aligned to `n`. */
  private static contiguous(pfns: Uint32Array, i: number, n: number): boolean {
    const first = pfns[i]!;
    if (first % n !== 0) return false;
    for (let j = 1; j < n; j++) if (pfns[i + j] !== first + j) return false;
    return true;
  }

  /**
   * Maps `count` 4 KiB frames at `iova` with IOMMU_READ/IOMMU_WRITE `prot`, using 1 GiB and
   * 2 MiB blocks where the frames are contiguous and aligned. On a failure (EEXIST, or ENOMEM
   * from a table allocation) every entry written is cleared and every new table freed.
   */
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
    const tpl = this.template(prot, true);
    const pageLo = tpl[0]!;
    const pageHi = tpl[1]!;
    const btpl = this.template(prot, false);
    const blockLo = btpl[0]!;
    const blockHi = btpl[1]!;
    const mem = this.memory;
    this.journal.length = 0;
    this.fresh.length = 0;
    let i = 0;
    try {
      while (i < count) {
        const va = base + i * PAGE;
        const hi = Math.floor(va / TWO32);
        const lo = va >>> 0;
        // A block where the IOVA, the length and the frames allow (levels 1 and 2 with 4K).
        let level = 3;
        if ((lo & 0x3fffffff) === 0 && this.startLevel <= 1 && count - i >= PAGES_L1 && IoPgtable.contiguous(pfns, i, PAGES_L1)) level = 1;
        else if ((lo & 0x1fffff) === 0 && count - i >= PAGES_L2 && IoPgtable.contiguous(pfns, i, PAGES_L2)) level = 2;
        let table = this.tableFor(hi, lo, level);
        while (table < 0) {
          // A table already sits where the block would go (left by an earlier unmap): map one
          // level down inside it instead (the translation is the same).
          level = -table;
          table = this.tableFor(hi, lo, level);
        }
        if (level < 3) {
          const slot = table + levelIndex(hi, lo, level) * 8;
          if ((mem.read32At(slot) & 1) !== 0) throw new IoasidError('EEXIST', 'iova', `0x${va.toString(16)} is already mapped`);
          const pfn = pfns[i]!;
          mem.write32At(slot, ((pfn << 12) | blockLo) >>> 0);
          mem.write32At(slot + 4, ((pfn >>> 20) | blockHi) >>> 0);
          i += level === 1 ? PAGES_L1 : PAGES_L2;
          continue;
        }
        // Pages: the rest of this leaf table in one run.
        let idx = (lo >>> 12) & 511;
        const end = Math.min(count, i + 512 - idx);
        for (let slot = table + idx * 8; i < end; i++, idx++, slot += 8) {
          if ((mem.read32At(slot) & 1) !== 0) {
            throw new IoasidError('EEXIST', 'iova', `0x${(base + i * PAGE).toString(16)} is already mapped`);
          }
          const pfn = pfns[i]!;
          mem.write32At(slot, ((pfn << 12) | pageLo) >>> 0);
          mem.write32At(slot + 4, ((pfn >>> 20) | pageHi) >>> 0);
        }
      }
    } catch (e) {
      // Every leaf in [base, base + i pages) was invalid before this map: clear them, then put
      // back the table slots and free the tables this map allocated.
      if (i > 0) this.unmapLevel(this.root, this.startLevel, 0, base, base + i * PAGE, { unmapped: 0, tablesFreed: false }, false);
      const j = this.journal;
      for (let k = j.length - 3; k >= 0; k -= 3) {
        mem.write32At(j[k]!, j[k + 1]!);
        mem.write32At(j[k]! + 4, j[k + 2]!);
      }
      for (const pfn of this.fresh) {
        this.tables.delete(pfn);
        mem.freeFrames(pfn);
      }
      this.journal.length = 0;
      this.fresh.length = 0;
      throw e;
    }
  }

  /**
   * The address of the level-`level` table covering `hi:lo`, allocating tables on the way. When
   * a valid table descriptor stands where a level-`level` block would go, returns −(level + 1).
   * A block on the way is EEXIST.
   */
  private tableFor(hi: number, lo: number, level: number): number {
    const mem = this.memory;
    let table = this.root;
    for (let l = this.startLevel; l < level; l++) {
      const slot = table + levelIndex(hi, lo, l) * 8;
      const dlo = mem.read32At(slot);
      if ((dlo & 3) === 3) {
        table = (mem.read32At(slot + 4) & 0xffff) * TWO32 + ((dlo & 0xfffff000) >>> 0);
        continue;
      }
      if ((dlo & 1) !== 0) throw new IoasidError('EEXIST', 'iova', `0x${(hi * TWO32 + lo).toString(16)} is inside an existing block`);
      const pfn = mem.allocFrame();
      this.fresh.push(pfn);
      this.tables.add(pfn);
      encodeTableDesc(pfn * PAGE, this.desc);
      this.journal.push(slot, dlo, mem.read32At(slot + 4));
      mem.write32At(slot, this.desc[0]!);
      mem.write32At(slot + 4, this.desc[1]!);
      table = pfn * PAGE;
    }
    if (level < 3) {
      const dlo = mem.read32At(table + levelIndex(hi, lo, level) * 8);
      if ((dlo & 3) === 3) return -(level + 1);
    }
    return table;
  }

  /**
   * Clears every leaf in `[iova, iova + length)` and frees sub-tables wholly inside it. Returns
   * the bytes unmapped and whether any table was freed (the TLBI must then cover walk caches).
   */
  unmap(iova: bigint, length: bigint): { readonly unmapped: number; readonly tablesFreed: boolean } {
    const start = Number(iova);
    const end = start + Number(length);
    const st = { unmapped: 0, tablesFreed: false };
    this.unmapLevel(this.root, this.startLevel, 0, start, end, st, true);
    return st;
  }

  private unmapLevel(
    table: number, level: number, tableBase: number, start: number, end: number,
    st: { unmapped: number; tablesFreed: boolean }, free: boolean,
  ): void {
    const mem = this.memory;
    const size = LEVEL_SIZE[level]!;
    const entries = level === this.startLevel ? this.rootEntries : 512;
    const first = start > tableBase ? Math.floor((start - tableBase) / size) : 0;
    const last = Math.min(entries, Math.ceil((end - tableBase) / size));
    let va = tableBase + first * size;
    for (let i = first, slot = table + first * 8; i < last; i++, slot += 8, va += size) {
      const lo = mem.read32At(slot);
      if ((lo & 1) === 0) continue;
      const inside = va >= start && va + size <= end;
      if (level < 3 && (lo & 3) === 3) {
        const next = descAddr(lo, mem.read32At(slot + 4), 12);
        if (inside && free) {
          st.unmapped += this.freeTable(next, level + 1);
          st.tablesFreed = true;
          mem.write32At(slot, 0);
          mem.write32At(slot + 4, 0);
        } else this.unmapLevel(next, level + 1, va, start, end, st, free);
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
      else bytes += LEVEL_SIZE[level]!;
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
      const size = LEVEL_SIZE[level]!;
      const entries = level === this.startLevel ? this.rootEntries : 512;
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
