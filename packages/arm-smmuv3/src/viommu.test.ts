/**
 * The vSMMU (IOMMU_VIOMMU_TYPE_ARM_SMMUV3) as a VMM drives it through the uAPI, on the model:
 * expectations worked out from IHI0070 (CMD_* and event record layouts) and Linux
 * `arm-smmu-v3-iommufd.c` / `arm_smmu_handle_event`, not from the model's output.
 */

import { describe, expect, it } from 'vitest';
import {
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_DEFAULT,
  isIoasidError,
  type InvalidateEntry,
  type Vevent,
} from '@ioasid/uapi';
import { ProcessGuestMemory } from '@ioasid/core';
import { createSmmuV3System } from './system.js';
import { smmuV3NestingGuestWith } from './guest/nesting-guest.js';
import { SmmuV3Driver } from './driver/smmu-driver.js';
import { decodeCd, encodeCd } from './spec/cd.js';
import { decodeSte } from './spec/ste.js';
import {
  CMD_ATC_INV,
  CMD_CFGI_CD,
  CMD_CFGI_STE,
  CMD_PREFETCH_CONFIG,
  CMD_SYNC,
  CMD_TLBI_NH_ASID,
  CMD_TLBI_NH_VA,
  CMD_TLBI_NSNH_ALL,
  CMD_TLBI_S12_VMALL,
  encodeCommand,
  type SmmuCommand,
} from './spec/commands.js';
import { F_TRANSLATION } from './spec/events.js';

const DEV = '0000:00:02.0'; // requester ID 0x10: the physical StreamID
const DEV_B = '0000:00:03.0'; // StreamID 0x18
const SID = 0x10;
const VSID = 0x42;
const GPA = 0x4000_0000n; // guest RAM at this IPA (the nest parent's IOVA)
const RAM = 0x10_0000n; // 1 MiB
const PAGE_A = GPA + 0x1000n;
const PAGE_B = GPA + 0x2000n;
const GIOVA = 0x10000n;

const raw = (...cmds: SmmuCommand[]): InvalidateEntry[] => cmds.map((c) => ({ type: 'arm_smmuv3', cmd: encodeCommand(c) }));

function expectErrno(f: () => unknown, errno: string, argument?: string): { readonly handled: number | undefined } {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(isIoasidError(caught) ? [caught.errno, argument === undefined ? undefined : caught.argument] : caught).toEqual([errno, argument]);
  return { handled: isIoasidError(caught) ? caught.handled : undefined };
}

/**
 * A VMM: guest RAM (touched, so its frames exist before the context opens) mapped at GPA in an
 * IOAS under a stage-2 nest parent, a vSMMU over the parent, the device with vSID 0x42, and a
 * guest stage 1 (ASID 1, one CD) whose invalidateAll() names the device by its vSID.
 */
function vmm(options: { vdevice?: boolean } = {}) {
  const system = createSmmuV3System({ devices: [DEV, DEV_B] });
  const driver = system.driver;
  if (!(driver instanceof SmmuV3Driver)) throw new Error('not the SMMUv3 driver');
  const proc = system.createProcess();
  const ram = proc.mmap(RAM);
  proc.write(ram, new Uint8Array(Number(RAM)));
  proc.write(ram + (PAGE_A - GPA), Uint8Array.of(0xa1, 0xa2));
  proc.write(ram + (PAGE_B - GPA), Uint8Array.of(0xb1, 0xb2));
  // The level-2 stream table of the device's StreamID was made when the driver probed it (as
  // Linux does), so binding and the first attach allocate no stream-table memory. What the
  // first stage-1 attach does keep is the master's CD table (Linux keeps it until the device is
  // released): 2^(20−10) L1CDs of 8 bytes (8 KiB, 2 frames) + one 64 KiB leaf of 1024 CDs (16
  // frames). One attach first, so it is in the baseline.
  const framesAtProbe = system.memory.framesInUse;
  const warm = system.open(proc);
  const warmDev = warm.bindDevice(DEV);
  expect(system.memory.framesInUse).toBe(framesAtProbe);
  warm.attach(warmDev, warm.allocIoas());
  warm.close();
  const framesBefore = system.memory.framesInUse;
  expect(framesBefore - framesAtProbe).toBe(2 + 16);
  const ctx = system.open(proc);
  const ioas = ctx.allocIoas();
  ctx.mapDma(ioas, { iova: GPA, vaddr: ram, length: RAM });
  const dev = ctx.bindDevice(DEV);
  const parent = ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } });
  const viommu = ctx.allocViommu(dev, { type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3, hwpt: parent });
  const vdev = options.vdevice === false ? undefined : ctx.allocVdevice(viommu, dev, BigInt(VSID));
  const guestMemory = new ProcessGuestMemory(proc, ram, GPA, RAM);
  const s1 = smmuV3NestingGuestWith({ streamId: VSID }).create(guestMemory);
  s1.map(GIOVA, PAGE_A, true);
  const nested = ctx.allocHwpt(dev, { parent: viommu, data: s1.data });
  const ep = system.device(DEV);
  const read = (iova: bigint) => {
    const r = ep.dma({ iova, size: 2, write: false });
    return r.ok ? [...r.data] : r.fault.name;
  };
  return { system, driver, proc, ram, framesBefore, ctx, ioas, dev, parent, viommu, vdev, guestMemory, s1, nested, ep, read };
}

