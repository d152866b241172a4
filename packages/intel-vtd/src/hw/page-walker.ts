/**
 * First-stage (x86-64) and second-stage walks over physical memory, and nested walks where
 * every first-stage table address and the final output go through the second stage (VT-d
 * spec §3.6–3.8). Walks allocate nothing: results are returned as a number (the physical
 * address of the 4 KiB page, or −reason) with the page size and permissions left in fields.
 * A/D bits are written only after a translation succeeded.
 */

import type { PhysicalMemoryLike } from '@ioasid/uapi';
import * as fields from '../spec/fields.js';
import * as firstStage from '../spec/first-stage.js';
import * as secondStage from '../spec/second-stage.js';
import * as faults from '../spec/faults.js';
import type { Capabilities } from './capabilities.js';
import * as iotlb from './iotlb.js';
import type { PagingStructureCache } from './paging-structure-cache.js';

// What the walks use at every level, bound once as module-local constants. Natively an import
// binding costs no more than a local; under a module runner that implements live bindings as
// getters (vitest's, which runs the tests and the benchmarks) every read would be a call.
const { entryAddress } = fields;
const { FS_A, FS_D, FS_EA, FS_PS, fsEntryReserved } = firstStage;
const { SS_A, SS_D, SS_PS, SS_R, SS_W, ssEntryReserved } = secondStage;
const { SM_FAULT } = faults;
const { PERM_R, PERM_U, PERM_W, PERM_XD } = iotlb;

const LEVEL_PAGES = [1, 1, 512, 262144, 134217728, 68719476736];

/**
 * The index in a table at `level` (1 = leaf table) of the page whose number has the 32-bit
 * halves `lo`/`hi`: bits 9·(level−1) … 9·level−1 of the page number, with integer ops only.
 */
function index(lo: number, hi: number, level: number): number {
  const sh = 9 * (level - 1);
  if (sh <= 23) return (lo >>> sh) & 511;
  if (sh >= 32) return (hi >>> (sh - 32)) & 511;
  return ((lo >>> sh) | (hi << (32 - sh))) & 511;
}

/** The address of the 4 KiB page of `vpn` (low half `lo`) inside a leaf at `level` mapping `addr`. */
function leafPage(addr: number, lo: number, level: number): number {
  if (level === 1) return addr;
  const pages = LEVEL_PAGES[level]!; // 2^9 or 2^18: both offsets lie in the low halves
  return addr - ((addr >>> 0) & (pages * 4096 - 1)) + (lo & (pages - 1)) * 4096;
}

/** Request attributes a first-stage walk checks. */
export interface FsRequest {
  /** A write. */
  write: boolean;
  /** A user (non-privileged) request. */
  user: boolean;
  /** An execute request. */
  exec: boolean;
}

/** The walker of one unit. */
export class PageWalker {
  /** Page-size index (0/1/2) of the last successful walk. */
  size = 0;
  /** Permissions (PERM_*) of the last successful walk. */
  perm = 0;
  /** Second-stage permission bits (SS_R | SS_W) of the last second-stage walk. */
  private ssPerm = 0;
  private ssSize = 0;
  private readonly ssSlots = new Float64Array(6);
  private readonly ssLos = new Uint32Array(6);
  private ssN = 0;
  private readonly fsSlots = new Float64Array(6);
  private readonly fsLos = new Uint32Array(6);
  private readonly fsSlotWritable = new Uint8Array(6);
  private fsN = 0;

  /**
   * @param memory - physical memory
   * @param caps - the unit's capabilities
   * @param psc - the paging-structure cache
   */
  constructor(
    private readonly memory: PhysicalMemoryLike,
    private readonly caps: Capabilities,
    private readonly psc: PagingStructureCache,
  ) {}

