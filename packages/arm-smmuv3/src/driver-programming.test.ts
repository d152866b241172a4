import { describe, expect, it } from 'vitest';
import { createSmmuV3System } from './system.js';
import { SmmuV3Hardware } from './hw/smmu-v3.js';
import { PhysicalMemory as Mem, expandDevices } from '@ioasid/core';
import { SmmuV3Driver } from './driver/smmu-driver.js';
import { encodeSte } from './spec/ste.js';
import { STE_CFG_ABORT, STE_CFG_BYPASS } from './spec/ste.js';
import { DEFAULT_IDR } from './hw/defaults.js';
import { isIoasidError } from '@ioasid/uapi';

function driverOnly() {
  const memory = new Mem({ size: 1n << 32n });
  const hw = new SmmuV3Hardware({ memory });
  const [ep] = expandDevices(['0000:00:02.0']);
  const driver = new SmmuV3Driver({
    memory, regs: hw.mmio, endpoints: [ep!], reportPageRequest: () => undefined,
    pci: { setAts: () => undefined, setPri: () => undefined },
  });
  hw.onInterrupt = (l) => {
    driver.handleIrq(l);
  };
  return { memory, hw, driver, ep: ep! };
}

describe('driver programming (Linux arm-smmu-v3 behaviour)', () => {
  it('reset leaves SMMUEN, queues and a 2-level stream table (SPLIT 8, LOG2SIZE 16)', () => {
    const { hw } = driverOnly();
    expect(hw.mmio.read32(0x24)).toBe(0xf); // CR0ACK: SMMUEN | PRIQEN | EVENTQEN | CMDQEN
    expect(hw.mmio.read32(0x88)).toBe((1 << 16) | (8 << 6) | 16); // 0x00010210
  });

  it('probe makes each master\'s level-2 stream table (arm_smmu_init_l2_strtab): L1STD Span 9, 256 abort STEs, synced; the first attach allocates no stream-table memory', () => {
    const memory = new Mem({ size: 1n << 32n });
    const hw = new SmmuV3Hardware({ memory });
    // SID 0x10 (L1 index 0) and SID 0x100 (L1 index 1); L1 index 2 has no master
    const eps = expandDevices(['0000:00:02.0', '0000:01:00.0']);
    const framesBefore = memory.framesInUse;
    const driver = new SmmuV3Driver({
      memory, regs: hw.mmio, endpoints: eps, reportPageRequest: () => undefined,
      pci: { setAts: () => undefined, setPri: () => undefined },
    });
    // L1 table: 2^(16−8) L1STDs × 8 bytes = 2 KiB (1 frame); queues: CMDQ, EVTQ, PRIQ (1 frame
    // each); two level-2 tables of 256 STEs × 64 bytes = 16 KiB (4 frames each)
    expect(memory.framesInUse - framesBefore).toBe(1 + 3 + 2 * 4);
    const base = hw.mmio.read64(0x80) & ((1n << 52n) - 64n);
    const l2 = [0n, 1n].map((i) => {
      const d = memory.read64(base + i * 8n);
      expect(d & 0x1fn).toBe(9n); // Span 9 = SPLIT + 1
      return d & ((1n << 52n) - 64n);
    });
    expect(l2[0]).not.toBe(l2[1]);
    expect(memory.read64(base + 2n * 8n)).toBe(0n);
    for (const t of l2) {
      for (let i = 0n; i < 256n; i++) expect([i, memory.read64(t + i * 64n)]).toEqual([i, 0x1n]); // V | Config abort
    }
    // Before any attach, DMA from both StreamIDs hits the abort STE (not C_BAD_STREAMID)
    for (const ep of eps) {
      const f = hw.endpointDmaInto(ep.rid, { iova: 0x1000n, size: 4, write: false }, false, new Uint8Array(4));
      expect(f?.name).toBe('STE.Config abort');
    }
    // The first attach (blocked: the STE is already abort, so not even a CMD_SYNC), then identity
    const frames = memory.framesInUse;
    const syncs = driver.cmdq.syncs;
    driver.attach(eps[0]!, driver.blockedDomain(eps[0]!), undefined);
    expect([memory.framesInUse, driver.cmdq.syncs]).toEqual([frames, syncs]);
    driver.attach(eps[1]!, driver.identityDomain(eps[1]!), undefined);
    driver.attach(eps[0]!, driver.identityDomain(eps[0]!), undefined);
    expect([memory.framesInUse, driver.cmdq.syncs]).toEqual([frames, syncs + 2]);
  });

  it('fail_nth: a driver whose construction fails (ENOMEM at the L1 table, a queue or a level-2 table) throws with the SMMU disabled and every frame it took freed', () => {
    const eps = expandDevices(['0000:00:02.0', '0000:01:00.0', '0000:02:00.0']);
    let n = 1;
    for (;; n++) {
      const memory = new Mem({ size: 1n << 32n });
      const hw = new SmmuV3Hardware({ memory });
      const frames = memory.framesInUse;
      memory.failNth.arm(n);
      let caught: unknown;
      try {
        new SmmuV3Driver({
          memory, regs: hw.mmio, endpoints: eps, reportPageRequest: () => undefined,
          pci: { setAts: () => undefined, setPri: () => undefined },
        });
      } catch (e) {
        caught = e;
      }
      const fired = memory.failNth.hasFired;
      memory.failNth.disarm();
      if (!fired) {
        expect(caught).toBeUndefined();
        break;
      }
      expect([n, isIoasidError(caught) ? caught.errno : caught]).toEqual([n, 'ENOMEM']);
      expect([n, memory.framesInUse]).toEqual([n, frames]);
      expect([n, hw.mmio.read32(0x24)]).toEqual([n, 0]); // CR0ACK: SMMUEN, queues off
    }
    // L1 table, CMDQ, EVTQ, PRIQ, three level-2 tables: seven allocation sites, then success
    expect(n).toBe(8);
  });

  it('a master whose StreamID is outside the stream table fails the probe with ERANGE (arm_smmu_sid_in_range), nothing kept', () => {
    const memory = new Mem({ size: 1n << 32n });
    // SIDSIZE 8: a linear table of 256 STEs; requester ID 0x100 is beyond it
    const hw = new SmmuV3Hardware({ memory, idr: { idr1: (DEFAULT_IDR.idr1 & ~0x3f) | 8 } });
    const frames = memory.framesInUse;
    let caught: unknown;
    try {
      new SmmuV3Driver({
        memory, regs: hw.mmio, endpoints: expandDevices(['0000:00:02.0', '0000:01:00.0']), reportPageRequest: () => undefined,
        pci: { setAts: () => undefined, setPri: () => undefined },
      });
    } catch (e) {
      caught = e;
    }
    expect(isIoasidError(caught) ? [caught.errno, caught.argument] : caught).toEqual(['ERANGE', 'sid']);
    expect(memory.framesInUse).toBe(frames);
    expect(hw.mmio.read32(0x24)).toBe(0);
  });

  it('abort → bypass changes one qword: one CMD_SYNC; a stage-1 domain uses ASID 1 and CD 0', () => {
    const { driver, ep, memory, hw } = driverOnly();
    driver.attach(ep, driver.blockedDomain(ep), undefined);
    const before = driver.cmdq.syncs;
    driver.attach(ep, driver.identityDomain(ep), undefined);
    expect(driver.cmdq.syncs - before).toBe(1);
    const d = driver.allocPagingDomain(ep, { nestParent: false, dirtyTracking: false, pasid: false, iopf: false });
    driver.attach(ep, d, undefined);
    const base = hw.mmio.read64(0x80) & ((1n << 52n) - 64n);
    const l1 = memory.read64(base); // SID 0x10: L1 index 0
    expect(l1 & 0x1fn).toBe(9n); // Span 9 = SPLIT + 1
    const ste0 = memory.read64((l1 & ((1n << 52n) - 64n)) + 0x10n * 64n);
    // V | Config S1_TRANS (5) | S1Fmt 2 (64K leaves for 20 SSID bits) | S1CDMax 20
    expect(ste0 & 0x3fn).toBe(1n | (5n << 1n) | (2n << 4n));
    expect(ste0 >> 59n).toBe(20n);
    const l1cd = memory.read64(ste0 & ((1n << 52n) - 64n) & ~(0x1fn << 59n));
    expect(l1cd & 1n).toBe(1n);
    const cd0 = memory.read64(l1cd & ((1n << 52n) - 4096n));
    expect(cd0 >> 48n).toBe(1n); // ASID 1
    expect((cd0 >> 31n) & 1n).toBe(1n); // V
    expect(encodeSte({ V: 1, Config: STE_CFG_BYPASS })[0]).toBe(0x9n);
    expect(encodeSte({ V: 1, Config: STE_CFG_ABORT })[0]).toBe(0x1n);
    expect(d.kind).toBe('paging');
  });

  it('fail_nth: every frame allocation of a map can fail; nothing leaks and nothing changes', () => {
    for (let n = 1; n < 50; n++) {
      const system = createSmmuV3System({ devices: ['0000:00:02.0'] });
      const mem = system.memory;
      const proc = system.createProcess();
      const buf = proc.mmap(0x400000n);
      const ctx = system.open(proc);
      const ioas = ctx.allocIoas();
      const dev = ctx.bindDevice('0000:00:02.0');
      ctx.attach(dev, ioas);
      const frames = mem.framesInUse;
      mem.failNth.arm(n);
      let failed = false;
      try {
        ctx.mapDma(ioas, { iova: 0x40000000n, vaddr: buf, length: 0x400000n });
      } catch {
        failed = true;
      }
      const fired = mem.failNth.hasFired;
      mem.failNth.disarm();
      if (!fired) {
        expect(failed).toBe(false);
        return;
      }
      expect(failed).toBe(true);
      expect(mem.framesInUse).toBe(frames);
      expect(system.device('0000:00:02.0').dma({ iova: 0x40000000n, size: 1, write: false }).ok).toBe(false);
    }
    throw new Error('the injector kept firing');
  });

  it('fail_nth: an attach or bindSva that fails allocating the CD table or its first L2 leaf frees what it allocated (ENOMEM, frames unchanged)', () => {
    // 20 SubstreamID bits with CD2L: a 2-level CD table, an L1 of 2^(20−10) 8-byte descriptors
    // (8 KiB, 2 frames) and 64 KiB L2 leaves of 1024 CDs (IHI0070 §5.4.1), allocated on the
    // first stage-1 attach of the master
    for (const what of ['attach', 'attach a PASID', 'bindSva'] as const) {
      let succeeded = false;
      for (let n = 1; n < 64 && !succeeded; n++) {
        const system = createSmmuV3System({ devices: ['0000:00:02.0'] });
        const mem = system.memory;
        const proc = system.createProcess();
        const buf = proc.mmap(0x100000n);
        const ctx = system.open(proc);
        const ioas = ctx.allocIoas();
        const dev = ctx.bindDevice('0000:00:02.0');
        ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x20000n });
        const app = system.createProcess();
        app.write(app.mmap(0x1000n), Uint8Array.of(1));
        expect(app.pageTableRoot).not.toBe(0n); // its CPU page table exists before SVA, as a real mm's does
        const frames = mem.framesInUse;
        mem.failNth.arm(n);
        let errno: string | undefined;
        try {
          if (what === 'attach') ctx.attach(dev, ioas);
          else if (what === 'attach a PASID') ctx.attach(dev, ioas, { pasid: 'auto' });
          else ctx.bindSva(dev, app);
        } catch (e) {
          errno = (e as { errno?: string }).errno;
        }
        const fired = mem.failNth.hasFired;
        mem.failNth.disarm();
        if (!fired) {
          expect(errno, `${what}, n = ${n}`).toBeUndefined();
          succeeded = true;
          continue;
        }
        expect([what, n, errno]).toEqual([what, n, 'ENOMEM']);
        expect([what, n, mem.framesInUse]).toEqual([what, n, frames]);
      }
      expect(succeeded, what).toBe(true);
    }
  });

  it('dirty tracking: HD + DBM; a device write marks its page, reading clears it', () => {
    const system = createSmmuV3System({ devices: ['0000:00:02.0'] });
    const proc = system.createProcess();
    const buf = proc.mmap(0x4000n);
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    const dev = ctx.bindDevice('0000:00:02.0');
    const hwpt = ctx.allocHwpt(dev, { parent: ioas, flags: { dirtyTracking: true } });
    ctx.attach(dev, hwpt);
    ctx.mapDma(ioas, { iova: 0x100000n, vaddr: buf, length: 0x4000n });
    ctx.setDirtyTracking(hwpt, true);
    ctx.readDirtyBitmap(hwpt, { iova: 0x100000n, length: 0x4000n, pageSize: 0x1000n }); // clear
    expect(ctx.readDirtyBitmap(hwpt, { iova: 0x100000n, length: 0x4000n, pageSize: 0x1000n })[0]).toBe(0);
    expect(system.device('0000:00:02.0').dma({ iova: 0x102000n, size: 1, write: true, data: Uint8Array.of(1) }).ok).toBe(true);
    expect(ctx.readDirtyBitmap(hwpt, { iova: 0x100000n, length: 0x4000n, pageSize: 0x1000n })[0]).toBe(0b100);
    expect(ctx.readDirtyBitmap(hwpt, { iova: 0x100000n, length: 0x4000n, pageSize: 0x1000n })[0]).toBe(0);
  });
});