/** The qwords of a vEVENTQ record (little-endian). */
function qwords(e: Vevent): bigint[] {
  const v = new DataView(e.data.buffer, e.data.byteOffset, e.data.byteLength);
  return [0, 1, 2, 3].map((i) => v.getBigUint64(i * 8, true));
}

describe('vSMMU: IOMMU_VIOMMU_ALLOC, vDEVICE and a nested HWPT from the vIOMMU', () => {
  it('hw_info offers IOMMU_VIOMMU_TYPE_ARM_SMMUV3 when the SMMU nests; the QEMU profile (no S2P) offers none, with the reason, and allocViommu is EOPNOTSUPP', () => {
    const system = createSmmuV3System({ devices: [DEV] });
    const ctx = system.open(system.createProcess());
    expect(ctx.getInfo(ctx.bindDevice(DEV)).viommuTypes).toEqual([IOMMU_VIOMMU_TYPE_ARM_SMMUV3]);
    const qemu = createSmmuV3System({ devices: [DEV], profile: 'qemu' });
    const qctx = qemu.open(qemu.createProcess());
    const info = qctx.getInfo(qctx.bindDevice(DEV));
    expect(info.viommuTypes).toEqual([]);
    expect(info.unsupported['viommu']).toMatch(/S1P or S2P/);
  });

  it('a VMM flow: vSID 0x42 for the device with StreamID 0x10; DMA goes through the guest stage 1 and the stage 2; a guest TLBI_NH_VA through the vIOMMU (VMID forced to the parent\'s) makes a remapped page visible', () => {
    const w = vmm();
    // IOMMU_HWPT_ALLOC over the vIOMMU refused the attach until the vDEVICE existed; now it works.
    w.ctx.attach(w.dev, w.nested);
    expect(w.read(GIOVA)).toEqual([0xa1, 0xa2]);
    w.s1.map(GIOVA, PAGE_B, true);
    expect(w.read(GIOVA)).toEqual([0xa1, 0xa2]); // the TLB entry (VMID of the parent, ASID 1) is stale
    // A guest TLBI carrying another VMID (0x77): the vSMMU replaces it with the parent's, so the
    // entry goes; had the VMID been passed through, VMID 0x77 would hold nothing to drop.
    const tlbi = raw({ op: CMD_TLBI_NH_VA, vmid: 0x77, asid: 1, addr: Number(GIOVA), leaf: true });
    expect(w.ctx.invalidateHwpt(w.viommu, tlbi)).toBe(1);
    expect(w.read(GIOVA)).toEqual([0xb1, 0xb2]);
    // TLBI_NSNH_ALL becomes TLBI_NH_ALL of the VMID (the guest's "everything").
    w.s1.map(GIOVA, PAGE_A, true);
    expect(w.read(GIOVA)).toEqual([0xb1, 0xb2]);
    expect(w.ctx.invalidateHwpt(w.viommu, raw({ op: CMD_TLBI_NSNH_ALL }))).toBe(1);
    expect(w.read(GIOVA)).toEqual([0xa1, 0xa2]);
    w.ctx.close();
  });

  it('a guest that points its CD at a new stage-1 table needs CMD_CFGI_CD with its vSID (0x42, not the physical 0x10): a TLBI alone still walks the cached CD', () => {
    const w = vmm();
    w.ctx.attach(w.dev, w.nested);
    expect(w.read(GIOVA)).toEqual([0xa1, 0xa2]);
    // A second guest table mapping GIOVA to page B; the guest rewrites CD 0's TTB0 to it.
    const other = smmuV3NestingGuestWith({ streamId: VSID }).create(w.guestMemory);
    other.map(GIOVA, PAGE_B, true);
    const cdAddr = BigInt(decodeSte(w.s1.data.type === 'arm_smmuv3' ? [...w.s1.data.ste] : []).S1ContextPtr);
    const otherCd = BigInt(decodeSte(other.data.type === 'arm_smmuv3' ? [...other.data.ste] : []).S1ContextPtr);
    const cd = decodeCd([0, 1, 2, 3, 4, 5, 6, 7].map((i) => w.guestMemory.read64(cdAddr + BigInt(i * 8))));
    const newRoot = decodeCd([0, 1, 2, 3, 4, 5, 6, 7].map((i) => w.guestMemory.read64(otherCd + BigInt(i * 8)))).TTB0;
    expect(newRoot).not.toBe(cd.TTB0);
    encodeCd({ ...cd, TTB0: newRoot }).forEach((q, i) => { w.guestMemory.write64(cdAddr + BigInt(i * 8), q); });
    expect(w.ctx.invalidateHwpt(w.viommu, raw({ op: CMD_TLBI_NH_ASID, asid: 1 }))).toBe(1);
    expect(w.read(GIOVA)).toEqual([0xa1, 0xa2]); // the CD cache still has the old TTB0
    // CFGI_CD with the physical StreamID is an unknown vSID (EIO, nothing handled)
    expectErrno(() => w.ctx.invalidateHwpt(w.viommu, raw({ op: CMD_CFGI_CD, sid: SID, ssid: 0, leaf: true })), 'EIO', 'entries[0]');
    expect(w.ctx.invalidateHwpt(w.viommu, raw({ op: CMD_CFGI_CD, sid: VSID, ssid: 0, leaf: true }, { op: CMD_TLBI_NH_ASID, asid: 1 }))).toBe(2);
    expect(w.read(GIOVA)).toEqual([0xb1, 0xb2]);
    // the guest builder's invalidateAll (CFGI_CD_ALL for vSID 0x42, then TLBI_NH_ASID) is accepted too
    expect(w.ctx.invalidateHwpt(w.viommu, w.s1.invalidateAll())).toBe(2);
    w.ctx.close();
  });

  it('user commands as arm_vsmmu_convert_user_cmd takes them: CFGI_STE, CMD_SYNC, stage-2 TLBIs, prefetch EIO; an unknown vSID EIO; another entry type EINVAL; ATC_INV for the vSID accepted', () => {
    const w = vmm();
    w.ctx.attach(w.dev, w.nested);
    const refused: SmmuCommand[] = [
      { op: CMD_CFGI_STE, sid: VSID, leaf: true }, // upstream: a guest STE change is a new nested HWPT
      { op: CMD_SYNC },
      { op: CMD_TLBI_S12_VMALL, vmid: 1 },
      { op: CMD_PREFETCH_CONFIG, sid: VSID },
      { op: CMD_ATC_INV, sid: 0x43, size: 52 }, // no vDEVICE has vSID 0x43
    ];
    for (const c of refused) expectErrno(() => w.ctx.invalidateHwpt(w.viommu, raw(c)), 'EIO', 'entries[0]');
    expect(w.ctx.invalidateHwpt(w.viommu, raw({ op: CMD_ATC_INV, sid: VSID, size: 52 }))).toBe(1);
    expect(expectErrno(() => w.ctx.invalidateHwpt(w.viommu, [...raw({ op: CMD_TLBI_NH_ASID, asid: 1 }), { type: 'virtio', scope: 'domain' }]), 'EINVAL', 'entries[1]').handled).toBe(0);
    // a refused command after two good ones: entry_num = 2 (the index of the failing entry)
    expect(expectErrno(() => w.ctx.invalidateHwpt(w.viommu, raw({ op: CMD_TLBI_NH_ASID, asid: 1 }, { op: CMD_TLBI_NH_ASID, asid: 1 }, { op: CMD_SYNC })), 'EIO', 'entries[2]').handled).toBe(2);
    // the nested HWPT of a vIOMMU has no invalidation of its own (arm_smmu_nested_ops)
    expectErrno(() => w.ctx.invalidateHwpt(w.nested, raw({ op: CMD_TLBI_NH_ASID, asid: 1 })), 'EOPNOTSUPP', 'hwpt');
    expect(w.ctx.invalidateHwpt(w.viommu, [])).toBe(0);
    w.ctx.close();
  });

  it('batches as arm_vsmmu_cache_invalidate issues them: 63 commands per CMD_SYNC; a bad entry stops at its index and the commands converted since the last batch are not issued', () => {
    const w = vmm();
    w.ctx.attach(w.dev, w.nested);
    const tlbi = (n: number) => Array.from({ length: n }, () => raw({ op: CMD_TLBI_NH_ASID, asid: 1 })[0]!);
    const syncs = () => w.driver.cmdq.syncs;
    let s = syncs();
    expect(w.ctx.invalidateHwpt(w.viommu, tlbi(63))).toBe(63);
    expect(syncs() - s).toBe(1);
    s = syncs();
    expect(w.ctx.invalidateHwpt(w.viommu, tlbi(64))).toBe(64);
    expect(syncs() - s).toBe(2); // 63 + 1
    s = syncs();
    expect(w.ctx.invalidateHwpt(w.viommu, tlbi(127))).toBe(127);
    expect(syncs() - s).toBe(3); // 63 + 63 + 1
    // [TLBI_NH_ASID, CFGI_CD for an unknown vSID]: EIO at entries[1]; upstream jumps out before
    // issuing the converted TLBI, so the stale entry stays.
    expect(w.read(GIOVA)).toEqual([0xa1, 0xa2]);
    w.s1.map(GIOVA, PAGE_B, true);
    s = syncs();
    expectErrno(() => w.ctx.invalidateHwpt(w.viommu, [...tlbi(1), ...raw({ op: CMD_CFGI_CD, sid: 0x43, ssid: 0 })]), 'EIO', 'entries[1]');
    expect(syncs() - s).toBe(0);
    expect(w.read(GIOVA)).toEqual([0xa1, 0xa2]);
    // 63 good ones then a bad one: the first batch went out, entry 63 fails
    s = syncs();
    expectErrno(() => w.ctx.invalidateHwpt(w.viommu, [...tlbi(63), ...raw({ op: CMD_SYNC })]), 'EIO', 'entries[63]');
    expect(syncs() - s).toBe(1);
    expect(w.read(GIOVA)).toEqual([0xb1, 0xb2]);
    w.ctx.close();
  });
});

