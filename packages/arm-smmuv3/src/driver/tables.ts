/**
 * The stream table and the per-master CD tables as Linux's arm-smmu-v3 keeps them: 2-level
 * stream table (SPLIT 8, a 256-STE leaf allocated when a master on it is probed) or linear when
 * SIDSIZE ≤ 8; CD tables linear up to 1024 contexts, else 2-level with 64 KB leaves allocated
 * on demand. Every update goes through {@link EntryWriter}: one changed qword is written in
 * place (hitless); otherwise V is cleared first (break-before-make), each step followed by
 * CFGI + CMD_SYNC.
 */

import { IoasidError, type PhysicalMemoryLike } from '@ioasid/uapi';
import { CD_L2_ENTRIES_64K, encodeL1Cd } from '../spec/cd.js';
import { CMD_CFGI_CD, CMD_CFGI_STE, type SmmuCommand } from '../spec/commands.js';
import { encodeL1Std } from '../spec/strtab.js';
import { encodeSteWords, STE_CFG_ABORT, STE_S1FMT_64K_L2, STE_S1FMT_LINEAR } from '../spec/ste.js';

const PAGE = 4096;

/** Issues commands followed by a CMD_SYNC. */
export type Issuer = (cmds: SmmuCommand[]) => void;

/** Allocates `count` contiguous frames aligned to `count` (a power of two) and returns the PA. */
function allocAligned(memory: PhysicalMemoryLike, bytes: number): { pa: number; pfn: number; count: number } {
  let count = 1;
  while (count * PAGE < bytes) count *= 2;
  const pfn = count === 1 ? memory.allocFrame() : memory.allocFrames(count, count);
  return { pa: pfn * PAGE, pfn, count };
}

/**
 * Writes a 64-byte entry (STE or CD) the way Linux's `arm_smmu_write_entry` orders it, with a
 * configuration invalidation + sync after each step. Returns the number of syncs.
 */
export function writeEntry(memory: PhysicalMemoryLike, addr: number, next: Uint32Array, sync: () => void): number {
  const cur = new Uint32Array(16);
  for (let i = 0; i < 16; i++) cur[i] = memory.read32At(addr + i * 4);
  const changed: number[] = [];
  for (let q = 0; q < 8; q++) if (cur[2 * q] !== next[2 * q] || cur[2 * q + 1] !== next[2 * q + 1]) changed.push(q);
  if (changed.length === 0) return 0;
  const put = (q: number) => {
    memory.write32At(addr + q * 8, next[2 * q]!);
    memory.write32At(addr + q * 8 + 4, next[2 * q + 1]!);
  };
  if (changed.length === 1) {
    put(changed[0]!); // a single 64-bit store is atomic: hitless
    sync();
    return 1;
  }
  let syncs = 0;
  const vBit = cur[0]! & 1 ? 1 : cur[0]! & 0x80000000 ? 0x80000000 : 0;
  if (vBit !== 0) {
    // Break-before-make: V=0 first (STE V is bit 0, CD V is bit 31).
    memory.write32At(addr, (cur[0]! & ~vBit) >>> 0);
    sync();
    syncs++;
  }
  for (let q = 1; q < 8; q++) put(q);
  sync();
  put(0);
  sync();
  return syncs + 2;
}

/** The stream table. */
export class StreamTable {
  /** Physical base (for STRTAB_BASE). */
  readonly base: number;
  /** STRTAB_BASE_CFG value. */
  readonly cfg: number;
  private readonly twoLevel: boolean;
  private readonly leaves = new Map<number, number>();
  private readonly frames: { pfn: number; count: number }[] = [];

  /**
   * @param memory - physical memory
   * @param sidBits - StreamID bits (IDR1.SIDSIZE)
   * @param twoLevel - IDR0.ST_LEVEL allows 2-level and sidBits > 8
   */
  constructor(private readonly memory: PhysicalMemoryLike, readonly sidBits: number, twoLevel: boolean) {
    this.twoLevel = twoLevel && sidBits > 8;
    if (this.twoLevel) {
      const a = allocAligned(memory, 2 ** (sidBits - 8) * 8);
      this.frames.push(a);
      this.base = a.pa;
      this.cfg = (1 << 16) | (8 << 6) | sidBits; // FMT 2-level, SPLIT 8, LOG2SIZE
    } else {
      const a = allocAligned(memory, 2 ** sidBits * 64);
      this.frames.push(a);
      this.base = a.pa;
      this.cfg = sidBits;
      for (let sid = 0; sid < 2 ** sidBits; sid++) this.initSte(a.pa + sid * 64);
    }
  }

  private initSte(addr: number): void {
    // arm_smmu_init_initial_stes: every STE starts as an abort STE.
    const w = encodeSteWords({ V: 1, Config: STE_CFG_ABORT });
    this.memory.write32At(addr, w[0]!);
  }

  /** True when `sid` is inside the table (Linux `arm_smmu_sid_in_range`). */
  sidInRange(sid: number): boolean {
    return Number.isInteger(sid) && sid >= 0 && sid < 2 ** this.sidBits;
  }

