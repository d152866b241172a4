/**
 * The driver side of the command queue (Linux `arm_smmu_cmdq_issue_cmdlist`): commands are
 * written to the queue memory at PROD, every batch ends with CMD_SYNC, PROD is published and
 * CONS polled until it passes the SYNC. A CERROR stops the queue: the driver acknowledges
 * GERROR.CMDQ_ERR, replaces the bad command with a CMD_SYNC (as Linux does) and resumes.
 */

import { IoasidError, type PhysicalMemoryLike } from '@ioasid/uapi';
import { CMD_SYNC, CMDQ_SYNC_CS_NONE, encodeCommandWords, type SmmuCommand } from '../spec/commands.js';
import { CMDQ_ENT_SIZE, qEmpty, qIndex, qInc, qPtr } from '../spec/queue.js';
import { GERROR_CMDQ_ERR, SMMU_CMDQ_CONS, SMMU_CMDQ_PROD, SMMU_GERROR, SMMU_GERRORN, CMDQ_CONS_ERR, regField } from '../spec/registers.js';
import type { SmmuRegisterWindow } from './interfaces.js';

/** Outcome of one batch: -1, or the index (in the caller's list) of the command that failed. */
export interface CmdqResult {
  /** Index of the failing command, or -1. */
  readonly failed: number;
  /** The CMDQ_CONS.ERR code of the failure. */
  readonly error: number;
}

/** The command queue as software drives it. */
export class CommandQueue {
  private prod = 0;
  private readonly words = new Uint32Array(4);
  /** CMD_SYNCs issued (for tests of Linux's sync counts). */
  syncs = 0;

  /**
   * @param memory - physical memory holding the queue
   * @param regs - the SMMU registers
   * @param base - queue base (physical)
   * @param log2 - log2 of the number of entries
   */
  constructor(
    private readonly memory: PhysicalMemoryLike,
    private readonly regs: SmmuRegisterWindow,
    readonly base: number,
    readonly log2: number,
  ) {}

  private write(c: SmmuCommand): void {
    const raw = (c as { raw?: Uint32Array }).raw;
    if (raw !== undefined) this.words.set(raw);
    else encodeCommandWords(c, this.words);
    const addr = this.base + qIndex(this.prod, this.log2) * CMDQ_ENT_SIZE;
    for (let i = 0; i < 4; i++) this.memory.write32At(addr + i * 4, this.words[i]!);
    this.prod = qInc(this.prod, this.log2);
  }

  /**
   * Issues `cmds` followed by CMD_SYNC (in batches that fit the queue) and waits for completion.
   * Returns the first failing command (the rest still ran, as after Linux's skip).
   */
  issue(cmds: readonly SmmuCommand[]): CmdqResult {
    const batch = (1 << this.log2) - 2;
    let failed = -1;
    let error = 0;
    for (let start = 0; start < cmds.length || (start === 0 && cmds.length === 0); start += batch) {
      const chunk = cmds.slice(start, start + batch);
      const first = this.prod;
      for (const c of chunk) this.write(c);
      this.write({ op: CMD_SYNC, cs: CMDQ_SYNC_CS_NONE });
      this.syncs++;
      const r = this.publish(first);
      if (r.failed >= 0 && failed < 0) {
        failed = start + r.failed;
        error = r.error;
      }
      if (cmds.length === 0) break;
    }
    return { failed, error };
  }

  private publish(first: number): CmdqResult {
    let failed = -1;
    let error = 0;
    // Bounded: at most one error per command of the batch.
    for (let tries = 0; tries <= 1 << this.log2; tries++) {
      this.regs.write32(SMMU_CMDQ_PROD, this.prod);
      const consReg = this.regs.read32(SMMU_CMDQ_CONS);
      const cons = qPtr(consReg, this.log2);
      const gerr = (this.regs.read32(SMMU_GERROR) ^ this.regs.read32(SMMU_GERRORN)) & GERROR_CMDQ_ERR;
      if (gerr === 0) {
        if (qEmpty(this.prod, cons, this.log2)) return { failed, error };
        throw new IoasidError('ETIMEDOUT', undefined, 'CMD_SYNC did not complete');
      }
      // CERROR: replace the offending command with a CMD_SYNC, acknowledge, resume.
      const idx = (qIndex(cons, this.log2) - qIndex(first, this.log2) + (1 << this.log2)) % (1 << this.log2);
      if (failed < 0) {
        failed = idx;
        error = regField(consReg, CMDQ_CONS_ERR);
      }
      encodeCommandWords({ op: CMD_SYNC }, this.words);
      const addr = this.base + qIndex(cons, this.log2) * CMDQ_ENT_SIZE;
      for (let i = 0; i < 4; i++) this.memory.write32At(addr + i * 4, this.words[i]!);
      this.regs.write32(SMMU_GERRORN, this.regs.read32(SMMU_GERROR));
    }
    throw new IoasidError('EIO', undefined, 'the command queue keeps failing');
  }
}
