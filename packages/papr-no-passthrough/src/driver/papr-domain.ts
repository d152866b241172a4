/**
 * A paging domain on PAPR: the mappings of one IOAS for one PE, expressed in that PE's DMA
 * windows. The domain keeps its mappings (as the virtio-iommu and pseries drivers keep their
 * own trees) and writes them into the TCE tables only while it is the PE's active domain, so
 * that a detached device finds nothing but "page fault" TCEs. Map and unmap cost does not grow
 * with the number of live mappings: mappings are found by IOVA in a hash map and overlaps
 * by a per-window bitmap of the TCEs in use.
 */

import { IoasidError, type DriverDomain, type InvalidateEntry, type IovaRange } from '@ioasid/uapi';
import { H_SUCCESS } from '../spec/hcall.js';
import { tcePermFromProt } from '../spec/tce.js';
import type { DriverPe, PeDomain } from './driver-pe.js';
import { EntrySet } from './entry-set.js';
import { hcallError, type DriverWindow, type TceOps } from './tce-ops.js';

const PAGE = 4096n;

/**
 * Unmapped IOVAs stay in the map as `undefined` until they outnumber the live ones (and at
 * least this many), then the map is rebuilt: V8's Map slows down in proportion to its size
 * when one key is deleted and set again and again (the deleted entries pile up in its bucket
 * until the next rehash), which a map/unmap loop at one IOVA does.
 */
const KEEP_UNMAPPED = 1024;

/** One map call as the domain keeps it. */
interface Mapping {
  readonly iova: bigint;
  /** Bytes mapped (exact as a number: a mapping lies inside one window of at most 2^52 bytes). */
  readonly bytes: number;
  readonly win: DriverWindow;
  /** The window's index in the PE's windows. */
  readonly slot: number;
  /** First TCE index. */
  readonly first: number;
  /** TCEs (IOMMU pages). */
  readonly npages: number;
  /** First 4 KiB frame of each IOMMU page, for a mapping of several (else undefined: see `pfn`). */
  readonly pfns: Uint32Array | undefined;
  /** The frame of a one-TCE mapping (no array for the commonest case). */
  readonly pfn: number;
  /** TCE permission bits. */
  readonly perm: number;
}

/** The frames of a one-TCE mapping, for {@link TceOps.put}. */
const one = new Uint32Array(1);