describe('vSMMU events (arm_smmu_handle_event → arm_vmaster_report_event)', () => {
  it('a stage-1 F_TRANSLATION of the device reaches the vEVENTQ as its 32-byte record with StreamID = the vSID 0x42; beyond the depth events are lost', () => {
    const w = vmm();
    const q = w.ctx.allocVeventq(w.viommu, { type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 2 });
    w.ctx.attach(w.dev, w.nested);
    const hole = GIOVA + 0x100000n; // the guest stage 1 maps nothing there
    expect(w.read(hole)).toBe('F_TRANSLATION');
    const [ev, ...rest] = w.ctx.readVevents(q);
    expect(rest).toEqual([]);
    expect(ev!.flags).toBe(0);
    expect(ev!.data.length).toBe(32);
    const [q0, q1, q2] = qwords(ev!);
    expect(Number(q0! & 0xffn)).toBe(F_TRANSLATION); // EventID [7:0]
    expect(Number(q0! >> 32n)).toBe(VSID); // StreamID [63:32]: the vSID, not 0x10
    expect((q0! >> 11n) & 1n).toBe(0n); // SSV = 0: no SubstreamID
    expect((q1! >> 39n) & 1n).toBe(0n); // S2 = 0: a stage-1 fault
    expect((q1! >> 35n) & 1n).toBe(1n); // RnW = 1: a read
    expect(q2).toBe(hole); // InputAddr
    expect(w.driver.events.filter((e) => e.StreamID === SID)).toEqual([]); // not logged by the host
    // three more faults into a depth-2 queue: two events, then the lost-events header
    for (const iova of [hole, hole + 0x1000n, hole + 0x2000n]) expect(w.read(iova)).toBe('F_TRANSLATION');
    const evs = w.ctx.readVevents(q);
    expect(evs.map((e) => [e.flags, e.sequence, e.data.length])).toEqual([
      [0, 1, 32],
      [0, 2, 32],
      [IOMMU_VEVENTQ_FLAG_LOST_EVENTS, 3, 0],
    ]);
    expect(evs.slice(0, 2).map((e) => qwords(e)[2])).toEqual([hole, hole + 0x1000n]);
    w.ctx.close();
  });

  it('a stage-2 fault (S2 = 1) is not the guest\'s: the host logs it; without a vEVENTQ a stage-1 fault is logged too (iommufd_viommu_report_event is EOPNOTSUPP)', () => {
    const w = vmm();
    w.ctx.attach(w.dev, w.nested);
    // no vEVENTQ yet
    expect(w.read(GIOVA + 0x100000n)).toBe('F_TRANSLATION');
    expect(w.driver.events.at(-1)).toMatchObject({ name: 'F_TRANSLATION', StreamID: SID, S2: 0 });
    const q = w.ctx.allocVeventq(w.viommu, { type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 8 });
    // the guest maps an IPA the nest parent does not map: the stage-2 walk faults
    const outside = GPA + RAM + 0x10000n;
    w.s1.map(0x20000n, outside, true);
    const logged = w.driver.events.length;
    expect(w.read(0x20000n)).toBe('F_TRANSLATION');
    expect(w.ctx.readVevents(q)).toEqual([]);
    expect(w.driver.events.length).toBe(logged + 1);
    expect(w.driver.events.at(-1)).toMatchObject({ name: 'F_TRANSLATION', StreamID: SID, S2: 1 });
    // after the vEVENTQ is destroyed the host logs stage-1 faults again
    w.ctx.destroy(q);
    expect(w.read(GIOVA + 0x100000n)).toBe('F_TRANSLATION');
    expect(w.driver.events.length).toBe(logged + 2);
    w.ctx.close();
  });

  it('once the device leaves the nested HWPT (identity, or another nested HWPT over a plain parent) its events are the host\'s again', () => {
    const w = vmm();
    const q = w.ctx.allocVeventq(w.viommu, { type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 8 });
    w.ctx.attach(w.dev, w.nested);
    expect(w.read(GIOVA + 0x100000n)).toBe('F_TRANSLATION');
    expect(w.ctx.readVevents(q)).toHaveLength(1);
    // a nested HWPT allocated over the nest parent itself (no vIOMMU): no vmaster
    const plain = w.ctx.allocHwpt(w.dev, { parent: w.parent, data: w.s1.data });
    w.ctx.attach(w.dev, plain);
    const logged = w.driver.events.length;
    expect(w.read(GIOVA + 0x100000n)).toBe('F_TRANSLATION');
    expect(w.ctx.readVevents(q)).toEqual([]);
    expect(w.driver.events.length).toBe(logged + 1);
    // back to the vIOMMU's nested HWPT: reported again
    w.ctx.attach(w.dev, w.nested);
    expect(w.read(GIOVA + 0x100000n)).toBe('F_TRANSLATION');
    expect(w.ctx.readVevents(q).map((e) => Number(qwords(e)[0]! >> 32n))).toEqual([VSID]);
    w.ctx.close();
  });
});

