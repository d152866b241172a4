/**
 * The vSMMU at the driver interface, with two SMMU instances on one memory: the checks core
 * cannot make (another instance, a vSID wider than a StreamID) and upstream's attach rule for
 * abort/bypass vSTEs (`arm_smmu_attach_prepare_vmaster`).
 */

import { describe, expect, it } from 'vitest';
import { IOMMU_VIOMMU_TYPE_ARM_SMMUV3, isIoasidError } from '@ioasid/uapi';
import { PhysicalMemory, expandDevices } from '@ioasid/core';
import { SmmuV3Hardware } from './hw/smmu-v3.js';
import { SmmuV3Driver } from './driver/smmu-driver.js';
import { encodeSte, STE_CFG_ABORT, STE_CFG_BYPASS, STE_CFG_S1_TRANS, STE_S1FMT_LINEAR } from './spec/ste.js';

function smmu(memory: PhysicalMemory, device: string) {
  const hw = new SmmuV3Hardware({ memory });
  const [ep] = expandDevices([device]);
  const driver = new SmmuV3Driver({
    memory, regs: hw.mmio, endpoints: [ep!], reportPageRequest: () => undefined,
    pci: { setAts: () => undefined, setPri: () => undefined },
  });
  hw.onInterrupt = (l) => {
    driver.handleIrq(l);
  };
  const parent = driver.allocPagingDomain(ep!, { nestParent: true, dirtyTracking: false, pasid: false, iopf: false });
  return { hw, driver, ep: ep!, parent };
}

function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return isIoasidError(e) ? `${e.errno} ${e.argument ?? ''}` : String(e);
  }
  return 'ok';
}

const vste = (cfg: number): { type: 'arm_smmuv3'; ste: [bigint, bigint] } => {
  const q = encodeSte({ V: 1, Config: cfg, S1Fmt: STE_S1FMT_LINEAR, S1ContextPtr: cfg === STE_CFG_S1_TRANS ? 0x10000 : 0 });
  return { type: 'arm_smmuv3', ste: [q[0]!, q[1]!] };
};

describe('vSMMU driver rules', () => {
  it('a vSMMU is per SMMU instance: a parent of another instance EINVAL; a device of another instance EINVAL; a vSID above 32 bits EINVAL; a nested domain of another instance\'s vSMMU does not attach (EINVAL)', () => {
    const memory = new PhysicalMemory({ size: 1n << 32n });
    const a = smmu(memory, '0000:00:02.0');
    const b = smmu(memory, '0000:01:00.0');
    expect(errnoOf(() => a.driver.allocViommu(a.ep, b.parent, IOMMU_VIOMMU_TYPE_ARM_SMMUV3))).toBe('EINVAL hwpt');
    expect(errnoOf(() => a.driver.allocViommu(a.ep, a.parent, 2))).toBe('EOPNOTSUPP type');
    const stage1 = a.driver.allocPagingDomain(a.ep, { nestParent: false, dirtyTracking: false, pasid: false, iopf: false });
    expect(errnoOf(() => a.driver.allocViommu(a.ep, stage1, IOMMU_VIOMMU_TYPE_ARM_SMMUV3))).toBe('EINVAL hwpt');
    const v = a.driver.allocViommu(a.ep, a.parent, IOMMU_VIOMMU_TYPE_ARM_SMMUV3);
    expect(errnoOf(() => { v.addVdevice(b.ep, 1n); })).toBe('EINVAL dev');
    expect(errnoOf(() => { v.addVdevice(a.ep, 1n << 32n); })).toBe('EINVAL virtId');
    v.addVdevice(a.ep, 0xffffffffn); // the widest vSID
    const nested = v.allocNested(a.ep, vste(STE_CFG_S1_TRANS), { iopf: false });
    expect(errnoOf(() => { b.driver.attach(b.ep, nested, undefined); })).toBe('EINVAL domain');
    a.driver.attach(a.ep, nested, undefined);
    a.driver.detach(a.ep, undefined);
    v.removeVdevice(a.ep);
    nested.free();
    v.free();
  });

  it('as upstream, an abort or bypass vSTE attaches without a vDEVICE (GBPA); a translating one needs it (ENOENT) — core asks for a vDEVICE for every nested HWPT of a vIOMMU', () => {
    const memory = new PhysicalMemory({ size: 1n << 32n });
    const a = smmu(memory, '0000:00:02.0');
    const v = a.driver.allocViommu(a.ep, a.parent, IOMMU_VIOMMU_TYPE_ARM_SMMUV3);
    for (const cfg of [STE_CFG_ABORT, STE_CFG_BYPASS]) {
      a.driver.attach(a.ep, v.allocNested(a.ep, vste(cfg), { iopf: false }), undefined);
    }
    const s1 = v.allocNested(a.ep, vste(STE_CFG_S1_TRANS), { iopf: false });
    expect(errnoOf(() => { a.driver.attach(a.ep, s1, undefined); })).toBe('ENOENT dev');
    v.addVdevice(a.ep, 0x42n);
    a.driver.attach(a.ep, s1, undefined);
  });
});
