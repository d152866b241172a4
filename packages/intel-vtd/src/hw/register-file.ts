/** The MMIO register file's backing store: dwords at their specification offsets. */

/** Raw register storage (no side effects; the hardware model implements those). */
export class RegisterFile {
  /** The dwords. */
  readonly dw: Uint32Array;

  /** @param size - bytes of MMIO space (a multiple of 4 KiB) */
  constructor(readonly size: number) {
    this.dw = new Uint32Array(size >>> 2);
  }

  /** Reads the dword at a byte offset. */
  get(off: number): number {
    return this.dw[off >>> 2] ?? 0;
  }

  /** Writes the dword at a byte offset. */
  set(off: number, v: number): void {
    if (off >= 0 && off < this.size) this.dw[off >>> 2] = v >>> 0;
  }

  /** Sets bits of a dword. */
  or(off: number, bits: number): void {
    this.set(off, this.get(off) | bits);
  }

  /** Clears bits of a dword. */
  clear(off: number, bits: number): void {
    this.set(off, this.get(off) & ~bits);
  }
}