describe('vSMMU teardown (core\'s object rules on the SMMUv3 driver)', () => {
  it('in order: attach before the vDEVICE ENOENT; destroying the parent, the vIOMMU or an attached vDEVICE EBUSY; then each goes; frames in use are back to before the context opened', () => {
    const w = vmm({ vdevice: false });
    expectErrno(() => w.ctx.attach(w.dev, w.nested), 'ENOENT', 'dev');
    const vdev = w.ctx.allocVdevice(w.viommu, w.dev, BigInt(VSID));
    expectErrno(() => w.ctx.allocVdevice(w.viommu, w.dev, 0x43n), 'EEXIST', 'dev');
    const b = w.ctx.bindDevice(DEV_B);
    expectErrno(() => w.ctx.allocVdevice(w.viommu, b, BigInt(VSID)), 'EEXIST', 'virtId');
    expectErrno(() => w.ctx.allocVdevice(w.viommu, b, 1n << 32n), 'EINVAL', 'virtId');
    const q = w.ctx.allocVeventq(w.viommu, { type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 4 });
    w.ctx.attach(w.dev, w.nested);
    expect(w.read(GIOVA)).toEqual([0xa1, 0xa2]);
    expectErrno(() => { w.ctx.destroy(w.parent); }, 'EBUSY', 'id');
    expectErrno(() => { w.ctx.destroy(w.viommu); }, 'EBUSY', 'id');
    expectErrno(() => { w.ctx.destroy(vdev); }, 'EBUSY', 'id');
    w.ctx.detach(w.dev);
    expect(w.read(GIOVA)).toBe('STE.Config abort'); // blocked: an abort STE (no event record)
    w.ctx.destroy(vdev);
    expectErrno(() => { w.ctx.destroy(w.viommu); }, 'EBUSY', 'id'); // the nested HWPT and the vEVENTQ
    w.ctx.destroy(w.nested);
    w.ctx.destroy(q);
    w.ctx.destroy(w.viommu);
    w.ctx.destroy(w.parent);
    w.ctx.unbindDevice(b);
    w.ctx.unbindDevice(w.dev);
    w.ctx.destroy(w.ioas);
    w.ctx.close();
    expect(w.system.memory.framesInUse).toBe(w.framesBefore);
  });

  it('unbinding the attached device force-destroys its vDEVICE (a later destroy ENOENT); close() with the rest alive releases everything', () => {
    const w = vmm();
    w.ctx.allocVeventq(w.viommu, { type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 4 });
    w.ctx.attach(w.dev, w.nested);
    w.ctx.unbindDevice(w.dev);
    expectErrno(() => { w.ctx.destroy(w.vdev!); }, 'ENOENT', 'id');
    w.ctx.close();
    expect(w.system.memory.framesInUse).toBe(w.framesBefore);
    expect(w.read(GIOVA)).not.toEqual([0xa1, 0xa2]);
  });

  it('close() with every object alive and attached releases them in core\'s order; frames in use are as before the context opened', () => {
    const w = vmm();
    w.ctx.allocVeventq(w.viommu, { type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 4 });
    w.ctx.attach(w.dev, w.nested);
    expect(w.read(GIOVA)).toEqual([0xa1, 0xa2]);
    w.ctx.close();
    expect(w.system.memory.framesInUse).toBe(w.framesBefore);
  });

  it('vIOMMU errors: a type other than IOMMU_VIOMMU_TYPE_ARM_SMMUV3 EOPNOTSUPP; a HWPT that is not a nest parent EINVAL', () => {
    const w = vmm();
    expectErrno(() => w.ctx.allocViommu(w.dev, { type: IOMMU_VIOMMU_TYPE_DEFAULT, hwpt: w.parent }), 'EOPNOTSUPP', 'type');
    const s1 = w.ctx.allocHwpt(w.dev, { parent: w.ioas });
    expectErrno(() => w.ctx.allocViommu(w.dev, { type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3, hwpt: s1 }), 'EINVAL', 'hwpt');
    w.ctx.close();
  });
});
