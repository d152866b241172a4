/**
 * Test harness for core's own tests: a system on the mock backend, errno assertions, and a
 * complete snapshot of the kernel-side state (objects, areas, pins, frames, PASIDs, the mock
 * hardware's attachments and page tables, and DMA probes) so that a failing call can be
 * checked to have changed nothing at all.
 */

import { expect } from 'vitest';
import { IoasidError, type DmaResult, type ErrnoName } from '@ioasid/uapi';
import { createSystem, type System } from '../system.js';
import type { Context } from '../kernel/context.js';
import type { KernelObject } from '../kernel/objects.js';
import type { PasidAllocator } from '../kernel/pasid-allocator.js';
import type { Process } from '../platform/process.js';
import { mockBackend, type MockHardware, type MockOptions } from './mock-backend.js';

/** A system on the mock backend with one process and one open context. */
export interface World {
  readonly system: System;
  readonly hw: MockHardware;
  readonly proc: Process;
  readonly ctx: Context;
}

/** Default devices: two PFs on one IOMMU unit. */
export const DEV_A = '0000:00:02.0';
export const DEV_B = '0000:00:03.0';

/** Builds a world. */
export function world(
  devices: Parameters<typeof createSystem>[1]['devices'] = [DEV_A, DEV_B],
  mock: MockOptions = {},
  lockedMemoryLimit?: bigint,
): World {
  const system = createSystem(mockBackend(mock), { devices, memorySize: 1n << 36n });
  const proc = system.createProcess(lockedMemoryLimit === undefined ? {} : { lockedMemoryLimit });
  const ctx = system.open(proc);
  return { system, hw: system.hardware as MockHardware, proc, ctx };
}

/** The IoasidError `fn` throws (fails the test when it throws nothing or something else). */
export function errorOf(fn: () => unknown): IoasidError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'the call was expected to throw an IoasidError').toBeInstanceOf(IoasidError);
  return thrown as IoasidError;
}

/** Asserts `fn` throws an IoasidError with `errno` (and the argument name, when given). */
export function expectErrno(fn: () => unknown, errno: ErrnoName, argument?: string): IoasidError {
  const e = errorOf(fn);
  expect(e.errno, e.message).toBe(errno);
  if (argument !== undefined) expect(e.argument, e.message).toBe(argument);
  return e;
}

/** A DMA probe: device name, IOVA, size, PASID. */
export interface Probe {
  readonly dev: string;
  readonly iova: bigint;
  readonly size?: number;
  readonly pasid?: number;
}

function dmaSummary(r: DmaResult): string {
  return r.ok ? `ok:${[...r.data].join(',')}` : `fault:${r.fault.class}`;
}

function describeObject(o: KernelObject): unknown {
  switch (o.kind) {
    case 'ioas':
      return {
        kind: 'ioas',
        areas: o.ioas.areas.items().map((a) => ({
          start: a.start, last: a.last, prot: a.prot, users: a.users, pfns: [...a.pfns],
          slices: a.slices.map((s) => [s.pages.vaddr, s.offset, s.count]),
        })),
        allowed: o.ioas.allowed,
        domains: o.ioas.domains.size,
        children: o.ioas.children,
      };
    case 'hwpt':
      return {
        kind: 'hwpt', type: o.type, auto: o.auto, attachments: o.attachments, children: o.children,
        ioas: o.ioas?.id, parent: o.parent?.id, faultQueue: o.faultQueue?.id,
      };
    case 'device':
      return {
        kind: 'device', name: o.endpoint.name, mdevPasid: o.mdevPasid,
        attached: [...o.attached].map(([k, h]) => [k, h.id]).sort((x, y) => x[0]! - y[0]!),
        vpasids: [...o.vpasids].sort((x, y) => x[0] - y[0]),
      };
    case 'fault':
      return { kind: 'fault', users: o.queue.users, pending: o.queue.pending().length };
    case 'viommu':
      return {
        kind: 'viommu', type: o.type, parent: o.parent.id, nested: o.nested,
        vdevices: [...o.vdevices.values()].map((v) => v.id).sort((x, y) => x - y), veventqs: [...o.veventqs.keys()].sort(),
      };
    case 'vdevice':
      return { kind: 'vdevice', viommu: o.viommu.id, device: o.device.id, virtId: o.virtId };
    case 'veventq':
      return { kind: 'veventq', viommu: o.viommu.id, type: o.type, waiting: o.queue.length };
  }
}

/** A label for a PASID owner that is the same in two runs of one scenario on fresh systems. */
function ownerLabel(system: System, o: object): string {
  const ctx = [...system.contexts].indexOf(o as Context);
  if (ctx >= 0) return `ctx${ctx}`;
  const proc = [...system['processes']].indexOf(o as Process);
  if (proc >= 0) return `proc${proc}`;
  if ('name' in o && typeof o.name === 'string') return `ep:${o.name}`;
  return 'closed-context';
}