/** The frames of `m`, as {@link TceOps.put} takes them. */
function framesOf(m: Mapping): Uint32Array {
  if (m.pfns !== undefined) return m.pfns;
  one[0] = m.pfn;
  return one;
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** A PAPR paging domain. */
export class PaprDomain implements DriverDomain, PeDomain {
  /** Always a paging domain: PAPR has no identity, blocked, nested or SVA domain. */
  readonly kind = 'paging' as const;
  /** Page sizes of the PE's windows, ascending. */
  readonly pageSizes: readonly bigint[];
  /** The PE's DMA windows. */
  readonly apertures: readonly IovaRange[];
  /** The PE the domain is for. */
  readonly pe: DriverPe;
  private readonly ops: TceOps;
  private mappings = new Map<bigint, Mapping | undefined>();
  /** Entries of `mappings` that are `undefined` (unmapped). */
  private unmapped = 0;
  /** The TCEs the mappings hold, per window (same order as `pe.windows`). */
  private readonly used: EntrySet[];
  private freed = false;

  /** @param pe - the PE @param ops - the TCE hcall issuer */
  constructor(pe: DriverPe, ops: TceOps) {
    this.pe = pe;
    this.ops = ops;
    this.pageSizes = [...new Set(pe.windows.map((w) => 1n << BigInt(w.pageShift)))].sort((a, b) => (a < b ? -1 : 1));
    this.apertures = pe.windows.map((w) => ({ start: w.start, last: w.last }));
    this.used = pe.windows.map(() => new EntrySet());
  }

  /** The live mappings, oldest first. */
  private live(): Mapping[] {
    const out: Mapping[] = [];
    for (const m of this.mappings.values()) if (m !== undefined) out.push(m);
    return out;
  }

  private get active(): boolean {
    return this.pe.active === this;
  }

  /** Maps `count` 4 KiB frames at `iova` through the window that holds the range. */
  map(iova: bigint, pfns: Uint32Array, count: number, prot: number): void {
    if (this.freed) throw new IoasidError('EINVAL', 'domain', 'the domain was freed');
    if (!Number.isInteger(count) || count < 1 || count > pfns.length) {
      throw new IoasidError('EINVAL', 'count', `count ${count} is not in 1..${pfns.length}`);
    }
    const perm = tcePermFromProt(prot);
    if (perm === 0) throw new IoasidError('EINVAL', 'prot', 'a TCE needs read or write permission (00 is a page fault)');
    const length = BigInt(count) * PAGE;
    const last = iova + length - 1n;
    const windows = this.pe.windows;
    let slot = 0;
    while (slot < windows.length && !(windows[slot]!.start <= iova && last <= windows[slot]!.last)) slot++;
    const win = windows[slot];
    if (win === undefined) {
      const list = windows.map((w) => `[${hex(w.start)}, ${hex(w.last)}]`).join(', ');
      throw new IoasidError('EINVAL', 'iova', `[${hex(iova)}, ${hex(last)}] is not inside one DMA window of ${this.pe.label}: ${list}`);
    }
    const ratio = 2 ** (win.pageShift - 12);
    const shift = BigInt(win.pageShift);
    const pageSize = 1n << shift;
    const rel = iova - win.start;
    if ((rel & (pageSize - 1n)) !== 0n || count % ratio !== 0) {
      throw new IoasidError('EINVAL', 'iova', `window LIOBN 0x${win.liobn.toString(16)} maps ${pageSize / 1024n} KiB pages: [${hex(iova)}, ${hex(last)}] is not made of whole pages`);
    }
    const first = Number(rel >> shift);
    const npages = count / ratio;
    const used = this.used[slot]!;
    if (used.any(first, npages)) {
      // Rare: name the mapping in the way (a scan, on the error path only).
      for (const m of this.live()) {
        if (m.iova <= last && iova < m.iova + BigInt(m.bytes)) {
          throw new IoasidError('EEXIST', 'iova', `[${hex(iova)}, ${hex(last)}] overlaps the mapping at ${hex(m.iova)}`);
        }
      }
    }
    let tcePfns: Uint32Array;
    if (ratio === 1) tcePfns = pfns.subarray(0, count);
    else {
      tcePfns = new Uint32Array(npages);
      for (let j = 0; j < npages; j++) {
        const base = pfns[j * ratio]!;
        if (base % ratio !== 0) {
          throw new IoasidError('EINVAL', 'pfns', `frame 0x${base.toString(16)} is not aligned to the window's ${pageSize / 1024n} KiB page`);
        }
        for (let k = 1; k < ratio; k++) {
          if (pfns[j * ratio + k] !== base + k) {
            throw new IoasidError('EINVAL', 'pfns', `the frames of IOMMU page ${j} are not contiguous (a ${pageSize / 1024n} KiB TCE maps one real page)`);
          }
        }
        tcePfns[j] = base;
      }
    }
    if (this.active) {
      const ret = this.ops.put(win, first, tcePfns, npages, perm);
      if (ret !== H_SUCCESS) throw hcallError(ret, 'iova', `mapping ${hex(iova)}`);
    }
    // Keep a copy of the frames: the caller's array is not ours to hold.
    const m: Mapping = {
      iova,
      bytes: count * 4096,
      win,
      slot,
      first,
      npages,
      pfns: npages === 1 ? undefined : ratio === 1 ? tcePfns.slice() : tcePfns,
      pfn: tcePfns[0]!,
      perm,
    };
    if (this.mappings.has(iova)) this.unmapped--;
    this.mappings.set(iova, m);
    used.add(first, npages);
  }

  /** Unmaps exactly one earlier map call and clears its TCEs. */
  unmap(iova: bigint, length: bigint): void {
    const m = this.mappings.get(iova);
    if (m === undefined || Number(length) !== m.bytes) {
      throw new IoasidError('ENOENT', 'iova', `no mapping of ${hex(length)} bytes at ${hex(iova)} in this domain`);
    }
    if (this.active) {
      const ret = this.ops.clear(m.win, m.first, m.npages);
      if (ret !== H_SUCCESS) throw hcallError(ret, 'iova', `unmapping ${hex(iova)}`);
    }
    this.mappings.set(iova, undefined);
    this.used[m.slot]!.delete(m.first, m.npages);
    if (++this.unmapped > KEEP_UNMAPPED && this.unmapped * 2 > this.mappings.size) {
      this.mappings = new Map(this.live().map((x) => [x.iova, x]));
      this.unmapped = 0;
    }
  }

  /** PAPR domains are kernel-managed: no user invalidation. */
  invalidateUser(_entries: readonly InvalidateEntry[]): number {
    throw new IoasidError('EOPNOTSUPP', 'hwpt', 'PAPR has no nesting: there is no user-managed table to invalidate');
  }

  /** No dirty tracking in TCEs. */
  setDirtyTracking(_enable: boolean): void {
    throw new IoasidError('EOPNOTSUPP', 'hwpt', 'a TCE has no dirty bit: PAPR cannot track dirty pages');
  }

  /** No dirty tracking in TCEs. */
  readDirty(_iova: bigint, _length: bigint, _pageSize: bigint, _bitmap: Uint8Array, _noClear: boolean): void {
    throw new IoasidError('EOPNOTSUPP', 'hwpt', 'a TCE has no dirty bit: PAPR cannot track dirty pages');
  }

  /** Releases the domain; if it still backs the PE's tables, they are cleared first. */
  free(): void {
    if (this.freed) return;
    if (this.active) {
      this.unprogram();
      this.pe.active = undefined;
      this.pe.attached.clear();
    }
    this.mappings.clear();
    this.unmapped = 0;
    for (const u of this.used) u.clear();
    this.freed = true;
  }

  /** True once freed. */
  get isFreed(): boolean {
    return this.freed;
  }

  /** Writes every mapping into the tables; on failure clears what it wrote and throws. */
  program(): void {
    const done: Mapping[] = [];
    for (const m of this.live()) {
      const ret = this.ops.put(m.win, m.first, framesOf(m), m.npages, m.perm);
      if (ret !== H_SUCCESS) {
        for (const d of done) this.ops.clear(d.win, d.first, d.npages);
        throw hcallError(ret, 'domain', `writing the mapping at ${hex(m.iova)}`);
      }
      done.push(m);
    }
  }

  /** Clears every mapping from the tables. */
  unprogram(): void {
    for (const m of this.live()) {
      const ret = this.ops.clear(m.win, m.first, m.npages);
      if (ret !== H_SUCCESS) throw hcallError(ret, 'domain', `clearing the mapping at ${hex(m.iova)}`);
    }
  }
}
