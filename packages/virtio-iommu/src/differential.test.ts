import { isIoasidError, type DmaResult, type IoasidContext, type ObjectId, type Process } from '@ioasid/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtioIommuDriver } from './driver/virtio-iommu-driver.js';
import type { VirtioIommuDevice } from './hw/device.js';
import type { VirtioIommuProfileName } from './hw/profile.js';
import { VIRTIO_IOMMU_F_X_IOASID } from './spec/extension.js';
import { featureBit } from './spec/features.js';
import { PROFILES } from './hw/profile.js';
import { createVirtioIommuSystem } from './system.js';

const DEVS = ['0000:00:02.0', '0000:00:03.0'] as const;
const PAGE = 0x1000n;
const SLOTS = 8;
/** Slot s of an IOAS starts at 1 MiB + s × 64 KiB and holds 1–4 pages: its neighbours never touch it. */
const slotIova = (slot: number) => 0x100000n + BigInt(slot) * 0x10000n;

interface Area {
  readonly pages: number;
  readonly marker: number;
  readonly write: boolean;
}

/** What each endpoint may reach: its IOAS (or none), and each IOAS's areas. */
interface Reference {
  readonly attached: (number | undefined)[];
  readonly areas: Map<number, Area>[];
}

type Expect = { readonly ok: Uint8Array } | { readonly fault: string };

/** The probes of one endpoint: every mapped page, the bytes either side of each area, a straddling read, a write. */
function probes(ref: Reference, dev: number): { iova: bigint; size: number; write?: Uint8Array; expect: Expect }[] {
  const ioas = ref.attached[dev];
  const out: { iova: bigint; size: number; write?: Uint8Array; expect: Expect }[] = [];
  const miss: Expect = { fault: ioas === undefined ? 'blocked' : 'translation' };
  const areas = ioas === undefined ? ref.areas[0]! : ref.areas[ioas]!;
  for (let slot = 0; slot < SLOTS; slot++) {
    const base = slotIova(slot);
    const a = ioas === undefined ? undefined : areas.get(slot);
    if (a === undefined) {
      out.push({ iova: base, size: 2, expect: miss });
      continue;
    }
    for (let p = 0; p < a.pages; p++) out.push({ iova: base + BigInt(p) * PAGE, size: 2, expect: { ok: Uint8Array.of(a.marker, p) } });
    const end = base + BigInt(a.pages) * PAGE;
    out.push({ iova: base - 1n, size: 1, expect: miss }); // the byte before
    out.push({ iova: end, size: 1, expect: miss }); // the byte after
    out.push({ iova: end - 2n, size: 4, expect: miss }); // straddles the end: nothing is transferred
    // A write of what the first page already holds: allowed only through a writable mapping.
    out.push({ iova: base, size: 0, write: Uint8Array.of(a.marker, 0), expect: a.write ? { ok: new Uint8Array(0) } : { fault: 'permission' } });
  }
  return out;
}

function driverOf(system: ReturnType<typeof createVirtioIommuSystem>): VirtioIommuDriver {
  const d = system.driver;
  if (!(d instanceof VirtioIommuDriver)) throw new Error('not a virtio-iommu system');
  return d;
}

function check(system: ReturnType<typeof createVirtioIommuSystem>, ref: Reference): void {
  for (let dev = 0; dev < DEVS.length; dev++) {
    for (const pr of probes(ref, dev)) {
      const r: DmaResult = system.device(DEVS[dev]!).dma(
        pr.write ? { iova: pr.iova, size: 0, write: true, data: pr.write } : { iova: pr.iova, size: pr.size, write: false },
      );
      const got = r.ok ? { ok: r.data } : { fault: r.fault.class };
      expect(got, `${DEVS[dev]!} at 0x${pr.iova.toString(16)}`).toEqual(pr.expect);
    }
  }
}

const op = fc.oneof(
  fc.record({ kind: fc.constant('map' as const), ioas: fc.integer({ min: 0, max: 1 }), slot: fc.integer({ min: 0, max: SLOTS - 1 }), pages: fc.integer({ min: 1, max: 4 }), write: fc.boolean() }),
  fc.record({ kind: fc.constant('unmap' as const), ioas: fc.integer({ min: 0, max: 1 }), slot: fc.integer({ min: 0, max: SLOTS - 1 }) }),
  fc.record({ kind: fc.constant('attach' as const), dev: fc.integer({ min: 0, max: 1 }), ioas: fc.integer({ min: 0, max: 1 }) }),
  fc.record({ kind: fc.constant('detach' as const), dev: fc.integer({ min: 0, max: 1 }) }),
);

