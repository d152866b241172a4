/**
 * A process of the simulated platform: anonymous mmap/munmap backed by physical frames,
 * byte access, page pinning with per-page pin counts and a locked-memory limit, and (when the
 * platform has a CPU page-table format) the process's CPU page table in physical memory.
 */

import { IoasidError, type CpuPageTableFormat, type Process as ProcessApi } from '@ioasid/uapi';
import { CpuPageTable } from './cpu-page-table.js';
import type { PhysicalMemory } from './physical-memory.js';

const PAGE = 4096;
const PAGE_N = 4096n;
/** Processes map from 4 GiB up, so that 0 is never a valid address. */
const MMAP_BASE_VPN = 0x100000;

/** The physical run behind one mmap. Frames are freed once no page is mapped or pinned. */
interface Backing {
  readonly basePfn: number;
  readonly npages: number;
  readonly pins: Uint32Array;
  mapped: number;
  pinned: number;
  freed: boolean;
}

interface Vma {
  startVpn: number;
  npages: number;
  backing: Backing;
  offset: number;
  readonly writable: boolean;
}

function pages(length: bigint, argument: string): number {
  if (length <= 0n) throw new IoasidError('EINVAL', argument, 'length must be positive');
  if (length > 1n << 46n) throw new IoasidError('ENOMEM', argument, 'length exceeds the address space');
  return Number((length + PAGE_N - 1n) / PAGE_N);
}

let nextPid = 1;

/** A simulated process. */
export class Process implements ProcessApi {
  /** Process id. */
  readonly pid = nextPid++;
  /** Locked-memory limit in bytes (undefined: none). */
  readonly lockedMemoryLimit: bigint | undefined;
  private readonly vmas: Vma[] = [];
  private readonly backings: Backing[] = [];
  private nextVpn = MMAP_BASE_VPN;
  private lockedPages = 0;
  private cpuTable: CpuPageTable | undefined;
  private readonly listeners = new Set<(vaddr: bigint, length: bigint) => void>();
  private lastBacking: Backing | undefined;

  /**
   * @param memory - the platform's physical memory
   * @param cpuFormat - the CPU page-table format (absent: the platform has no SVA)
   * @param options - the locked-memory limit
   */
  constructor(
    private readonly memory: PhysicalMemory,
    private readonly cpuFormat: CpuPageTableFormat | undefined,
    options: { readonly lockedMemoryLimit?: bigint } = {},
  ) {
    this.lockedMemoryLimit = options.lockedMemoryLimit;
  }

  /** The CPU page-table format. */
  get format(): CpuPageTableFormat {
    if (this.cpuFormat === undefined) {
      throw new IoasidError('EOPNOTSUPP', 'process', 'this platform has no CPU page-table format for SVA');
    }
    return this.cpuFormat;
  }

  /** Physical address of the CPU page-table root (built on first use; ENOMEM leaves nothing behind). */
  get pageTableRoot(): bigint {
    if (this.cpuTable === undefined) {
      const table = new CpuPageTable(this.memory, this.format);
      try {
        for (const v of this.vmas) {
          for (let i = 0; i < v.npages; i++) table.map(v.startVpn + i, v.backing.basePfn + v.offset + i, v.writable);
        }
      } catch (e) {
        table.destroy();
        throw e;
      }
      this.cpuTable = table;
    }
    return BigInt(this.cpuTable.root);
  }

