/**
 * Guest memory over a process buffer: what a VMM's guest sees as guest-physical memory when
 * the VMM maps `length` bytes of its own memory into an IOAS at guest-physical `gpaBase`. A
 * guest-side nesting builder (a `NestingGuest`) writes its stage-1 structures through it.
 */

import { IoasidError, type GuestMemory, type Process } from '@ioasid/uapi';

/** Guest memory backed by a process buffer, with a bump allocator of zeroed pages. */
export class ProcessGuestMemory implements GuestMemory {
  private next: bigint;

  /**
   * @param process - the VMM process owning the buffer
   * @param vaddr - the buffer's address in the process
   * @param gpaBase - the guest-physical address the buffer is mapped at
   * @param length - bytes
   * @param reserve - bytes at the start kept for the guest's own data (not handed out by alloc)
   */
  constructor(
    private readonly process: Process,
    private readonly vaddr: bigint,
    readonly gpaBase: bigint,
    readonly length: bigint,
    reserve = 0x10000n,
  ) {
    this.next = gpaBase + reserve;
  }

  private at(gpa: bigint, bytes: number): bigint {
    if (gpa < this.gpaBase || gpa + BigInt(bytes) > this.gpaBase + this.length) {
      throw new IoasidError('EFAULT', 'gpa', `guest-physical 0x${gpa.toString(16)} is outside guest memory`);
    }
    return this.vaddr + (gpa - this.gpaBase);
  }

  /** Reads a little-endian 64-bit word. */
  read64(gpa: bigint): bigint {
    const b = this.process.read(this.at(gpa, 8), 8);
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    return v;
  }

  /** Writes a little-endian 64-bit word. */
  write64(gpa: bigint, value: bigint): void {
    const b = new Uint8Array(8);
    for (let i = 0; i < 8; i++) b[i] = Number((value >> BigInt(8 * i)) & 0xffn);
    this.process.write(this.at(gpa, 8), b);
  }

  /** A zeroed, naturally aligned block of `bytes` (at least 4 KiB); ENOMEM when memory is used up. */
  alloc(bytes = 4096): bigint {
    const size = BigInt(Math.max(4096, bytes));
    const gpa = ((this.next + size - 1n) / size) * size;
    if (gpa + size > this.gpaBase + this.length) throw new IoasidError('ENOMEM', 'bytes', 'guest memory is used up');
    this.process.write(this.at(gpa, Number(size)), new Uint8Array(Number(size)));
    this.next = gpa + size;
    return gpa;
  }
}
