/**
 * The vSMMU: an iommufd vIOMMU of type `IOMMU_VIOMMU_TYPE_ARM_SMMUV3`, after Linux
 * `drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-iommufd.c` (`struct arm_vsmmu`). It holds a
 * stage-2 nest parent (whose VMID it lends to every guest TLBI), maps the guest's virtual
 * StreamIDs (vDEVICEs) to physical ones, allocates nested domains over its parent
 * (`arm_vsmmu_alloc_domain_nested`), passes the guest's raw command-queue entries through
 * upstream's allow-list (`arm_vsmmu_cache_invalidate`) and forwards the stage-1 events of its
 * masters to the `IOMMU_VEVENTQ_TYPE_ARM_SMMUV3` sink (`arm_vmaster_report_event`).
 */

import {
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IoasidError,
  type DriverDomain,
  type DriverViommu,
  type EndpointDescriptor,
  type HwptData,
  type InvalidateEntry,
} from '@ioasid/uapi';
import { EVT_WORDS } from '../spec/events.js';
import type { SmmuCommand } from '../spec/commands.js';
import { rawCommand, type PagingDomain } from './domains.js';
import { convertUserCommand } from './nested.js';

/** Linux `CMDQ_BATCH_ENTRIES` (BITS_PER_LONG): a vSMMU batch is 63 user commands and a CMD_SYNC. */
export const CMDQ_BATCH_ENTRIES = 64;

/** What a vSMMU needs from the driver of its SMMU instance. */
export interface VsmmuHost {
  /** Issues commands followed by CMD_SYNC; returns the index of a failed command or -1. */
  issue(cmds: SmmuCommand[]): number;
  /** The physical StreamID of `dev` when it is a master of this SMMU instance, else undefined. */
  streamIdOf(dev: EndpointDescriptor): number | undefined;
  /** A nested domain of `vsmmu` from the guest's vSTE (validated as `allocNestedDomain` does). */
  allocVsmmuNested(vsmmu: ArmVsmmu, data: HwptData, options: { readonly iopf: boolean }): DriverDomain;
  /** Forgets the vSID a master of this SMMU reports its events with (`arm_smmu_master_clear_vmaster`). */
  clearVmaster(sid: number, vsmmu: ArmVsmmu): void;
}

/** A vSMMU (`struct arm_vsmmu`): the parent, its VMID, the vDEVICEs and the event sink. */
export class ArmVsmmu implements DriverViommu {
  /** It reports SMMUv3 event records (`struct iommu_vevent_arm_smmuv3`). */
  readonly eventTypes: readonly number[] = [IOMMU_VEVENTQ_TYPE_ARM_SMMUV3];
  /** The VMID of the guest: the parent's (`vsmmu->vmid = s2_parent->s2_cfg.vmid`). */
  readonly vmid: number;
  /** Virtual StreamID → physical StreamID (iommufd's `viommu->vdevs`, resolved to `master->streams[0].id`). */
  private readonly vsids = new Map<number, number>();
  /** Physical StreamID → virtual StreamID. */
  private readonly sids = new Map<number, number>();
  private sink: ((data: Uint8Array) => void) | undefined;
  private freed = false;

  /**
   * @param host - the driver of the SMMU instance
   * @param parent - the stage-2 nest parent (`vsmmu->s2_parent`)
   */
  constructor(
    private readonly host: VsmmuHost,
    readonly parent: PagingDomain,
  ) {
    this.vmid = parent.id;
  }

  /** True when `host` is the driver this vSMMU belongs to (`nested_domain->vsmmu->smmu == master->smmu`). */
  belongsTo(host: VsmmuHost): boolean {
    return this.host === host;
  }

  /**
   * IOMMU_VDEVICE_ALLOC's driver side: `virtId` is the guest's StreamID for `dev`. A StreamID
   * is 32 bits (the `CMDQ_CFGI_0_SID` and `EVTQ_0_SID` fields), so a larger ID is EINVAL, as is
   * a device that is not a master of this SMMU instance (iommufd: `viommu->iommu_dev !=
   * __iommu_get_iommu_dev(idev->dev)`).
   */
  addVdevice(dev: EndpointDescriptor, virtId: bigint): void {
    if (virtId < 0n || virtId > 0xffffffffn) {
      throw new IoasidError('EINVAL', 'virtId', `a virtual StreamID is 32 bits (got 0x${virtId.toString(16)})`);
    }
    const sid = this.host.streamIdOf(dev);
    if (sid === undefined) throw new IoasidError('EINVAL', 'dev', `${dev.name} is not behind the SMMU instance of this vIOMMU`);
    const vsid = Number(virtId);
    if (this.vsids.has(vsid) || this.sids.has(sid)) throw new IoasidError('EEXIST', 'virtId', `vSID 0x${vsid.toString(16)} or ${dev.name} already has a vDEVICE`);
    this.vsids.set(vsid, sid);
    this.sids.set(sid, vsid);
  }