  /**
   * Second-stage walk of `vpn` from `root` with `levels` levels. Returns the physical address
   * of the 4 KiB page or −reason (0x7B unreadable root table, 0x78 unreadable entry, 0x79 not
   * present, 0x7A reserved bits). Leaves the size, permissions and the walked entries for
   * {@link ssCommit}. `pscTag` ≥ 0 consults and fills the paging-structure cache.
   */
  ssWalk(root: number, levels: number, vpn: number, pscTag: number): number {
    const mem = this.memory;
    let table = root;
    let perm = SS_R | SS_W;
    this.ssN = 0;
    let level = levels;
    const vlo = vpn >>> 0;
    const vhi = (vpn - vlo) / 4294967296;
    if (pscTag >= 0 && levels > 1) {
      const psc = this.psc;
      if (psc.lookup(pscTag, vpn)) {
        table = psc.hitTable;
        perm = psc.hitPerm;
        level = 1;
      }
    }
    for (; level >= 1; level--) {
      const ea = table + index(vlo, vhi, level) * 8;
      if (!mem.contains(ea, 8)) return level === levels ? -SM_FAULT.SS_INVALID_PTR : -SM_FAULT.SS_ENTRY_ACCESS;
      // The entry's two dwords straight from the table's frame (a frame never written is zeros).
      const words = mem.frameWords(Math.floor(ea / 4096));
      const wi = (ea & 0xfff) >>> 2;
      const lo = words === undefined ? 0 : words[wi]!;
      const hi = words === undefined ? 0 : words[wi + 1]!;
      if ((lo & 3) === 0) return -SM_FAULT.SS_ENTRY_PERMISSION;
      if (ssEntryReserved(lo, hi, level, this.caps.haw, this.caps.sllps, this.caps.sc)) return -SM_FAULT.SS_ENTRY_RESERVED;
      perm &= lo & 3;
      this.ssSlots[this.ssN] = ea;
      this.ssLos[this.ssN++] = lo;
      const addr = entryAddress(lo, hi);
      if (level === 1 || (lo & SS_PS) !== 0) {
        this.ssPerm = perm;
        this.ssSize = level - 1;
        return leafPage(addr, vlo, level);
      }
      if (level === 2 && pscTag >= 0) this.psc.insert(pscTag, vpn, addr, perm & (lo & 3));
      table = addr;
    }
    return -SM_FAULT.SS_ENTRY_PERMISSION; // unreachable: level 1 is always a leaf
  }

  /** Sets A on the entries of the last second-stage walk, and D on its leaf for a write (SSADE). */
  ssCommit(write: boolean): void {
    const mem = this.memory;
    for (let i = 0; i < this.ssN; i++) {
      const lo = this.ssLos[i]!;
      const leaf = i === this.ssN - 1;
      const want = (lo | SS_A | (leaf && write ? SS_D : 0)) >>> 0;
      if (want !== lo) mem.write32At(this.ssSlots[i]!, want);
    }
  }

  /**
   * A second-stage-only translation of `vpn` for a request. Returns the physical page address
   * or −reason (adds 0x85/0x86 for missing write/read permission).
   */
  secondStage(root: number, levels: number, vpn: number, write: boolean, ssade: boolean, pscTag: number): number {
    const pa = this.ssWalk(root, levels, vpn, pscTag);
    if (pa < 0) return pa;
    if (write ? (this.ssPerm & SS_W) === 0 : (this.ssPerm & SS_R) === 0) return write ? -SM_FAULT.NO_WRITE : -SM_FAULT.NO_READ;
    if (ssade) this.ssCommit(write);
    this.size = this.ssSize;
    this.perm = (this.ssPerm & SS_R ? PERM_R : 0) | (this.ssPerm & SS_W ? PERM_W : 0);
    return pa;
  }

  /** Whether the leaf of the last second-stage walk had D set before this access. */
  ssLeafWasDirty(): boolean {
    return this.ssN > 0 && (this.ssLos[this.ssN - 1]! & SS_D) !== 0;
  }