  /** Registers a CPU page-table change listener (the IOMMU driver's mmu notifier). */
  onInvalidate(listener: (vaddr: bigint, length: bigint) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Maps anonymous memory; large mappings are naturally aligned so IOMMUs can use huge pages.
   * All or nothing: ENOMEM (memory exhausted or injected) leaves the process as it was.
   */
  mmap(length: bigint, options: { readonly write?: boolean } = {}): bigint {
    const n = pages(length, 'length');
    const align = n >= 262144 ? 262144 : n >= 512 ? 512 : 1;
    const basePfn = n === 1 ? this.memory.allocFrame() : this.memory.allocFrames(n, align);
    const startVpn = Math.ceil(this.nextVpn / align) * align;
    const writable = options.write ?? true;
    if (this.cpuTable) {
      let i = 0;
      try {
        for (; i < n; i++) this.cpuTable.map(startVpn + i, basePfn + i, writable);
      } catch (e) {
        // the table frames allocated on the way stay with the table (as a CPU's would)
        for (let j = 0; j < i; j++) this.cpuTable.unmap(startVpn + j);
        this.memory.freeFrames(basePfn, n);
        throw e;
      }
    }
    this.nextVpn = startVpn + n;
    const backing: Backing = { basePfn, npages: n, pins: new Uint32Array(n), mapped: n, pinned: 0, freed: false };
    this.insertBacking(backing);
    this.vmas.push({ startVpn, npages: n, backing, offset: 0, writable }); // nextVpn only grows: the list stays sorted
    return BigInt(startVpn) * PAGE_N;
  }

  /** Unmaps a page-aligned range; pages not mapped are ignored, as POSIX munmap does. */
  munmap(vaddr: bigint, length: bigint): void {
    if (vaddr % PAGE_N !== 0n) throw new IoasidError('EINVAL', 'vaddr', 'munmap address must be page aligned');
    const n = pages(length, 'length');
    const first = Number(vaddr / PAGE_N);
    const end = first + n;
    const kept: Vma[] = [];
    for (const v of this.vmas) {
      const vEnd = v.startVpn + v.npages;
      const lo = Math.max(first, v.startVpn);
      const hi = Math.min(end, vEnd);
      if (lo >= hi) {
        kept.push(v);
        continue;
      }
      if (v.startVpn < lo) kept.push({ ...v, npages: lo - v.startVpn });
      if (hi < vEnd) {
        kept.push({ ...v, startVpn: hi, npages: vEnd - hi, offset: v.offset + (hi - v.startVpn) });
      }
      if (this.cpuTable) for (let p = lo; p < hi; p++) this.cpuTable.unmap(p);
      v.backing.mapped -= hi - lo;
      this.maybeFree(v.backing);
    }
    this.vmas.splice(0, this.vmas.length, ...kept);
    for (const l of this.listeners) l(vaddr, BigInt(n) * PAGE_N);
  }

  private findVma(vpn: number): Vma | undefined {
    const vmas = this.vmas;
    let lo = 0;
    let hi = vmas.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = vmas[mid]!;
      if (vpn < v.startVpn) hi = mid - 1;
      else if (vpn >= v.startVpn + v.npages) lo = mid + 1;
      else return v;
    }
    return undefined;
  }

  private physical(vaddr: bigint, write: boolean): number {
    const vpn = Number(vaddr / PAGE_N);
    const v = this.findVma(vpn);
    if (v === undefined) throw new IoasidError('EFAULT', 'vaddr', `0x${vaddr.toString(16)} is not mapped`);
    if (write && !v.writable) throw new IoasidError('EFAULT', 'vaddr', `0x${vaddr.toString(16)} is read-only`);
    return (v.backing.basePfn + v.offset + (vpn - v.startVpn)) * PAGE + Number(vaddr % PAGE_N);
  }