  /** Forgets `dev`'s virtual StreamID. */
  removeVdevice(dev: EndpointDescriptor): void {
    const sid = this.host.streamIdOf(dev);
    if (sid === undefined) return;
    const vsid = this.sids.get(sid);
    if (vsid === undefined) return;
    this.sids.delete(sid);
    this.vsids.delete(vsid);
    this.host.clearVmaster(sid, this);
  }

  /** The guest's StreamID for the master with physical StreamID `sid` (`iommufd_viommu_get_vdev_id`). */
  vsidOf(sid: number): number | undefined {
    return this.sids.get(sid);
  }

  /** `arm_vsmmu_alloc_domain_nested`: a nested domain over the parent, from the guest's vSTE. */
  allocNested(_dev: EndpointDescriptor, data: HwptData, options: { readonly iopf: boolean }): DriverDomain {
    return this.host.allocVsmmuNested(this, data, options);
  }

  /**
   * `arm_vsmmu_cache_invalidate`: every entry must be an `arm_smmuv3` command (else EINVAL,
   * nothing handled, as `iommu_copy_struct_from_full_user_array` refuses the array); each is
   * converted by `arm_vsmmu_convert_user_cmd` (the vSMMU's VMID on TLBI_NH_*, the physical
   * StreamID for the vSID of ATC_INV / CFGI_CD / CFGI_CD_ALL, TLBI_NSNH_ALL → TLBI_NH_ALL;
   * CFGI_STE, CMD_SYNC and every other opcode EIO, an unknown vSID EIO), and every 63
   * converted commands go to the queue with a CMD_SYNC, the rest at the end.
   *
   * As upstream: when a conversion fails, the commands converted since the last issued batch
   * are not issued, yet `entry_num` counts them (it is the index of the failing entry), and the
   * error names that entry. A command the SMMU rejects (CERROR) is skipped by the queue's error
   * handler as `arm_smmu_cmdq_skip_err` does, and the call still succeeds.
   */
  invalidate(entries: readonly InvalidateEntry[]): number {
    for (const [i, e] of entries.entries()) {
      if (e.type !== 'arm_smmuv3') {
        throw new IoasidError('EINVAL', `entries[${i}]`, `entry type '${e.type}' is not IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3; 0 entries handled`, { handled: 0 });
      }
    }
    const lookup = (vsid: number) => this.vsids.get(vsid);
    let batch: SmmuCommand[] = [];
    for (const [i, e] of entries.entries()) {
      if (e.type !== 'arm_smmuv3') continue; // checked above
      let cmd: [bigint, bigint];
      try {
        cmd = convertUserCommand(e.cmd, this.vmid, lookup, i);
      } catch (err) {
        const x = err as IoasidError;
        throw new IoasidError(x.errno, x.argument, `${x.message.replace(/^[A-Z]+ \(\d+\)( \[[^\]]*\])?: /, '')}; ${i} entries handled (entry_num), ${batch.length} of them converted but not issued`, { handled: i });
      }
      batch.push(rawCommand(cmd));
      if (i + 1 < entries.length && batch.length !== CMDQ_BATCH_ENTRIES - 1) continue;
      this.host.issue(batch);
      batch = [];
    }
    return entries.length;
  }

  /** Where `IOMMU_VEVENTQ_TYPE_ARM_SMMUV3` events go (undefined: no vEVENTQ). */
  setEventSink(type: number, sink: ((data: Uint8Array) => void) | undefined): void {
    if (type !== IOMMU_VEVENTQ_TYPE_ARM_SMMUV3) return;
    this.sink = sink;
  }

  /**
   * `arm_vmaster_report_event`: the 32-byte record `words` (eight little-endian 32-bit words,
   * as read from the event queue) with its StreamID field (`EVTQ_0_SID`, bits [63:32] of
   * qword 0) replaced by `vsid`, to the vEVENTQ. Returns false when the vSMMU has no vEVENTQ
   * (`iommufd_viommu_report_event` → -EOPNOTSUPP: the host logs the event instead).
   */
  report(words: ArrayLike<number>, vsid: number): boolean {
    const sink = this.sink;
    if (sink === undefined || this.freed) return false;
    const record = new Uint8Array(EVT_WORDS * 4);
    const view = new DataView(record.buffer);
    for (let i = 0; i < EVT_WORDS; i++) view.setUint32(i * 4, words[i]!, true);
    view.setUint32(4, vsid, true);
    sink(record);
    return true;
  }

  /** Releases the vSMMU (core has destroyed its nested HWPTs, vDEVICEs and vEVENTQs first). */
  free(): void {
    this.freed = true;
    this.sink = undefined;
    for (const sid of this.sids.keys()) this.host.clearVmaster(sid, this);
    this.sids.clear();
    this.vsids.clear();
  }
}
