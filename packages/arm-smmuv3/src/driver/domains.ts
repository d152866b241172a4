/**
 * SMMUv3 domains as Linux's arm-smmu-v3 has them: stage-1 paging (a CD with its own ASID over an
 * io-pgtable ARM_64_LPAE_S1), stage-2 paging (a VMID over ARM_64_LPAE_S2; the nest parent),
 * nested (a validated guest vSTE over an S2 parent), SVA (a CD pointing at a process's CPU page
 * table, invalidated by its mm notifier), identity (bypass STE) and blocked (abort STE).
 */

import {
  IoasidError,
  type DomainKind,
  type DriverDomain,
  type InvalidateEntry,
  type IovaRange,
  type ProcessMm,
} from '@ioasid/uapi';
import { commandWords, commandOp, tlbiRange, CMD_ATC_INV, CMD_TLBI_NH_ALL, CMD_TLBI_NH_ASID, CMD_TLBI_NH_VA, CMD_TLBI_S12_VMALL, CMD_TLBI_S2_IPA, ATC_INV_SIZE_ALL, type SmmuCommand } from '../spec/commands.js';
import { getField } from '../spec/bits.js';
import { CMD_FIELDS } from '../spec/commands.js';
import { S1_AP_RDONLY } from '../spec/pgtable.js';
import type { IoPgtable} from './io-pgtable.js';
import { leafDirty } from './io-pgtable.js';
import { convertUserCommand, type ValidVste } from './nested.js';
import type { ArmVsmmu } from './vsmmu.js';

/** What a domain needs from the driver. */
export interface DomainHost {
  /** Issues commands followed by CMD_SYNC; returns the index of a failed command or -1. */
  issue(cmds: SmmuCommand[]): number;
  /** Range invalidation is available (IDR3.RIL). */
  readonly ril: boolean;
  /** Releases an ASID. */
  freeAsid(asid: number): void;
  /** Releases a VMID. */
  freeVmid(vmid: number): void;
}

/** Where a domain is attached: a master's StreamID and, for a PASID attachment, the SSID. */
export interface Attachment {
  /** StreamID. */
  readonly sid: number;
  /** SubstreamID (undefined: the RID). */
  readonly ssid: number | undefined;
  /** ATS is enabled on the master (ATC invalidations are needed). */
  readonly ats: boolean;
}

const PAGE_SIZES_4K: readonly bigint[] = [4096n, 2n ** 21n, 2n ** 30n];

/** Common domain behaviour: every operation a kind does not have is refused. */
export abstract class SmmuDomain implements DriverDomain {
  /** What the domain is. */
  abstract readonly kind: DomainKind;
  /** Page sizes. */
  readonly pageSizes: readonly bigint[] = PAGE_SIZES_4K;
  /** Apertures. */
  apertures: readonly IovaRange[] = [];
  /** Where it is attached. */
  readonly attachments = new Set<Attachment>();

  /** @param host - the driver */
  constructor(protected readonly host: DomainHost) {}

  /** Maps pages (paging domains only). */
  map(_iova: bigint, _pfns: Uint32Array, _count: number, _prot: number): void {
    throw new IoasidError('EINVAL', 'hwpt', `a ${this.kind} domain has no kernel-managed page table`);
  }

  /** Unmaps (paging domains only). */
  unmap(_iova: bigint, _length: bigint): void {
    throw new IoasidError('EINVAL', 'hwpt', `a ${this.kind} domain has no kernel-managed page table`);
  }

  /** User invalidation (nested domains only). */
  invalidateUser(_entries: readonly InvalidateEntry[]): number {
    throw new IoasidError('EOPNOTSUPP', 'hwpt', `a ${this.kind} domain takes no user invalidation`);
  }

  /** Dirty tracking (stage-1 paging domains allocated with it). */
  setDirtyTracking(_enable: boolean): void {
    throw new IoasidError('EOPNOTSUPP', 'hwpt', 'dirty tracking was not enabled at allocation');
  }

  /** Reads dirty state (stage-1 paging domains allocated with it). */
  readDirty(_iova: bigint, _length: bigint, _pageSize: bigint, _bitmap: Uint8Array, _noClear: boolean): void {
    throw new IoasidError('EOPNOTSUPP', 'hwpt', 'dirty tracking was not enabled at allocation');
  }

  /** Releases the domain. */
  free(): void {
    // nothing by default
  }

  /** True when `host` (a driver, that is one SMMU instance) allocated this domain. */
  ownedBy(host: DomainHost): boolean {
    return this.host === host;
  }

  /** ATC invalidations for every ATS-enabled attachment. */
  protected atcInv(): SmmuCommand[] {
    const out: SmmuCommand[] = [];
    for (const a of this.attachments) {
      if (!a.ats) continue;
      out.push({ op: CMD_ATC_INV, sid: a.sid, ssv: a.ssid !== undefined && a.ssid !== 0, ssid: a.ssid ?? 0, size: ATC_INV_SIZE_ALL, addr: 0 });
    }
    return out;
  }
}