  /** Reads process memory. */
  read(vaddr: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const a = vaddr + BigInt(done);
      const n = Math.min(PAGE - Number(a % PAGE_N), length - done);
      this.memory.readInto(this.physical(a, false), out, done, n);
      done += n;
    }
    return out;
  }

  /** Writes process memory. */
  write(vaddr: bigint, data: Uint8Array): void {
    for (let done = 0; done < data.length; ) {
      this.physical(vaddr + BigInt(done), true); // check every page before writing any
      done += PAGE - Number((vaddr + BigInt(done)) % PAGE_N);
    }
    let done = 0;
    while (done < data.length) {
      const a = vaddr + BigInt(done);
      const n = Math.min(PAGE - Number(a % PAGE_N), data.length - done);
      this.memory.writeFrom(this.physical(a, true), data, done, n);
      done += n;
    }
  }

  /** Pin count of the page at `vaddr`, or (no argument) the number of pinned pages. */
  pinCount(vaddr?: bigint): number {
    if (vaddr === undefined) return this.lockedPages;
    const vpn = Number(vaddr / PAGE_N);
    const v = this.findVma(vpn);
    return v === undefined ? 0 : v.backing.pins[v.offset + vpn - v.startVpn]!;
  }

  /** Bytes of locked (pinned) memory. */
  get lockedBytes(): bigint {
    return BigInt(this.lockedPages) * PAGE_N;
  }

  /**
   * Pins `count` pages from `vaddr` (page aligned) and writes their frame numbers to
   * `out[outOffset…]`. All or nothing: EFAULT when a page is not mapped (or not writable when
   * `write`), ENOMEM beyond the locked-memory limit or when injected.
   */
  pin(vaddr: bigint, count: number, write: boolean, out: Uint32Array, outOffset: number): void {
    const firstVpn = Number(vaddr / PAGE_N);
    let newly = 0;
    let vpn = firstVpn;
    const end = firstVpn + count;
    while (vpn < end) {
      const v = this.findVma(vpn);
      if (v === undefined) {
        throw new IoasidError('EFAULT', 'vaddr', `page 0x${(BigInt(vpn) * PAGE_N).toString(16)} is not mapped`);
      }
      if (write && !v.writable) {
        throw new IoasidError('EFAULT', 'vaddr', `page 0x${(BigInt(vpn) * PAGE_N).toString(16)} is not writable`);
      }
      const stop = Math.min(end, v.startVpn + v.npages);
      const pins = v.backing.pins;
      for (let p = vpn, i = v.offset + vpn - v.startVpn; p < stop; p++, i++) if (pins[i] === 0) newly++;
      vpn = stop;
    }
    if (this.lockedMemoryLimit !== undefined && BigInt(this.lockedPages + newly) * PAGE_N > this.lockedMemoryLimit) {
      throw new IoasidError('ENOMEM', 'length', 'pinning would exceed the locked-memory limit (RLIMIT_MEMLOCK)');
    }
    this.memory.failNth.check('pin');
    vpn = firstVpn;
    let o = outOffset;
    while (vpn < end) {
      const v = this.findVma(vpn)!;
      const stop = Math.min(end, v.startVpn + v.npages);
      const b = v.backing;
      const pins = b.pins;
      for (let i = v.offset + vpn - v.startVpn, p = vpn; p < stop; p++, i++) {
        const c = pins[i]!;
        pins[i] = c + 1;
        if (c === 0) b.pinned++;
        out[o++] = b.basePfn + i;
      }
      vpn = stop;
    }
    this.lockedPages += newly;
  }

  /** Unpins frames pinned earlier by {@link pin}. */
  unpin(pfns: Uint32Array, offset: number, count: number): void {
    for (let k = offset; k < offset + count; k++) {
      const pfn = pfns[k]!;
      const b = this.backingOf(pfn);
      const i = pfn - b.basePfn;
      if (b.pins[i] === 0) throw new IoasidError('EINVAL', 'pfns', `frame ${pfn} is not pinned`);
      if (--b.pins[i]! === 0) {
        b.pinned--;
        this.lockedPages--;
      }
      if (b.pinned === 0) this.maybeFree(b);
    }
  }

  private insertBacking(b: Backing): void {
    let i = this.backings.length;
    while (i > 0 && this.backings[i - 1]!.basePfn > b.basePfn) i--;
    this.backings.splice(i, 0, b);
  }

  private backingOf(pfn: number): Backing {
    const last = this.lastBacking;
    if (last !== undefined && pfn >= last.basePfn && pfn < last.basePfn + last.npages) return last;
    let lo = 0;
    let hi = this.backings.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const b = this.backings[mid]!;
      if (pfn < b.basePfn) hi = mid - 1;
      else if (pfn >= b.basePfn + b.npages) lo = mid + 1;
      else return (this.lastBacking = b);
    }
    throw new IoasidError('EINVAL', 'pfns', `frame ${pfn} does not belong to process ${this.pid}`);
  }

  private maybeFree(b: Backing): void {
    if (b.freed || b.mapped > 0 || b.pinned > 0) return;
    b.freed = true;
    this.memory.freeFrames(b.basePfn, b.npages);
    this.backings.splice(this.backings.indexOf(b), 1);
    if (this.lastBacking === b) this.lastBacking = undefined;
  }
}
