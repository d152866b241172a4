/**
 * The page request queue (VT-d spec §7.5): the hardware writes 32-byte page request
 * descriptors at PQT and advances it, sets PRS.PPR and raises the page request event; a full
 * queue sets PRS.PRO and drops the request. Page group responses (QI type 9) complete them.
 */

import { PQA_REG, PQH_REG, PQT_REG, PRS_PPR, PRS_PRO, PRS_REG } from '../spec/registers.js';
import { entryAddress } from '../spec/fields.js';
import type { PhysicalMemoryLike } from '@ioasid/uapi';
import type { RegisterFile } from './register-file.js';

/** A page request the hardware raised, and what became of it. */
export interface PageRequestRecord {
  /** Requester id. */
  readonly sourceId: number;
  /** PASID, when the request carried one. */
  readonly pasid: number | undefined;
  /** Page address. */
  readonly address: bigint;
  /** Read access requested. */
  readonly read: boolean;
  /** Write access requested. */
  readonly write: boolean;
  /** Execute requested. */
  readonly exec: boolean;
  /** Privileged mode requested. */
  readonly priv: boolean;
  /** Page request group index. */
  readonly prgIndex: number;
  /** Last page in group. */
  readonly lpig: boolean;
  /** 'pending', 'responded' (with `responseCode`), or 'overflow' (dropped, PRS.PRO set). */
  status: 'pending' | 'responded' | 'overflow';
  /** The page group response code, once answered. */
  responseCode: number | undefined;
}

const HISTORY = 64;

/** The page request queue of one unit. */
export class PageRequestQueue {
  private readonly pending = new Map<number, PageRequestRecord>();
  private readonly history: PageRequestRecord[] = [];
  private readonly nextPrgi = new Map<number, number>();

  /**
   * @param regs - the register file
   * @param memory - physical memory
   * @param raise - delivers a page request event
   */
  constructor(
    private readonly regs: RegisterFile,
    private readonly memory: PhysicalMemoryLike,
    private readonly raise: () => void,
  ) {}

  /** Raises a one-page group for a recoverable fault. */
  submit(r: {
    sid: number;
    pasid: number | undefined;
    addrLo: number;
    addrHi: number;
    write: boolean;
    exec: boolean;
    priv: boolean;
  }): PageRequestRecord {
    const regs = this.regs;
    const prgi = this.nextPrgi.get(r.sid) ?? 0;
    this.nextPrgi.set(r.sid, (prgi + 1) % 512);
    const record: PageRequestRecord = {
      sourceId: r.sid,
      pasid: r.pasid,
      address: (BigInt(r.addrHi) << 32n) | BigInt(r.addrLo),
      read: !r.write,
      write: r.write,
      exec: r.exec,
      priv: r.priv,
      prgIndex: prgi,
      lpig: true,
      status: 'pending',
      responseCode: undefined,
    };
    const pqaLo = regs.get(PQA_REG);
    const base = entryAddress(pqaLo, regs.get(PQA_REG + 4));
    const size = 4096 * 2 ** (pqaLo & 7);
    const tail = regs.get(PQT_REG) & 0x7ffe0;
    const head = regs.get(PQH_REG) & 0x7ffe0;
    const next = (tail + 32) % size;
    if (base === 0 || next === head || !this.memory.contains(base + tail, 32)) {
      regs.or(PRS_REG, PRS_PRO);
      record.status = 'overflow';
      this.remember(record);
      return record;
    }
    const m = this.memory;
    const a = base + tail;
    const pp = r.pasid !== undefined;
    m.write32At(a, 1 | (pp ? 0x100 : 0) | ((r.sid & 0xffff) << 16));
    m.write32At(a + 4, ((pp ? (r.pasid ?? 0) & 0xfffff : 0) | (r.exec ? 1 << 20 : 0) | (r.priv ? 1 << 21 : 0)) >>> 0);
    m.write32At(a + 8, (r.addrLo & 0xfffff000) | (prgi << 3) | 4 | (r.write ? 2 : 1));
    m.write32At(a + 12, r.addrHi);
    for (let k = 16; k < 32; k += 4) m.write32At(a + k, 0);
    regs.set(PQT_REG, next);
    this.pending.set(r.sid * 512 + prgi, record);
    this.remember(record);
    const prs = regs.get(PRS_REG);
    regs.set(PRS_REG, prs | PRS_PPR);
    if ((prs & PRS_PPR) === 0) this.raise();
    return record;
  }

  /** A page group response for (rid, prgi): completes the pending group. */
  respond(rid: number, pasid: number | undefined, prgi: number, code: number): void {
    const key = rid * 512 + prgi;
    const rec = this.pending.get(key);
    if (rec === undefined || rec.pasid !== pasid) return;
    this.pending.delete(key);
    rec.status = 'responded';
    rec.responseCode = code;
  }

  /** Pending requests, then recent history (oldest first). */
  records(): PageRequestRecord[] {
    return [...this.history];
  }

  private remember(r: PageRequestRecord): void {
    this.history.push(r);
    while (this.history.length > HISTORY) {
      const old = this.history[0]!;
      if (old.status === 'pending') break;
      this.history.shift();
    }
  }
}
