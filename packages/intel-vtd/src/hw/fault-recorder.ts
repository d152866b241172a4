/**
 * Primary fault logging (VT-d spec §7.2.1): fault recording registers used round-robin,
 * FSTS.PPF/FRI/PFO, and the fault event (FECTL) — raised only when no fault condition was
 * already pending (QEMU `vtd_generate_fault_event`).
 */

import {
  FSTS_ICE,
  FSTS_FRI_SHIFT,
  FSTS_IQE,
  FSTS_ITE,
  FSTS_PFO,
  FSTS_PPF,
  FSTS_REG,
  FRCD_REG_SIZE,
} from '../spec/registers.js';
import type { RegisterFile } from './register-file.js';

/** What a fault record holds. */
export interface FaultToRecord {
  /** Reason code as reported. */
  readonly reason: number;
  /** Source id. */
  readonly sid: number;
  /** Faulting page address, low dword (bits 31:12 used). */
  readonly fiLo: number;
  /** Faulting address, high dword. */
  readonly fiHi: number;
  /** PASID or −1 when the request had none. */
  readonly pasid: number;
  /** A write. */
  readonly write: boolean;
  /** Execute requested. */
  readonly exec: boolean;
  /** Privileged requested. */
  readonly priv: boolean;
}

/** Fault recording registers of one unit. */
export class FaultRecorder {
  private next = 0;

  /**
   * @param regs - the register file
   * @param fro - byte offset of FRCD[0]
   * @param count - number of FRCD registers
   * @param raise - delivers a fault event
   * @param compress - drop a fault whose SID already has a pending record (QEMU)
   */
  constructor(
    private readonly regs: RegisterFile,
    private readonly fro: number,
    readonly count: number,
    private readonly raise: () => void,
    private readonly compress: boolean,
  ) {}

  private fOf(i: number): boolean {
    return (this.regs.get(this.fro + i * FRCD_REG_SIZE + 12) & 0x80000000) !== 0;
  }

  /** Logs a fault; returns the FRCD index used, or −1 when it was dropped (overflow or compression). */
  record(f: FaultToRecord): number {
    const regs = this.regs;
    const before = regs.get(FSTS_REG);
    if ((before & FSTS_PFO) !== 0) return -1;
    if (this.compress) {
      for (let i = 0; i < this.count; i++) {
        if (this.fOf(i) && (regs.get(this.fro + i * FRCD_REG_SIZE + 8) & 0xffff) === f.sid) return -1;
      }
    }
    const i = this.next;
    if (this.fOf(i)) {
      regs.or(FSTS_REG, FSTS_PFO);
      if ((before & (FSTS_PFO | FSTS_PPF | FSTS_IQE | FSTS_ICE | FSTS_ITE)) === 0) this.raise();
      return -1;
    }
    const off = this.fro + i * FRCD_REG_SIZE;
    const pp = f.pasid >= 0;
    regs.set(off, f.fiLo & 0xfffff000);
    regs.set(off + 4, f.fiHi);
    regs.set(off + 8, (f.sid & 0xffff) | (f.priv ? 1 << 29 : 0) | (f.exec ? 1 << 30 : 0) | (pp ? 0x80000000 : 0));
    regs.set(off + 12, (f.reason & 0xff) | ((pp ? f.pasid & 0xfffff : 0) << 8) | (f.write ? 0 : 0x40000000) | 0x80000000);
    this.next = (i + 1) % this.count;
    if ((before & FSTS_PPF) === 0) {
      regs.set(FSTS_REG, (before & ~0xff00) | FSTS_PPF | (i << FSTS_FRI_SHIFT));
    }
    if ((before & (FSTS_PFO | FSTS_PPF | FSTS_IQE | FSTS_ICE | FSTS_ITE)) === 0) this.raise();
    return i;
  }

  /** Software wrote 1 to F of FRCD[i]: clear it and recompute PPF/FRI. */
  clear(i: number): void {
    this.regs.clear(this.fro + i * FRCD_REG_SIZE + 12, 0x80000000);
    this.updatePending();
  }

  /** Recomputes FSTS.PPF and FRI from the F bits. */
  updatePending(): void {
    const regs = this.regs;
    let fsts = regs.get(FSTS_REG);
    const fri = (fsts >>> FSTS_FRI_SHIFT) & 0xff;
    let first = -1;
    for (let k = 0; k < this.count; k++) {
      const i = (fri + k) % this.count;
      if (this.fOf(i)) {
        first = i;
        break;
      }
    }
    fsts &= ~(FSTS_PPF | 0xff00);
    if (first >= 0) fsts |= FSTS_PPF | (first << FSTS_FRI_SHIFT);
    regs.set(FSTS_REG, fsts);
  }
}