/** A kernel-managed paging domain: stage 1 (ASID) or stage 2 (VMID, possibly a nest parent). */
export class PagingDomain extends SmmuDomain {
  /** Always 'paging'. */
  readonly kind = 'paging';
  /** The I/O page table. */
  readonly pgtable: IoPgtable;

  /**
   * @param host - the driver
   * @param pgtable - the page table
   * @param stage - 1 (CD + ASID) or 2 (STE + VMID)
   * @param id - the ASID (stage 1) or VMID (stage 2)
   * @param nestParent - a stage-2 nest parent (unmaps also flush nested stage-1 entries)
   * @param dirty - dirty tracking (stage-1 HD)
   */
  constructor(
    host: DomainHost,
    pgtable: IoPgtable,
    readonly stage: 1 | 2,
    readonly id: number,
    readonly nestParent: boolean,
    readonly dirty: boolean,
  ) {
    super(host);
    this.pgtable = pgtable;
    this.apertures = [{ start: 0n, last: (1n << BigInt(pgtable.options.ias)) - 1n }];
  }

  override map(iova: bigint, pfns: Uint32Array, count: number, prot: number): void {
    this.pgtable.map(iova, pfns, count, prot);
  }

  override unmap(iova: bigint, length: bigint): void {
    const r = this.pgtable.unmap(iova, length);
    this.flush(Number(iova), Number(length), !r.tablesFreed);
  }

  /** Invalidates the TLB (and ATCs) for a range. */
  flush(iova: number, length: number, leaf: boolean): void {
    const cmds: SmmuCommand[] = [];
    if (this.stage === 1) {
      // Linux switches to an ASID-wide invalidation when a page-by-page one would be too long.
      if (!this.host.ril && length / 4096 > 64) cmds.push({ op: CMD_TLBI_NH_ASID, vmid: 0, asid: this.id });
      else cmds.push(...tlbiRange({ op: CMD_TLBI_NH_VA, vmid: 0, asid: this.id }, iova, length, this.host.ril, leaf));
    } else {
      if (!this.host.ril && length / 4096 > 64) cmds.push({ op: CMD_TLBI_S12_VMALL, vmid: this.id });
      else cmds.push(...tlbiRange({ op: CMD_TLBI_S2_IPA, vmid: this.id }, iova, length, this.host.ril, leaf));
      // When the S2 of a nest parent changes, every nested stage-1 entry of the VMID goes too.
      if (this.nestParent) cmds.push({ op: CMD_TLBI_NH_ALL, vmid: this.id });
    }
    cmds.push(...this.atcInv());
    this.host.issue(cmds);
  }

  override setDirtyTracking(_enable: boolean): void {
    // arm_smmu_set_dirty_tracking: HD is always on in a dirty-tracking domain's CD.
    if (!this.dirty) super.setDirtyTracking(_enable);
  }

  override readDirty(iova: bigint, length: bigint, pageSize: bigint, bitmap: Uint8Array, noClear: boolean): void {
    if (!this.dirty) super.readDirty(iova, length, pageSize, bitmap, noClear);
    const start = Number(iova);
    const len = Number(length);
    const ps = Number(pageSize);
    const mem = this.pgtable;
    const cleared = { any: false };
    const memory = this.pgtable.memory;
    mem.walkLeaves(start, len, (slot, va, size, lo, hi) => {
      if (!leafDirty(lo, hi)) return;
      const first = Math.max(start, va);
      const last = Math.min(start + len, va + size) - 1;
      for (let b = Math.floor((first - start) / ps); b <= Math.floor((last - start) / ps); b++) bitmap[b >> 3]! |= 1 << (b & 7);
      if (!noClear) {
        memory.write32At(slot, (lo | S1_AP_RDONLY) >>> 0); // writable-clean
        cleared.any = true;
      }
    });
    if (cleared.any) this.flush(start, len, true);
  }

  override free(): void {
    if (this.stage === 1) {
      this.host.issue([{ op: CMD_TLBI_NH_ASID, vmid: 0, asid: this.id }]);
      this.host.freeAsid(this.id);
    } else {
      this.host.issue([{ op: CMD_TLBI_S12_VMALL, vmid: this.id }]);
      this.host.freeVmid(this.id);
    }
    this.pgtable.free();
  }
}

/** A nested domain: the guest's vSTE (its CD table, in IPA) over a stage-2 nest parent. */
export class NestedDomain extends SmmuDomain {
  /** Always 'nested'. */
  readonly kind = 'nested';

  /**
   * @param host - the driver
   * @param parent - the stage-2 parent
   * @param vste - the validated vSTE
   * @param vsmmu - the vSMMU it was allocated from (`arm_smmu_nested_domain.vsmmu`), if any
   */
  constructor(host: DomainHost, readonly parent: PagingDomain, readonly vste: ValidVste, readonly vsmmu?: ArmVsmmu) {
    super(host);
    this.apertures = parent.apertures;
  }

