/**
 * Guest-physical memory: sparse 4 KiB frames, little-endian accessors, and a frame allocator
 * with accounting and injectable failure. Never-written memory reads as zero.
 */

import { IoasidError, type PhysicalMemoryLike } from '@ioasid/uapi';
import { FailNth } from './fail-nth.js';

const PAGE = 4096;
/** Frames per second-level block of the page directory (16 MiB of memory). */
const BLOCK_SHIFT = 12;
const BLOCK = 1 << BLOCK_SHIFT;
const BLOCK_MASK = BLOCK - 1;
const BLOCK_BYTES = BLOCK * PAGE;
/** The shared block of a 16 MiB region never written (all frames read as zero); never filled. */
const EMPTY_BLOCK8: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(BLOCK).fill(undefined);
const EMPTY_BLOCK32: (Uint32Array | undefined)[] = new Array<Uint32Array | undefined>(BLOCK).fill(undefined);

/** Options of {@link PhysicalMemory}. */
export interface PhysicalMemoryOptions {
  /** Size in bytes (default 2^40, at most 2^44; a multiple of 4 KiB). */
  readonly size?: bigint;
  /** The fail_nth injector frame allocations consult. */
  readonly failNth?: FailNth;
}

function efault(addr: bigint | number, length: number, size: bigint): IoasidError {
  return new IoasidError(
    'EFAULT',
    'addr',
    `physical access of ${length} bytes at 0x${addr.toString(16)} is beyond memory (size 0x${size.toString(16)})`,
  );
}

/** Guest-physical memory of the simulated platform. */
export class PhysicalMemory implements PhysicalMemoryLike {
  /** Size in bytes. */
  readonly size: bigint;
  /** Size in bytes as a number. */
  readonly sizeNumber: number;
  /** The fail_nth injector. */
  readonly failNth: FailNth;
  private readonly frames: number;
  /** dir[pfn >> 12][pfn & 0xfff] → the frame's bytes, present once written. */
  // Directory arrays are created full length (filled with undefined) so that V8 keeps them as
  // fast elements: writing frames out of order into `[]` would turn them into dictionaries.
  private readonly dir8: (Uint8Array | undefined)[][];
  private readonly dir32: (Uint32Array | undefined)[][];
  private nextFree = 1; // frame 0 is never handed out, so a 0 pointer always means "none"
  private readonly freeSingles: number[] = [];
  private readonly freeRuns = new Map<number, number[]>();
  private inUse = 0;

  /** @param options - size and the fail_nth injector */
  constructor(options: PhysicalMemoryOptions = {}) {
    const size = options.size ?? 1n << 40n;
    if (size <= 0n || size > 1n << 44n || size % BigInt(PAGE) !== 0n) {
      throw new IoasidError('EINVAL', 'size', `memory size must be a multiple of 4 KiB in (0, 2^44]`);
    }
    this.size = size;
    this.sizeNumber = Number(size);
    this.frames = this.sizeNumber / PAGE;
    this.failNth = options.failNth ?? new FailNth();
    const blocks = Math.ceil(this.frames / BLOCK);
    this.dir8 = new Array<(Uint8Array | undefined)[]>(blocks).fill(EMPTY_BLOCK8);
    this.dir32 = new Array<(Uint32Array | undefined)[]>(blocks).fill(EMPTY_BLOCK32);
  }

  /** Frames currently allocated by the frame allocator. */
  get framesInUse(): number {
    return this.inUse;
  }

  /** True when `[addr, addr+length)` lies inside memory. */
  contains(addr: number, length: number): boolean {
    return addr >= 0 && length >= 0 && addr + length <= this.sizeNumber;
  }

  private words(pfn: number, create: boolean): Uint32Array | undefined {
    const hi = Math.floor(pfn / BLOCK);
    const lo = pfn & BLOCK_MASK;
    let blk = this.dir32[hi];
    const w = blk?.[lo];
    if (w !== undefined || !create) return w;
    if (blk === EMPTY_BLOCK32 || blk === undefined) {
      blk = this.dir32[hi] = new Array<Uint32Array | undefined>(BLOCK).fill(undefined);
      this.dir8[hi] = new Array<Uint8Array | undefined>(BLOCK).fill(undefined);
    }
    const buf = new ArrayBuffer(PAGE);
    const words = new Uint32Array(buf);
    blk[lo] = words;
    this.dir8[hi]![lo] = new Uint8Array(buf);
    return words;
  }

  private bytes(pfn: number, create: boolean): Uint8Array | undefined {
    const got = this.dir8[Math.floor(pfn / BLOCK)]?.[pfn & BLOCK_MASK];
    if (got !== undefined || !create) return got;
    this.words(pfn, true);
    return this.dir8[Math.floor(pfn / BLOCK)]![pfn & BLOCK_MASK];
  }

  /** The 32-bit words of a frame, or undefined while it was never written (all zero). */
  frameWords(pfn: number): Uint32Array | undefined {
    return this.dir32[Math.floor(pfn / BLOCK)]?.[pfn & BLOCK_MASK];
  }

  /** Reads a 32-bit word at a 4-byte aligned number address. */
  read32At(addr: number): number {
    if (!(addr >= 0 && addr + 4 <= this.sizeNumber)) throw efault(addr, 4, this.size);
    // One division for the 16 MiB block; the frame-in-block and word indices come from the low
    // 32 bits, which `>>>` keeps exactly for any address below 2^53.
    const w = this.dir32[Math.floor(addr / BLOCK_BYTES)]?.[(addr >>> 12) & BLOCK_MASK];
    return w === undefined ? 0 : w[(addr & 0xfff) >>> 2]!;
  }