const VARIANTS: readonly { readonly profile: VirtioIommuProfileName; readonly features?: bigint }[] = [
  { profile: 'strict' },
  { profile: 'strict', features: PROFILES.strict.features | featureBit(VIRTIO_IOMMU_F_X_IOASID) },
  { profile: 'qemu' },
  { profile: 'cloud-hypervisor' },
  { profile: 'crosvm' },
];

/**
 * Differential property: random map/unmap/attach/detach sequences on two devices and two IOASes
 * through the whole stack (core → driver → request bytes → device model), against a plain
 * reference of what each endpoint may reach. After every step every probe — each mapped page,
 * the bytes just outside each area, a read straddling its end, a write through a read-only
 * mapping — gives exactly the reference's answer.
 */
describe('differential: random map/unmap/attach/detach against a reference', () => {
  it('every endpoint reaches exactly what the reference says, on every profile', () => {
    fc.assert(
      fc.property(fc.constantFrom(...VARIANTS), fc.array(op, { maxLength: 24 }), (variant, ops) => {
        const system = createVirtioIommuSystem({ devices: [...DEVS], ...variant });
        const proc = system.createProcess();
        const ctx = system.open(proc);
        const ioas = [ctx.allocIoas(), ctx.allocIoas()];
        const devs = DEVS.map((d) => ctx.bindDevice(d));
        const ref: Reference = { attached: [undefined, undefined], areas: [new Map<number, Area>(), new Map<number, Area>()] };
        let marker = 1;
        for (const o of ops) {
          if (o.kind === 'map') {
            if (ref.areas[o.ioas]!.has(o.slot)) continue;
            const buf = proc.mmap(BigInt(o.pages) * PAGE);
            for (let p = 0; p < o.pages; p++) proc.write(buf + BigInt(p) * PAGE, Uint8Array.of(marker, p));
            ctx.mapDma(ioas[o.ioas]!, { iova: slotIova(o.slot), vaddr: buf, length: BigInt(o.pages) * PAGE, read: true, write: o.write });
            ref.areas[o.ioas]!.set(o.slot, { pages: o.pages, marker, write: o.write });
            marker = (marker % 250) + 1;
          } else if (o.kind === 'unmap') {
            const a = ref.areas[o.ioas]!.get(o.slot);
            if (a === undefined) continue;
            ctx.unmapDma(ioas[o.ioas]!, { iova: slotIova(o.slot), length: BigInt(a.pages) * PAGE });
            ref.areas[o.ioas]!.delete(o.slot);
          } else if (o.kind === 'attach') {
            ctx.attach(devs[o.dev]!, ioas[o.ioas]!);
            ref.attached[o.dev] = o.ioas;
          } else {
            ctx.detach(devs[o.dev]!);
            ref.attached[o.dev] = undefined;
          }
          check(system, ref);
        }
        ctx.close();
        // Everything is given back: no pin, no domain ID but the identity domain's, nothing in the device.
        expect(proc.pinCount()).toBe(0);
        expect(driverOf(system).domainIdsInUse).toBe(system.driver.hwInfo(system.device(DEVS[0]).descriptor).passthrough ? 1 : 0);
        expect((system.hardware as VirtioIommuDevice).snapshot().size).toBe(0);
      }),
      { seed: 0x7a11, numRuns: 120 },
    );
  });
});

/** Everything a failed operation must leave as it was. */
function observe(system: ReturnType<typeof createVirtioIommuSystem>, proc: Process): unknown {
  const dma = DEVS.flatMap((d) =>
    [0n, 1n, 2n, 3n].map((s) => {
      const r = system.device(d).dma({ iova: slotIova(Number(s)), size: 2, write: false });
      return r.ok ? Array.from(r.data) : r.fault.class;
    }),
  );
  return {
    pins: proc.pinCount(),
    frames: system.memory.framesInUse,
    ids: driverOf(system).domainIdsInUse,
    device: [...(system.hardware as VirtioIommuDevice).snapshot().values()],
    dma,
  };
}