function pasidState(system: System): unknown {
  const p: PasidAllocator = system.pasids;
  const label = (o: object) => ownerLabel(system, o);
  const global = [...p['global']].map(([k, o]) => [k, label(o)]);
  const perDevice = [...p['perDevice']]
    .map(([dev, m]) => [dev, [...m].map(([k, o]) => [k, label(o)]).sort()] as const)
    .filter(([, m]) => m.length > 0)
    .sort();
  return { global, perDevice, anyUse: [...p['anyUse']].sort((a, b) => a[0] - b[0]) };
}

/**
 * Everything a failing call must leave unchanged: the context's objects (with every area, its
 * frames and pins), its next id and registrations, the system's frames in use and PASIDs, the
 * bound devices, every process's pin counts, the mock hardware's attachments and live
 * domains' page tables, and the given DMA probes.
 */
export function snapshot(w: World, probes: readonly Probe[] = [], contexts: readonly Context[] = [w.ctx]): unknown {
  const { system, hw } = w;
  const ctxs = contexts.map((ctx) => ({
    closed: ctx['closed'],
    nextId: ctx['nextId'],
    objects: [...ctx['objects']].map(([id, o]) => [id, describeObject(o)]),
    registrations: ctx["registrations"].map((r) => ({ vaddr: r.vaddr, length: r.length })),
    reservations: [...ctx['reservations']].map(([p, s]) => [p, [...s].sort()]),
  }));
  const procs = [...system['processes']].map((p) => ({
    pinned: p.pinCount(),
    pins: p['backings'].map((b) => [b.basePfn, [...b.pins]]),
  }));
  // live domains only, numbered in allocation order (a failed call may allocate and free one)
  const domains = [...hw.domains].filter((d) => !d.freed).map((d, i) => ({ i, d }));
  const label = new Map(domains.map(({ d, i }) => [d, i]));
  return {
    framesInUse: system.memory.framesInUse,
    ctxs,
    procs,
    pasids: pasidState(system),
    owners: [...system.owners.keys()].sort(),
    sva: [...system['svaPasids']].map(([p, e]) => [ownerLabel(system, p), e.pasid, e.refs]),
    attached: [...hw.attached].map(([k, d]) => [k, label.get(d)]).sort(),
    contexts: [...hw.contexts.keys()].sort(),
    viommus: hw.viommus.filter((v) => !v.freed).map((v) => ({ vdevices: [...v.vdevices].sort(), sinks: [...v.sinks.keys()].sort() })),
    domains: domains.map(({ i, d }) => ({
      i, kind: d.kind, tracking: d.tracking,
      entries: [...d.entries].map(([page, e]) => `${page}:${e.pfn}:${e.prot}:${e.dirty}`).sort(),
      tables: [...d.tables.keys()].sort(),
    })),
    dma: probes.map((p) =>
      dmaSummary(system.device(p.dev).dma({ iova: p.iova, size: p.size ?? 8, write: false, ...(p.pasid === undefined ? {} : { pasid: p.pasid }) })),
    ),
  };
}

/**
 * Asserts that `fn` throws `errno` and changes nothing that {@link snapshot} sees.
 */
export function expectNoChange(
  w: World,
  fn: () => unknown,
  errno: ErrnoName,
  options: { readonly argument?: string; readonly probes?: readonly Probe[]; readonly contexts?: readonly Context[] } = {},
): IoasidError {
  const before = snapshot(w, options.probes, options.contexts);
  const e = expectErrno(fn, errno, options.argument);
  expect(snapshot(w, options.probes, options.contexts)).toEqual(before);
  return e;
}

/** Reads `size` bytes through a device; returns the data or undefined on a fault. */
export function dmaRead(w: World, dev: string, iova: bigint, size: number, pasid?: number): Uint8Array | undefined {
  const r = w.system.device(dev).dma({ iova, size, write: false, ...(pasid === undefined ? {} : { pasid }) });
  return r.ok ? r.data : undefined;
}

/** The fault class of a DMA (undefined when it succeeded). */
export function dmaFault(w: World, dev: string, iova: bigint, write = false, pasid?: number): string | undefined {
  const r = w.system
    .device(dev)
    .dma({ iova, size: 4, write, ...(write ? { data: Uint8Array.of(1, 2, 3, 4) } : {}), ...(pasid === undefined ? {} : { pasid }) });
  return r.ok ? undefined : r.fault.class;
}

/** A process buffer of `pages` 4 KiB pages filled with a recognisable pattern (byte i = seed + i). */
export function buffer(proc: Process, pages: number, seed = 1): bigint {
  const len = pages * 4096;
  const va = proc.mmap(BigInt(len));
  const data = new Uint8Array(len);
  for (let i = 0; i < len; i++) data[i] = (seed + i) & 0xff;
  proc.write(va, data);
  return va;
}

/** The bytes a device must see at offset `off` of a buffer made by {@link buffer}. */
export function pattern(seed: number, off: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (seed + off + i) & 0xff;
  return out;
}