  /** Writes a 32-bit word at a 4-byte aligned number address. */
  write32At(addr: number, value: number): void {
    if (!(addr >= 0 && addr + 4 <= this.sizeNumber)) throw efault(addr, 4, this.size);
    const pfn = Math.floor(addr / PAGE);
    this.words(pfn, true)![(addr & 0xfff) >>> 2] = value;
  }

  /** Copies `length` bytes at `addr` into `out[offset…]`. */
  readInto(addr: number, out: Uint8Array, offset: number, length: number): void {
    if (!this.contains(addr, length)) throw efault(addr, length, this.size);
    let done = 0;
    while (done < length) {
      const a = addr + done;
      const pfn = Math.floor(a / PAGE);
      const off = a - pfn * PAGE;
      const n = Math.min(PAGE - off, length - done);
      const src = this.bytes(pfn, false);
      if (src === undefined) out.fill(0, offset + done, offset + done + n);
      else if (n <= 16) for (let i = 0; i < n; i++) out[offset + done + i] = src[off + i]!;
      else out.set(src.subarray(off, off + n), offset + done);
      done += n;
    }
  }

  /** Copies `length` bytes from `data[offset…]` to `addr`. */
  writeFrom(addr: number, data: Uint8Array, offset: number, length: number): void {
    if (!this.contains(addr, length)) throw efault(addr, length, this.size);
    let done = 0;
    while (done < length) {
      const a = addr + done;
      const pfn = Math.floor(a / PAGE);
      const off = a - pfn * PAGE;
      const n = Math.min(PAGE - off, length - done);
      const dst = this.bytes(pfn, true)!;
      if (n <= 16) for (let i = 0; i < n; i++) dst[off + i] = data[offset + done + i]!;
      else dst.set(data.subarray(offset + done, offset + done + n), off);
      done += n;
    }
  }

  private num(addr: bigint, length: number): number {
    if (addr < 0n || addr + BigInt(length) > this.size) throw efault(addr, length, this.size);
    return Number(addr);
  }

  /** Reads a little-endian 32-bit word (any alignment). */
  read32(addr: bigint): number {
    const a = this.num(addr, 4);
    if ((a & 3) === 0) return this.read32At(a);
    const b = this.read(addr, 4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }

  /** Writes a little-endian 32-bit word (any alignment). */
  write32(addr: bigint, value: number): void {
    const a = this.num(addr, 4);
    const v = value >>> 0;
    if ((a & 3) === 0) this.write32At(a, v);
    else this.write(addr, Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24));
  }

  /** Reads a little-endian 64-bit word. */
  read64(addr: bigint): bigint {
    this.num(addr, 8);
    return BigInt(this.read32(addr)) | (BigInt(this.read32(addr + 4n)) << 32n);
  }

  /** Writes a little-endian 64-bit word. */
  write64(addr: bigint, value: bigint): void {
    this.num(addr, 8);
    const v = BigInt.asUintN(64, value);
    this.write32(addr, Number(v & 0xffffffffn));
    this.write32(addr + 4n, Number(v >> 32n));
  }

  /** Reads `length` bytes into a new array (a copy, never a view). */
  read(addr: bigint, length: number): Uint8Array {
    const a = this.num(addr, length);
    const out = new Uint8Array(length);
    this.readInto(a, out, 0, length);
    return out;
  }

  /** Writes bytes. */
  write(addr: bigint, data: Uint8Array): void {
    this.writeFrom(this.num(addr, data.length), data, 0, data.length);
  }

  /** Allocates one zeroed frame; returns its frame number. */
  allocFrame(): number {
    this.failNth.check('frame');
    let pfn = this.freeSingles.pop();
    if (pfn === undefined) {
      if (this.nextFree >= this.frames) throw new IoasidError('ENOMEM', undefined, 'physical memory is exhausted');
      pfn = this.nextFree++;
    }
    this.inUse++;
    return pfn;
  }

  /** Allocates `count` contiguous zeroed frames aligned to `alignFrames` (a power of two). */
  allocFrames(count: number, alignFrames = 1): number {
    if (!Number.isInteger(count) || count < 1) throw new IoasidError('EINVAL', 'count', 'frame count must be ≥ 1');
    if (count === 1 && alignFrames <= 1) return this.allocFrame();
    this.failNth.check('frames');
    const runs = this.freeRuns.get(count);
    const reuse = runs?.findIndex((p) => p % alignFrames === 0) ?? -1;
    let pfn: number;
    if (runs !== undefined && reuse >= 0) {
      pfn = runs[reuse]!;
      runs.splice(reuse, 1);
    } else {
      const start = Math.ceil(this.nextFree / alignFrames) * alignFrames;
      if (start + count > this.frames) throw new IoasidError('ENOMEM', undefined, 'physical memory is exhausted');
      for (let p = this.nextFree; p < start; p++) this.freeSingles.push(p);
      this.nextFree = start + count;
      pfn = start;
    }
    this.inUse += count;
    return pfn;
  }

  /** Frees frames; their contents are discarded, so they read as zero when reallocated. */
  freeFrames(pfn: number, count = 1): void {
    for (let i = 0; i < count; i++) {
      const p = pfn + i;
      const hi = Math.floor(p / BLOCK);
      const blk32 = this.dir32[hi];
      if (blk32 !== undefined && blk32 !== EMPTY_BLOCK32) {
        blk32[p & BLOCK_MASK] = undefined;
        this.dir8[hi]![p & BLOCK_MASK] = undefined;
      }
    }
    if (count === 1) this.freeSingles.push(pfn);
    else {
      let runs = this.freeRuns.get(count);
      if (runs === undefined) this.freeRuns.set(count, (runs = []));
      runs.push(pfn);
    }
    this.inUse -= count;
  }

  /** Zeroes one frame. */
  zeroFrame(pfn: number): void {
    this.words(pfn, false)?.fill(0);
  }
}