  /**
   * Makes `sid`'s STE exist, as Linux does when it probes a master (`arm_smmu_probe_device` →
   * `arm_smmu_insert_master` → `arm_smmu_init_sid_strtab` → `arm_smmu_init_l2_strtab`,
   * drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c): ERANGE for a StreamID outside the table;
   * with a 2-level table, the 256-STE level-2 table of its L1 index is allocated (once, kept
   * for the life of the SMMU), its STEs initialised to abort (`arm_smmu_init_initial_stes`:
   * `disable_bypass` is the default), then the L1STD is written (`arm_smmu_write_strtab_l1_desc`,
   * a plain store in Linux). The SMMU is already enabled when masters are probed, so this
   * driver also invalidates it with CFGI_STE (Leaf=0) + CMD_SYNC, in case the invalid L1STD was
   * looked at before. On ENOMEM nothing has changed.
   */
  initSid(sid: number, issue: Issuer): void {
    if (!this.sidInRange(sid)) throw new IoasidError('ERANGE', 'sid', `StreamID ${String(sid)} is outside the ${String(this.sidBits)}-bit stream table`);
    if (!this.twoLevel) return;
    const l1 = sid >>> 8;
    if (this.leaves.has(l1)) return;
    const a = allocAligned(this.memory, 256 * 64);
    this.frames.push(a);
    const leaf = a.pa;
    for (let i = 0; i < 256; i++) this.initSte(leaf + i * 64);
    const d = encodeL1Std({ span: 9, l2Ptr: leaf }); // Span = SPLIT + 1
    this.memory.write32At(this.base + l1 * 8 + 4, d[1]!);
    this.memory.write32At(this.base + l1 * 8, d[0]!);
    this.leaves.set(l1, leaf);
    issue([{ op: CMD_CFGI_STE, sid, leaf: false }]);
  }

  /** The STE address of `sid`; its level-2 table was made by {@link initSid} when it was probed. */
  steAddr(sid: number): number {
    if (!this.twoLevel) return this.base + sid * 64;
    const leaf = this.leaves.get(sid >>> 8);
    if (leaf === undefined) throw new IoasidError('ENODEV', 'sid', `StreamID ${String(sid)} was not probed: it has no level-2 stream table`);
    return leaf + (sid & 0xff) * 64;
  }

  /** Frees every frame of the table (a driver whose construction failed). */
  free(): void {
    for (const f of this.frames) this.memory.freeFrames(f.pfn, f.count);
    this.frames.length = 0;
    this.leaves.clear();
  }

  /** Writes an STE (hitless when possible); returns the number of CMD_SYNCs. */
  write(sid: number, ste: Uint32Array, issue: Issuer): number {
    const addr = this.steAddr(sid);
    return writeEntry(this.memory, addr, ste, () => {
      issue([{ op: CMD_CFGI_STE, sid, leaf: true }]);
    });
  }
}

/** A master's CD table. */
export class CdTable {
  /** STE.S1Fmt. */
  readonly s1Fmt: number;
  /** STE.S1CDMax. */
  readonly s1CdMax: number;
  /** STE.S1ContextPtr. */
  readonly ptr: number;
  private readonly leaves = new Map<number, number>();
  private readonly frames: { pfn: number; count: number }[] = [];

  /**
   * @param memory - physical memory
   * @param sid - the master's StreamID
   * @param ssidBits - the master's SubstreamID bits
   * @param cd2l - IDR0.CD2L
   */
  constructor(private readonly memory: PhysicalMemoryLike, private readonly sid: number, ssidBits: number, cd2l: boolean) {
    this.s1CdMax = ssidBits;
    const linear = ssidBits <= 10 || !cd2l;
    this.s1Fmt = linear ? STE_S1FMT_LINEAR : STE_S1FMT_64K_L2;
    const bytes = linear ? 2 ** ssidBits * 64 : 2 ** (ssidBits - 10) * 8;
    const a = allocAligned(memory, bytes);
    this.frames.push(a);
    this.ptr = a.pa;
  }

  /** The CD address of `ssid` (allocating its leaf when `alloc`), or -1. */
  cdAddr(ssid: number, alloc: boolean, issue: Issuer): number {
    if (this.s1Fmt === STE_S1FMT_LINEAR) return this.ptr + ssid * 64;
    const l1 = Math.floor(ssid / CD_L2_ENTRIES_64K);
    let leaf = this.leaves.get(l1);
    if (leaf === undefined) {
      if (!alloc) return -1;
      const a = allocAligned(this.memory, CD_L2_ENTRIES_64K * 64);
      this.frames.push(a);
      leaf = a.pa;
      const d = encodeL1Cd({ V: 1, L2Ptr: leaf });
      this.memory.write32At(this.ptr + l1 * 8 + 4, d[1]!);
      this.memory.write32At(this.ptr + l1 * 8, d[0]!);
      this.leaves.set(l1, leaf);
      issue([{ op: CMD_CFGI_CD, sid: this.sid, ssid, leaf: false }]); // an invalid L1CD may be cached
    }
    return leaf + (ssid % CD_L2_ENTRIES_64K) * 64;
  }

  /** Writes a CD (hitless when possible); returns the number of CMD_SYNCs. */
  write(ssid: number, cd: Uint32Array, issue: Issuer): number {
    const addr = this.cdAddr(ssid, true, issue);
    return writeEntry(this.memory, addr, cd, () => {
      issue([{ op: CMD_CFGI_CD, sid: this.sid, ssid, leaf: true }]);
    });
  }

  /** Clears a CD (V=0). */
  clear(ssid: number, issue: Issuer): void {
    const addr = this.cdAddr(ssid, false, issue);
    if (addr < 0) return;
    writeEntry(this.memory, addr, new Uint32Array(16), () => {
      issue([{ op: CMD_CFGI_CD, sid: this.sid, ssid, leaf: true }]);
    });
  }

  /** Frees the table's frames. */
  free(): void {
    for (const f of this.frames) this.memory.freeFrames(f.pfn, f.count);
    this.frames.length = 0;
    this.leaves.clear();
  }
}