  /**
   * User invalidation on the nested HWPT itself: raw commands through upstream's allow-list
   * (EIO otherwise), the VMID forced to the parent's and StreamIDs taken as the StreamIDs of
   * the devices attached to this domain (a nested HWPT allocated over a HWPT has no vDEVICEs).
   * A nested domain of a vSMMU has no such entry point, as upstream's `arm_smmu_nested_ops`
   * has no `cache_invalidate_user` (EOPNOTSUPP): its guest invalidates through the vIOMMU.
   */
  override invalidateUser(entries: readonly InvalidateEntry[]): number {
    if (this.vsmmu !== undefined) {
      throw new IoasidError('EOPNOTSUPP', 'hwpt', 'a nested HWPT of a vIOMMU is invalidated through its vIOMMU (IOMMU_HWPT_INVALIDATE with the vIOMMU id)');
    }
    const sids = new Set([...this.attachments].map((a) => a.sid));
    const cmds: SmmuCommand[] = [];
    const raw: [bigint, bigint][] = [];
    let handled = 0;
    let error: IoasidError | undefined;
    for (const [i, e] of entries.entries()) {
      if (e.type !== 'arm_smmuv3') {
        error = new IoasidError('EINVAL', `entries[${i}]`, 'not an arm_smmuv3 invalidation entry');
        break;
      }
      try {
        raw.push(convertUserCommand(e.cmd, this.parent.id, (v) => (sids.has(v) ? v : undefined), i));
        handled++;
      } catch (err) {
        error = err as IoasidError;
        break;
      }
    }
    for (const r of raw) cmds.push(rawCommand(r));
    // Batches of up to 63 commands + CMD_SYNC, as arm_vsmmu_cache_invalidate issues them.
    for (let i = 0; i < cmds.length; i += 63) {
      const failed = this.host.issue(cmds.slice(i, i + 63));
      if (failed >= 0) {
        throw new IoasidError('EIO', `entries[${i + failed}]`, `the SMMU rejected the command (CERROR_ILL); ${i + failed} entries handled`, { handled: i + failed });
      }
    }
    if (error !== undefined) {
      throw new IoasidError(error.errno, error.argument, `${error.message.replace(/^[A-Z]+ \(\d+\)( \[[^\]]*\])?: /, '')}; ${handled} entries handled`, { handled });
    }
    return handled;
  }
}

/** A raw command carried through as words (the model decodes it). */
export interface RawCommand extends SmmuCommand {
  /** The command's words. */
  readonly raw: Uint32Array;
}

/** A raw command from its two 64-bit words. */
export function rawCommand(q: readonly [bigint, bigint]): RawCommand {
  const w = commandWords(q);
  return { op: commandOp(w), raw: w };
}

/** True when a command carries its own words. */
export function isRaw(c: SmmuCommand): c is RawCommand {
  return 'raw' in c;
}

/** An SVA domain: a CD pointing at the process's AArch64 page table, with its own ASID. */
export class SvaDomain extends SmmuDomain {
  /** Always 'sva'. */
  readonly kind = 'sva';
  private readonly unlisten: () => void;

  /**
   * @param host - the driver
   * @param mm - the process address space
   * @param asid - the SMMU-private ASID (ASET=1)
   */
  constructor(host: DomainHost, readonly mm: ProcessMm, readonly asid: number) {
    super(host);
    this.apertures = [{ start: 0n, last: (1n << 48n) - 1n }];
    // arch_invalidate_secondary_tlbs: TLBI by VA range (ASID-wide when huge), then ATC.
    this.unlisten = mm.onInvalidate((vaddr, length) => {
      if (this.attachments.size === 0) return;
      const cmds: SmmuCommand[] = [];
      if (!host.ril && length / 4096n > 512n) cmds.push({ op: CMD_TLBI_NH_ASID, vmid: 0, asid });
      else cmds.push(...tlbiRange({ op: CMD_TLBI_NH_VA, vmid: 0, asid }, Number(vaddr), Number(length), host.ril, true));
      cmds.push(...this.atcInv());
      host.issue(cmds);
    });
  }

  override free(): void {
    this.unlisten();
    this.host.issue([{ op: CMD_TLBI_NH_ASID, vmid: 0, asid: this.asid }]);
    this.host.freeAsid(this.asid);
  }
}

/** The identity domain: STE bypass (or S1DSS=BYPASS while PASIDs are in use). */
export class IdentityDomain extends SmmuDomain {
  /** Always 'identity'. */
  readonly kind = 'identity';
}

/** The blocked domain: STE abort (or S1DSS=TERMINATE while PASIDs are in use). */
export class BlockedDomain extends SmmuDomain {
  /** Always 'blocked'. */
  readonly kind = 'blocked';
}

/** The StreamID field of a raw command (for tests). */
export function rawSid(c: RawCommand): number {
  return getField(c.raw, CMD_FIELDS.StreamID);
}