/**
 * fail_nth: each operation of a sequence is tried with the n-th allocation failing, for n = 1, 2, …
 * until it completes without the injector firing. Every attempt it fires on must throw ENOMEM and
 * leave pins, frames, domain IDs, what the device holds and every DMA result as they were.
 */
describe('fail_nth: every allocation of every operation can fail cleanly', () => {
  for (const variant of VARIANTS) {
    it(`${variant.profile}${variant.features === undefined ? '' : ' + extension'}`, () => {
      const system = createVirtioIommuSystem({ devices: [...DEVS], ...variant });
      const proc = system.createProcess();
      const bufs = [0, 1, 2].map((i) => {
        const b = proc.mmap(0x4000n);
        for (let p = 0n; p < 4n; p++) proc.write(b + p * PAGE, Uint8Array.of(0x10 * (i + 1), Number(p)));
        return b;
      });
      const s: { ctx?: IoasidContext; a?: ObjectId; b?: ObjectId; d1?: ObjectId; d2?: ObjectId; hwpt?: ObjectId } = {};
      const ops: [string, () => void][] = [
        ['open', () => { s.ctx = system.open(proc); }],
        ['allocIoas A', () => { s.a = s.ctx!.allocIoas(); }],
        ['map A slot 0', () => { s.ctx!.mapDma(s.a!, { iova: slotIova(0), vaddr: bufs[0]!, length: 0x4000n }); }],
        ['bind device 1', () => { s.d1 = s.ctx!.bindDevice(DEVS[0]); }],
        ['attach device 1 to A', () => { s.ctx!.attach(s.d1!, s.a!); }],
        ['bind device 2', () => { s.d2 = s.ctx!.bindDevice(DEVS[1]); }],
        ['attach device 2 to A (shared HWPT)', () => { s.ctx!.attach(s.d2!, s.a!); }],
        ['map A slot 1 while attached', () => { s.ctx!.mapDma(s.a!, { iova: slotIova(1), vaddr: bufs[1]!, length: 0x2000n, read: true, write: false }); }],
        ['allocIoas B', () => { s.b = s.ctx!.allocIoas(); }],
        ['map B slot 0', () => { s.ctx!.mapDma(s.b!, { iova: slotIova(0), vaddr: bufs[2]!, length: 0x4000n }); }],
        ['move device 2 to B', () => { s.ctx!.attach(s.d2!, s.b!); }],
        ['allocHwpt over A', () => { s.hwpt = s.ctx!.allocHwpt(s.d1!, { parent: s.a! }); }],
        ['attach device 1 to the HWPT', () => { s.ctx!.attach(s.d1!, s.hwpt!); }],
        ['detach device 1', () => { s.ctx!.detach(s.d1!); }],
        ['unmap A slot 0', () => { s.ctx!.unmapDma(s.a!, { iova: slotIova(0), length: 0x4000n }); }],
        ['copy B slot 0 to A slot 2', () => { s.ctx!.copyDma(s.a!, s.b!, { srcIova: slotIova(0), dstIova: slotIova(2), length: 0x4000n }); }],
        ['attach device 1 to A again', () => { s.ctx!.attach(s.d1!, s.a!); }],
      ];
      let injected = 0;
      for (const [name, run] of ops) {
        let done = false;
        for (let n = 1; n <= 64 && !done; n++) {
          const before = observe(system, proc);
          system.failNth.arm(n);
          let error: unknown;
          try {
            run();
          } catch (e) {
            error = e;
          }
          const fired = system.failNth.hasFired;
          system.failNth.disarm();
          if (!fired) {
            expect(error, name).toBeUndefined();
            done = true;
            continue;
          }
          injected++;
          expect(isIoasidError(error, 'ENOMEM'), `${name}, allocation ${n}: ${String(error)}`).toBe(true);
          expect(observe(system, proc), `${name}, allocation ${n}`).toEqual(before);
        }
        expect(done, name).toBe(true);
      }
      expect(injected).toBeGreaterThan(ops.length / 2);
      // The end state: device 1 reads A slot 2 (the copy of B); device 2 reads B.
      expect(system.device(DEVS[0]).dma({ iova: slotIova(2), size: 2, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x30, 0) });
      expect(system.device(DEVS[1]).dma({ iova: slotIova(0) + PAGE, size: 2, write: false })).toEqual({ ok: true, data: Uint8Array.of(0x30, 1) });
      s.ctx!.close();
      expect(proc.pinCount()).toBe(0);
    });
  }
});