  /**
   * A first-stage translation (4- or 5-level x86-64 paging) of `vpn`, optionally nested over
   * a second stage (`ssLevels` > 0). Returns the physical page address or −reason.
   */
  firstStage(
    root: number,
    levels: number,
    vpn: number,
    req: FsRequest,
    flags: { readonly wpe: boolean; readonly eafe: boolean },
    nested: { readonly ssRoot: number; readonly ssLevels: number; readonly ssPages: number; readonly ssade: boolean } | undefined,
    pscTag: number,
  ): number {
    const mem = this.memory;
    const caps = this.caps;
    let table = root;
    let rw = 1;
    let us = 1;
    let xd = 0;
    this.fsN = 0;
    let level = levels;
    let size = 0;
    let out = -1;
    const vlo = vpn >>> 0;
    const vhi = (vpn - vlo) / 4294967296;
    if (nested === undefined && pscTag >= 0) {
      const psc = this.psc;
      if (psc.lookup(pscTag, vpn)) {
        const p = psc.hitPerm;
        table = psc.hitTable;
        rw = p & 1;
        us = (p >> 1) & 1;
        xd = (p >> 2) & 1;
        level = 1;
      }
    }
    const ssLimitPages = nested === undefined ? 0 : nested.ssPages;
    for (; level >= 1; level--) {
      let hpa = table;
      let slotWritable = 1;
      if (nested !== undefined) {
        const gpn = table / 4096;
        if (gpn >= ssLimitPages) return -SM_FAULT.FS_ADDRESS_BEYOND_MGAW;
        const r = this.ssWalk(nested.ssRoot, nested.ssLevels, gpn, -1);
        if (r === -SM_FAULT.SS_ENTRY_PERMISSION || (r >= 0 && (this.ssPerm & SS_R) === 0)) {
          return level === levels ? -SM_FAULT.FS_PML4_READ_NESTED : -SM_FAULT.FS_ENTRY_READ_NESTED;
        }
        if (r < 0) return r;
        if (nested.ssade) this.ssCommit(false);
        slotWritable = (this.ssPerm & SS_W) !== 0 ? 1 : 0;
        hpa = r;
      }
      const ea = hpa + index(vlo, vhi, level) * 8;
      if (!mem.contains(ea, 8)) return level === levels ? -SM_FAULT.FS_PML4_ACCESS : -SM_FAULT.FS_ENTRY_ACCESS;
      const words = mem.frameWords(Math.floor(ea / 4096));
      const wi = (ea & 0xfff) >>> 2;
      const lo = words === undefined ? 0 : words[wi]!;
      const hi = words === undefined ? 0 : words[wi + 1]!;
      if ((lo & 1) === 0) return -SM_FAULT.FS_ENTRY_NOT_PRESENT;
      if (fsEntryReserved(lo, hi, level, nested === undefined ? caps.haw : 52, caps.fl1gp)) return -SM_FAULT.FS_ENTRY_RESERVED;
      rw &= (lo >>> 1) & 1;
      us &= (lo >>> 2) & 1;
      xd |= hi >>> 31;
      this.fsSlots[this.fsN] = ea;
      this.fsLos[this.fsN] = lo;
      this.fsSlotWritable[this.fsN++] = slotWritable;
      const addr = entryAddress(lo, hi);
      if (level === 1 || (lo & FS_PS) !== 0) {
        size = level - 1;
        out = leafPage(addr, vlo, level);
        break;
      }
      if (level === 2 && nested === undefined && pscTag >= 0) this.psc.insert(pscTag, vpn, addr, rw | (us << 1) | (xd << 2));
      table = addr;
    }
    if (req.user && us === 0) return -SM_FAULT.FS_USER_PRIVILEGE;
    if (req.write && rw === 0 && (req.user || flags.wpe)) return -SM_FAULT.NO_WRITE;
    if (req.exec && xd !== 0) return -SM_FAULT.NO_EXECUTE;
    let perm = PERM_R | (rw !== 0 ? PERM_W : 0) | (us !== 0 ? PERM_U : 0) | (xd !== 0 ? PERM_XD : 0);
    if (nested !== undefined) {
      const gpn = out / 4096;
      if (gpn >= ssLimitPages) return -SM_FAULT.SS_BEYOND_AW;
      const r = this.ssWalk(nested.ssRoot, nested.ssLevels, gpn, -1);
      if (r < 0) return r;
      if (req.write ? (this.ssPerm & SS_W) === 0 : (this.ssPerm & SS_R) === 0) {
        return req.write ? -SM_FAULT.NO_WRITE : -SM_FAULT.NO_READ;
      }
      if ((this.ssPerm & SS_W) === 0) perm &= ~PERM_W;
      if (nested.ssade) this.ssCommit(req.write);
      size = Math.min(size, this.ssSize);
      out = r;
    }
    // A on every level (EA too with EAFE), D on the leaf for a write; nested: the page holding
    // the entry must be writable through the second stage (else 0x77).
    const ad = FS_A | (flags.eafe ? FS_EA : 0);
    for (let i = 0; i < this.fsN; i++) {
      const lo = this.fsLos[i]!;
      const want = (lo | ad | (i === this.fsN - 1 && req.write ? FS_D : 0)) >>> 0;
      if (want !== lo && this.fsSlotWritable[i] === 0) return -SM_FAULT.FS_ENTRY_WRITE_NESTED;
    }
    for (let i = 0; i < this.fsN; i++) {
      const lo = this.fsLos[i]!;
      const want = (lo | ad | (i === this.fsN - 1 && req.write ? FS_D : 0)) >>> 0;
      if (want !== lo) mem.write32At(this.fsSlots[i]!, want);
    }
    this.size = size;
    this.perm = perm;
    return out;
  }

  /** Whether the first-stage leaf of the last walk had D set before this access. */
  fsLeafWasDirty(): boolean {
    return this.fsN > 0 && (this.fsLos[this.fsN - 1]! & FS_D) !== 0;
  }
}
