/**
 * §3.4 iommufd_fail_nth, mirrored: every uAPI sequence is run once without injection (the
 * reference), then again with the n-th allocation failing, for n = 1, 2, … until a run completes
 * without the injection firing. A step that fails must fail with ENOMEM and leave everything
 * exactly as it was; it is then retried (the injector fires once) and the sequence goes on, so
 * every run must end in the reference's state, and after close() nothing may be left over.
 */

import { describe, expect, it } from 'vitest';
import { IOMMUFD_PAGE_RESP_SUCCESS, IoasidError, PAGE_SIZE, U64_MAX, type PageFault } from '@ioasid/uapi';
import { DEV_A, DEV_B, buffer, snapshot, world, type Probe, type World } from '../test/harness.js';

const P = PAGE_SIZE;
const LIMIT = 400;

interface Scenario {
  readonly w: World;
  readonly steps: readonly (readonly [string, () => unknown])[];
  readonly probes: readonly Probe[];
}

interface Outcome {
  readonly runs: number;
  readonly failedSteps: Set<string>;
}

function end(w: World, probes: readonly Probe[]) {
  return snapshot(w, probes);
}

function closed(w: World) {
  w.ctx.close();
  return {
    frames: w.system.memory.framesInUse,
    pins: [...w.system['processes']].map((p) => p.pinCount()),
    live: [...w.hw.domains].filter((d) => !d.freed).length,
    attached: w.hw.attached.size,
    contexts: w.hw.contexts.size,
    owners: w.system.owners.size,
  };
}

function failNth(make: () => Scenario): Outcome {
  const ref = make();
  for (const [, step] of ref.steps) step();
  const refEnd = end(ref.w, ref.probes);
  const refClosed = closed(ref.w);
  expect(refClosed.pins.every((c) => c === 0)).toBe(true);
  expect(refClosed.live + refClosed.attached + refClosed.contexts + refClosed.owners).toBe(0);

  const failedSteps = new Set<string>();
  for (let n = 1; n <= LIMIT; n++) {
    const s = make();
    const inject = s.w.system.failNth;
    inject.arm(n);
    for (const [name, step] of s.steps) {
      const before = snapshot(s.w, s.probes);
      let thrown: unknown;
      try {
        step();
      } catch (e) {
        thrown = e;
      }
      if (thrown === undefined) continue;
      expect(thrown, `n=${n} step '${name}'`).toBeInstanceOf(IoasidError);
      expect((thrown as IoasidError).errno, `n=${n} step '${name}': ${(thrown as Error).message}`).toBe('ENOMEM');
      expect(inject.hasFired).toBe(true);
      expect(snapshot(s.w, s.probes), `n=${n}: the failed step '${name}' changed state`).toEqual(before);
      failedSteps.add(name);
      step(); // the injector fires once: the retry must succeed
    }
    inject.disarm();
    expect(end(s.w, s.probes), `n=${n}: the run did not end in the reference state`).toEqual(refEnd);
    expect(closed(s.w), `n=${n}: close() left something behind`).toEqual(refClosed);
    if (!inject.hasFired) return { runs: n, failedSteps };
  }
  throw new Error(`fail_nth did not finish within ${LIMIT} injections`);
}

