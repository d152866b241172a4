/**
 * Workload 13: a vIOMMU, as a VMM's accelerated vSMMU drives iommufd — a vIOMMU over the nest
 * parent, the device's virtual ID (vDEVICE), nested HWPTs allocated from the vIOMMU,
 * invalidation through the vIOMMU, and stage-1 faults delivered to a vEVENTQ with the virtual ID.
 */

import { IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, IOMMU_VIOMMU_TYPE_ARM_SMMUV3, type Vevent } from '@ioasid/uapi';
import { ProcessGuestMemory } from '@ioasid/core';
import { data, errno, fault, ok, type Workload } from '../workload.js';
import { DEV1, DEVICES, pickIova } from './env.js';
import { PAGE_A, PAGE_B } from './nesting-env.js';

/** The virtual ID the guest gives device 1. */
const VSID = 0x42n;

export const viommu: Workload = {
  id: 'viommu',
  title: '13. vIOMMU, vDEVICE and vEVENTQ',
  summary:
    "A VMM's virtual IOMMU on iommufd's vIOMMU objects: the vIOMMU holds the nest parent, the guest names the device by a virtual ID, nested HWPTs come from the vIOMMU, the guest's invalidations go through it, and stage-1 faults come back on a vEVENTQ carrying the virtual ID.",
  devices: DEVICES,
  run(t) {
    const proc = t.system.createProcess();
    const ctx = t.system.open(proc);
    const dev = t.step('bind device 1', ok(), () => ctx.bindDevice(DEV1));
    if (dev === undefined) return;
    const info = ctx.getInfo(dev);
    const ioas = ctx.allocIoas();
    if (info.nestingFormats.length === 0 || t.guest === undefined) {
      t.step('allocate a nest-parent HWPT for the vIOMMU', errno('EOPNOTSUPP', info.unsupported['nesting'] ?? `${info.backend} has no hardware nesting, so no vIOMMU`), () =>
        ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } }),
      );
      ctx.close();
      return;
    }
    const type = (info.viommuTypes ?? [])[0];
    if (type === undefined) {
      const np = ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } });
      t.step('allocate a vIOMMU over a nest parent', errno('EOPNOTSUPP', info.unsupported['viommu'] ?? `${info.backend} has no vIOMMU`), () =>
        ctx.allocViommu(dev, { type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3, hwpt: np }),
      );
      ctx.close();
      return;
    }
    const parent = t.step('allocate a nest-parent HWPT over the GPA IOAS', ok(), () => ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } }));
    if (parent === undefined) return;
    const ramSize = 0x400000n;
    const gpa = pickIova(ctx.iovaRanges(ioas).ranges, ramSize, 0x40000000n)!;
    const ram = proc.mmap(ramSize);
    proc.write(ram, PAGE_A);
    proc.write(ram + 0x1000n, PAGE_B);
    t.step('map 4 MiB of guest RAM at its GPA', ok(), () => ctx.mapDma(ioas, { iova: gpa, vaddr: ram, length: ramSize }));
    const v = t.step('allocate a vIOMMU over the nest parent', ok(), () => ctx.allocViommu(dev, { type, hwpt: parent }));
    if (v === undefined) return;
    t.step('the nest parent cannot go while the vIOMMU holds it (EBUSY)', errno('EBUSY'), () => {
      ctx.destroy(parent);
    });
    const stage1 = t.guest.create(new ProcessGuestMemory(proc, ram, gpa, ramSize));
    const giova = 0x10000n;
    stage1.map(giova, gpa, true);
    const nested = t.step('allocate a nested HWPT from the vIOMMU', ok(), () => ctx.allocHwpt(dev, { parent: v, data: stage1.data }));
    if (nested === undefined) return;
    t.step('attaching before the device has a virtual ID fails (ENOENT)', errno('ENOENT'), () => ctx.attach(dev, nested));
    const vdev = t.step(`give the device virtual ID 0x${VSID.toString(16)} (vDEVICE)`, ok(), () => ctx.allocVdevice(v, dev, VSID));
    t.step('a second vDEVICE for the device is EEXIST', errno('EEXIST'), () => ctx.allocVdevice(v, dev, VSID + 1n));
    const q = t.step('allocate a vEVENTQ of depth 4', ok(), () => ctx.allocVeventq(v, { type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 4 }));
    t.step('attach the device to the nested HWPT', ok(), () => ctx.attach(dev, nested));
    t.dma('DMA at the guest IOVA reads guest page A through both stages', DEV1, { iova: giova, size: 16, write: false }, data(PAGE_A));
    stage1.map(giova, gpa + 0x1000n, true);
    t.step('the guest remaps the page and invalidates through the vIOMMU', ok(), () => ctx.invalidateHwpt(v, stage1.invalidateRange(giova, 0x1000n)));
    t.dma('DMA now reads guest page B', DEV1, { iova: giova, size: 16, write: false }, data(PAGE_B));
    const hole = giova + 0x100000n;
    t.dma('a guest IOVA the stage 1 does not map faults', DEV1, { iova: hole, size: 4, write: false }, fault(['translation', 'bad-config']));
    if (q !== undefined) {
      const events: Vevent[] = ctx.readVevents(q);
      const ev = events[0];
      const words = ev === undefined || ev.data.length < 8 ? undefined : new DataView(ev.data.buffer, ev.data.byteOffset, ev.data.byteLength);
      // IHI0070 §7.3: event record word 0 bits [7:0] are the event id, bits [63:32] the StreamID
      t.check(
        'the stage-1 fault is on the vEVENTQ as F_TRANSLATION (0x10) with the virtual StreamID',
        events.length === 1 && words !== undefined && (words.getUint8(0) === 0x10) && BigInt(words.getUint32(4, true)) === VSID,
        ev === undefined ? 'no event' : `${events.length} event(s); first: id 0x${ev.data[0]?.toString(16) ?? '?'}, SID field 0x${words?.getUint32(4, true).toString(16) ?? '?'}`,
      );
    }
    t.step('the vIOMMU cannot go while it has nested HWPTs, vDEVICEs and vEVENTQs (EBUSY)', errno('EBUSY'), () => {
      ctx.destroy(v);
    });
    if (vdev !== undefined) {
      t.step('the vDEVICE cannot go while the device is attached to a nested HWPT of the vIOMMU (EBUSY)', errno('EBUSY'), () => {
        ctx.destroy(vdev);
      });
    }
    t.step('unbinding the device takes its vDEVICE with it', ok(), () => {
      ctx.unbindDevice(dev);
    });
    if (vdev !== undefined) {
      t.step('the vDEVICE id is dead afterwards (ENOENT)', errno('ENOENT'), () => {
        ctx.destroy(vdev);
      });
    }
    ctx.close();
  },
};
