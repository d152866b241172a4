/**
 * Physical memory that watches a hardware model: it counts every access against a step budget
 * (a model that loops forever on a table cycle runs out of budget instead of hanging the test),
 * and records every write — where, how many bytes, and the words before and after — so a test
 * can check that the model wrote only where it was told to.
 */

import { PhysicalMemory } from '@ioasid/core';
import type { PhysicalMemoryLike } from '@ioasid/uapi';

/** Thrown by a {@link WatchedMemory} when a model exceeds its access budget (it would hang). */
export class BudgetExceeded extends Error {
  override name = 'BudgetExceeded';
}

/** One recorded write. */
export interface WriteRecord {
  /** Physical address. */
  readonly addr: number;
  /** Bytes written. */
  readonly length: number;
  /** The bytes before. */
  readonly before: Uint8Array;
  /** The bytes after. */
  readonly after: Uint8Array;
}

/** A {@link PhysicalMemoryLike} over a {@link PhysicalMemory} that counts accesses and records writes. */
export class WatchedMemory implements PhysicalMemoryLike {
  /** Accesses since the budget was last reset. */
  accesses = 0;
  /** The access budget (Infinity: none). */
  budget = Infinity;
  /** Writes since the log was last cleared (only while `recording`). */
  readonly writes: WriteRecord[] = [];
  /** Record writes. */
  recording = false;

  /** @param inner - the memory under watch */
  constructor(readonly inner: PhysicalMemory) {}

  /** A watched memory of `size` bytes. */
  static create(size: bigint): WatchedMemory {
    return new WatchedMemory(new PhysicalMemory({ size }));
  }

  /** Size in bytes. */
  get size(): bigint {
    return this.inner.size;
  }

  /** Size in bytes, as a number. */
  get sizeNumber(): number {
    return this.inner.sizeNumber;
  }

  /** Frames allocated. */
  get framesInUse(): number {
    return this.inner.framesInUse;
  }

  /** Starts a budget of `n` accesses. */
  arm(n: number): void {
    this.accesses = 0;
    this.budget = n;
  }

  private tick(): void {
    if (++this.accesses > this.budget) throw new BudgetExceeded(`more than ${this.budget} memory accesses: the model does not terminate`);
  }

  private record(addr: number, length: number, write: () => void): void {
    if (!this.recording || !this.inner.contains(addr, length)) {
      write();
      return;
    }
    const before = new Uint8Array(length);
    this.inner.readInto(addr, before, 0, length);
    write();
    const after = new Uint8Array(length);
    this.inner.readInto(addr, after, 0, length);
    this.writes.push({ addr, length, before, after });
  }

  /** True when `[addr, addr+length)` is inside memory. */
  contains(addr: number, length: number): boolean {
    return this.inner.contains(addr, length);
  }

  /** Reads a 32-bit word (counted). */
  read32(addr: bigint): number {
    this.tick();
    return this.inner.read32(addr);
  }

  /** Writes a 32-bit word (counted, recorded). */
  write32(addr: bigint, value: number): void {
    this.tick();
    this.record(Number(addr), 4, () => {
      this.inner.write32(addr, value);
    });
  }

  /** Reads a 64-bit word (counted). */
  read64(addr: bigint): bigint {
    this.tick();
    return this.inner.read64(addr);
  }

  /** Writes a 64-bit word (counted, recorded). */
  write64(addr: bigint, value: bigint): void {
    this.tick();
    this.record(Number(addr), 8, () => {
      this.inner.write64(addr, value);
    });
  }

  /** Reads bytes (counted). */
  read(addr: bigint, length: number): Uint8Array {
    this.tick();
    return this.inner.read(addr, length);
  }

  /** Writes bytes (counted, recorded). */
  write(addr: bigint, data: Uint8Array): void {
    this.tick();
    this.record(Number(addr), data.length, () => {
      this.inner.write(addr, data);
    });
  }

  /**
   * A frame's words (counted), as a copy: reads see the frame, but a model that wrote through
   * the view instead of write32At would bypass the watch — with a copy such writes are lost,
   * and the tests that compare memory catch them.
   */
  frameWords(pfn: number): Uint32Array | undefined {
    this.tick();
    return this.inner.frameWords(pfn)?.slice();
  }

  /** Reads a 32-bit word at a number address (counted). */
  read32At(addr: number): number {
    this.tick();
    return this.inner.read32At(addr);
  }

  /** Writes a 32-bit word at a number address (counted, recorded). */
  write32At(addr: number, value: number): void {
    this.tick();
    this.record(addr, 4, () => {
      this.inner.write32At(addr, value);
    });
  }

  /** Copies bytes out (counted). */
  readInto(addr: number, out: Uint8Array, offset: number, length: number): void {
    this.tick();
    this.inner.readInto(addr, out, offset, length);
  }

  /** Copies bytes in (counted, recorded). */
  writeFrom(addr: number, data: Uint8Array, offset: number, length: number): void {
    this.tick();
    this.record(addr, length, () => {
      this.inner.writeFrom(addr, data, offset, length);
    });
  }

  /** Allocates a frame. */
  allocFrame(): number {
    return this.inner.allocFrame();
  }

  /** Allocates contiguous frames. */
  allocFrames(count: number, alignFrames?: number): number {
    return this.inner.allocFrames(count, alignFrames);
  }

  /** Frees frames. */
  freeFrames(pfn: number, count?: number): void {
    this.inner.freeFrames(pfn, count);
  }

  /** Writes that changed something (a write of the same value is not a change). */
  changes(): WriteRecord[] {
    return this.writes.filter((w) => w.before.some((b, i) => b !== w.after[i]));
  }
}

/** An address range `[start, end)`. */
export interface Region {
  /** First byte. */
  readonly start: number;
  /** One past the last byte. */
  readonly end: number;
}

/** True when `[start, end)` lies inside the union of `regions`. */
export function covered(regions: readonly Region[], start: number, end: number): boolean {
  let next = start;
  for (const r of [...regions].sort((a, b) => a.start - b.start)) {
    if (r.end <= next) continue;
    if (r.start > next) return false;
    next = r.end;
    if (next >= end) return true;
  }
  return next >= end;
}

/** The recorded changes not covered by the regions (only the bytes that changed count). */
export function writesOutside(mem: WatchedMemory, regions: readonly Region[]): WriteRecord[] {
  return mem.changes().filter((w) => {
    for (let i = 0; i < w.length; i++) {
      if (w.before[i] !== w.after[i] && !covered(regions, w.addr + i, w.addr + i + 1)) return true;
    }
    return false;
  });
}