describe('§3.4 fail_nth: every allocation can fail, and nothing changes or leaks', () => {
  it('§3.4 basic: IOAS_ALLOC, IOVA_RANGES, ALLOW_IOVAS, MAP (auto), COPY, UNMAP, UNMAP again', () => {
    const out = failNth(() => {
      const w = world();
      const buf = buffer(w.proc, 64, 1);
      let ioas = 0;
      let iova = 0n;
      let copy = 0n;
      return {
        w,
        probes: [],
        steps: [
          ['IOAS_ALLOC', () => (ioas = w.ctx.allocIoas())],
          ['IOVA_RANGES', () => w.ctx.iovaRanges(ioas)],
          ['ALLOW_IOVAS', () => { w.ctx.allowIovas(ioas, [{ start: 16n * 1024n, last: (1n << 32n) - 1n }]); }],
          ['MAP', () => (iova = w.ctx.mapDma(ioas, { vaddr: buf, length: 64n * P }))],
          ['COPY', () => (copy = w.ctx.copyDma(ioas, ioas, { srcIova: iova, length: 20n * P }))],
          ['UNMAP copy', () => w.ctx.unmapDma(ioas, { iova: copy, length: 20n * P })],
          ['UNMAP', () => w.ctx.unmapDma(ioas, { iova: 0n, length: U64_MAX })],
        ],
      };
    });
    expect(out.runs).toBeGreaterThan(1);
    // COPY shares the source's pins and there is no domain to fill: it allocates nothing
    expect(out.failedSteps).toEqual(new Set(['IOAS_ALLOC', 'MAP']));
  });

  it('§3.4 map_domain: a device with its domain, MAP 256 KiB, unbind, bind and attach again', () => {
    const out = failNth(() => {
      const w = world();
      const buf = buffer(w.proc, 64, 2);
      let ioas = 0;
      let dev = 0;
      return {
        w,
        probes: [{ dev: DEV_A, iova: 0x200000n }, { dev: DEV_A, iova: 0x23f000n }],
        steps: [
          ['IOAS_ALLOC', () => (ioas = w.ctx.allocIoas())],
          ['BIND', () => (dev = w.ctx.bindDevice(DEV_A))],
          ['ATTACH', () => w.ctx.attach(dev, ioas)],
          ['MAP', () => w.ctx.mapDma(ioas, { iova: 0x200000n, vaddr: buf, length: 64n * P })],
          ['UNBIND', () => { w.ctx.unbindDevice(dev); }],
          ['BIND again', () => (dev = w.ctx.bindDevice(DEV_A))],
          ['ATTACH again', () => w.ctx.attach(dev, ioas)],
        ],
      };
    });
    expect(out.failedSteps).toEqual(new Set(['IOAS_ALLOC', 'BIND', 'ATTACH', 'MAP', 'BIND again', 'ATTACH again']));
  });

  it('§3.4 map_two_domains: a second domain (another IOMMU unit) added, map, unbind both, rebind both', () => {
    const out = failNth(() => {
      const w = world([DEV_A, DEV_B], { unitOf: (ep) => (ep.name === DEV_B ? 1 : 0) });
      const buf = buffer(w.proc, 16, 3);
      let ioas = 0;
      let a = 0;
      let b = 0;
      return {
        w,
        probes: [{ dev: DEV_A, iova: 0x400000n }, { dev: DEV_B, iova: 0x40f000n }],
        steps: [
          ['IOAS_ALLOC', () => (ioas = w.ctx.allocIoas())],
          ['MAP before', () => w.ctx.mapDma(ioas, { iova: 0x800000n, vaddr: buf, length: 16n * P })],
          ['BIND a', () => (a = w.ctx.bindDevice(DEV_A))],
          ['ATTACH a', () => w.ctx.attach(a, ioas)],
          ['BIND b', () => (b = w.ctx.bindDevice(DEV_B))],
          ['ATTACH b', () => w.ctx.attach(b, ioas)],
          ['MAP', () => w.ctx.mapDma(ioas, { iova: 0x400000n, vaddr: buf, length: 16n * P })],
          ['UNBIND a', () => { w.ctx.unbindDevice(a); }],
          ['UNBIND b', () => { w.ctx.unbindDevice(b); }],
          ['BIND a again', () => (a = w.ctx.bindDevice(DEV_A))],
          ['BIND b again', () => (b = w.ctx.bindDevice(DEV_B))],
          ['ATTACH b again', () => w.ctx.attach(b, ioas)],
          ['ATTACH a again', () => w.ctx.attach(a, ioas)],
        ],
      };
    });
    expect(out.failedSteps.has('ATTACH b')).toBe(true);
    expect(out.failedSteps.has('MAP')).toBe(true);
  });

  it('§3.4 device: GET_HW_INFO, HWPT_ALLOC, replace to a second IOAS, replace to the HWPT, NEST_PARENT, FAULT queue, nested HWPT with a fault queue, PASID attaches', () => {
    const out = failNth(() => {
      const w = world();
      const buf = buffer(w.proc, 8, 4);
      let io1 = 0;
      let io2 = 0;
      let dev = 0;
      let hwpt = 0;
      let parent = 0;
      let q = 0;
      let nested = 0;
      return {
        w,
        // (the RID ends on an IOPF-capable nested HWPT: probing it would queue page requests)
        probes: [{ dev: DEV_A, iova: 0x10000n, pasid: 1 }, { dev: DEV_A, iova: 0x10000n, pasid: 9 }],
        steps: [
          ['IOAS_ALLOC 1', () => (io1 = w.ctx.allocIoas())],
          ['IOAS_ALLOC 2', () => (io2 = w.ctx.allocIoas())],
          ['MAP 1', () => w.ctx.mapDma(io1, { iova: 0x10000n, vaddr: buf, length: 8n * P })],
          ['MAP 2', () => w.ctx.mapDma(io2, { iova: 0x10000n, vaddr: buf, length: 4n * P })],
          ['BIND', () => (dev = w.ctx.bindDevice(DEV_A))],
          ['GET_HW_INFO', () => w.ctx.getInfo(dev)],
          ['ATTACH io1', () => w.ctx.attach(dev, io1)],
          ['HWPT_ALLOC', () => (hwpt = w.ctx.allocHwpt(dev, { parent: io1, flags: { pasid: true } }))],
          ['replace io2', () => w.ctx.attach(dev, io2)],
          ['replace hwpt', () => w.ctx.attach(dev, hwpt)],
          ['NEST_PARENT', () => (parent = w.ctx.allocHwpt(dev, { parent: io2, flags: { nestParent: true } }))],
          ['FAULT_QUEUE', () => (q = w.ctx.allocFaultQueue())],
          ['nested', () => (nested = w.ctx.allocHwpt(dev, { parent, faultQueue: q, data: { type: 'virtio_table', format: 'arm-lpae-s1', root: 0x10000n } }))],
          ['attach nested', () => w.ctx.attach(dev, nested)],
          ['PASID 1', () => w.ctx.attach(dev, hwpt, { pasid: 1 })],
          ['PASID auto', () => w.ctx.attach(dev, io2, { pasid: 'auto' })],
          ['global PASID', () => w.ctx.attach(dev, io1, { pasid: 4 })],
          ['detach PASID 1', () => { w.ctx.detach(dev, { pasid: 1 }); }],
          ['back to hwpt', () => w.ctx.attach(dev, hwpt)],
        ],
      };
    });
    // (a replace of an attached slot allocates nothing in the mock: 'attach nested' cannot fail)
    for (const s of ['IOAS_ALLOC 1', 'MAP 1', 'BIND', 'ATTACH io1', 'HWPT_ALLOC', 'replace io2', 'NEST_PARENT', 'FAULT_QUEUE', 'nested', 'PASID 1', 'PASID auto']) {
      expect(out.failedSteps.has(s), s).toBe(true);
    }
  });

  it('§3.4 bindSva: bind, SVA bind (builds the CPU page table), unbind, bind again', () => {
    const out = failNth(() => {
      const w = world();
      const buf = buffer(w.proc, 4, 5);
      // The process's CPU page table is process state that exists before any SVA bind (it is
      // built lazily here; its own all-or-nothing build is tested in process.test.ts).
      expect(w.proc.pageTableRoot).toBeGreaterThan(0n);
      let dev = 0;
      let pasid = 0;
      return {
        w,
        probes: [{ dev: DEV_A, iova: buf, pasid: 1 }],
        steps: [
          ['BIND', () => (dev = w.ctx.bindDevice(DEV_A))],
          ['SVA', () => (pasid = w.ctx.bindSva(dev, w.proc).pasid)],
          ['UNBIND SVA', () => { w.ctx.unbindSva(dev, pasid); }],
          ['SVA again', () => (pasid = w.ctx.bindSva(dev, w.proc).pasid)],
          ['mmap after', () => w.proc.mmap(4n * P)],
        ],
      };
    });
    expect(out.failedSteps.has('SVA')).toBe(true);
    expect(out.failedSteps.has('mmap after')).toBe(true);
  });

  it('§3.4 fault queue: IOPF HWPT, a page request, read, fix the mapping, respond', () => {
    const out = failNth(() => {
      const w = world();
      const buf = buffer(w.proc, 4, 6);
      let ioas = 0;
      let dev = 0;
      let q = 0;
      let hwpt = 0;
      let faults: PageFault[] = [];
      return {
        w,
        probes: [], // a probe of an IOPF-capable HWPT would queue page requests
        steps: [
          ['IOAS_ALLOC', () => (ioas = w.ctx.allocIoas())],
          ['BIND', () => (dev = w.ctx.bindDevice(DEV_A))],
          ['FAULT_QUEUE', () => (q = w.ctx.allocFaultQueue())],
          ['HWPT_ALLOC', () => (hwpt = w.ctx.allocHwpt(dev, { parent: ioas, faultQueue: q }))],
          ['ATTACH', () => w.ctx.attach(dev, hwpt)],
          ['fault', () => w.system.device(DEV_A).dma({ iova: 0x20000n, size: 4, write: false })],
          ['read', () => (faults = w.ctx.readFaults(q))],
          ['fix', () => w.ctx.mapDma(ioas, { iova: faults[0]!.addr, vaddr: buf, length: P })],
          ['respond', () => { w.ctx.respondPageFault(q, { cookie: faults[0]!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS }); }],
        ],
      };
    });
    expect(out.failedSteps.has('HWPT_ALLOC')).toBe(true);
  });

  it('§3.4 prereg, software nesting and mediated devices', () => {
    const out = failNth(() => {
      const w = world([DEV_A, { name: DEV_B, mdevs: 1 }]);
      const buf = buffer(w.proc, 8, 7);
      let parent = 0;
      let child = 0;
      let m = 0;
      return {
        w,
        probes: [{ dev: `${DEV_B}/mdev0`, iova: 0x2000n, pasid: 1 }, { dev: `${DEV_B}/mdev0`, iova: 0x2000n }],
        steps: [
          ['REGISTER', () => { w.ctx.registerMemory({ vaddr: buf, length: 8n * P }); }],
          ['IOAS_ALLOC', () => (parent = w.ctx.allocIoas())],
          ['MAP', () => w.ctx.mapDma(parent, { iova: 0n, vaddr: buf, length: 8n * P })],
          ['CREATE_NESTING', () => (child = w.ctx.createNesting(parent))],
          ['child MAP', () => w.ctx.mapDma(child, { iova: 0x2000n, vaddr: 0x1000n, length: 2n * P })],
          ['bind mdev', () => (m = w.ctx.bindDevice(`${DEV_B}/mdev0`))],
          ['mdev RID', () => w.ctx.attach(m, parent)],
          ['mdev vPASID', () => w.ctx.attach(m, child, { pasid: 'auto' })],
          ['detach vPASID', () => { w.ctx.detach(m, { pasid: 1 }); }],
          ['child UNMAP', () => w.ctx.unmapDma(child, { iova: 0n, length: U64_MAX })],
        ],
      };
    });
    // (the child MAP shares the parent's pins and no domain mirrors the child yet: no allocation)
    for (const s of ['REGISTER', 'IOAS_ALLOC', 'CREATE_NESTING', 'bind mdev', 'mdev RID', 'mdev vPASID']) {
      expect(out.failedSteps.has(s), s).toBe(true);
    }
  });
});
