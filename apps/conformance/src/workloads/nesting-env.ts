/** Set-up shared by the hardware-nesting workloads: a nest parent over guest RAM and a guest stage 1. */

import type { GuestStage1, HwInfo, IoasidContext, ObjectId, Process } from '@ioasid/uapi';
import { errno, ok, type WorkloadRun } from '../workload.js';
import { ProcessGuestMemory } from '@ioasid/core';
import { pattern, pickIova } from './env.js';

/** A nested HWPT attached to a device, translating guest IOVA → GPA → host memory. */
export interface Nested {
  /** The process (the VMM). */
  readonly proc: Process;
  /** The context. */
  readonly ctx: IoasidContext;
  /** The GPA IOAS (stage-2 input space). */
  readonly ioas: ObjectId;
  /** The device. */
  readonly dev: ObjectId;
  /** The nest-parent HWPT. */
  readonly parent: ObjectId;
  /** The nested HWPT. */
  readonly nested: ObjectId;
  /** The guest's stage 1. */
  readonly stage1: GuestStage1;
  /** Guest IOVA mapped by stage 1. */
  readonly giova: bigint;
  /** GPA of data page A (mapped at giova) and page B. */
  readonly pageA: bigint;
  /** GPA of data page B. */
  readonly pageB: bigint;
  /** hw_info. */
  readonly info: HwInfo;
}

/** Contents of guest page A and B. */
export const PAGE_A = pattern(16, 0x41);
/** Contents of guest page B. */
export const PAGE_B = pattern(16, 0x42);

/** Builds the nested set-up, recording its steps; undefined when the backend has no nesting. */
export function nestedSetup(t: WorkloadRun, device: string): Nested | undefined {
  const proc = t.system.createProcess();
  const ctx = t.system.open(proc);
  const ioas = ctx.allocIoas();
  const dev = t.step('bind the device', ok(), () => ctx.bindDevice(device));
  if (dev === undefined) return undefined;
  const info = ctx.getInfo(dev);
  if (info.nestingFormats.length === 0 || t.guest === undefined) {
    t.step('allocate a nest-parent HWPT', errno('EOPNOTSUPP', info.unsupported['nesting'] ?? `${info.backend} has no hardware nesting`), () =>
      ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } }),
    );
    ctx.close();
    return undefined;
  }
  const guest = t.guest;
  const parent = t.step('allocate a nest-parent (stage-2) HWPT over the GPA IOAS', ok(), () =>
    ctx.allocHwpt(dev, { parent: ioas, flags: { nestParent: true } }),
  );
  if (parent === undefined) return undefined;
  const ramSize = 0x400000n;
  const gpaBase = pickIova(ctx.iovaRanges(ioas).ranges, ramSize, 0x40000000n);
  if (gpaBase === undefined) return undefined;
  const ram = proc.mmap(ramSize);
  t.step('map 4 MiB of guest RAM at its GPA', ok(), () => ctx.mapDma(ioas, { iova: gpaBase, vaddr: ram, length: ramSize }));
  const mem = new ProcessGuestMemory(proc, ram, gpaBase, ramSize);
  const pageA = gpaBase;
  const pageB = gpaBase + 0x1000n;
  proc.write(ram, PAGE_A);
  proc.write(ram + 0x1000n, PAGE_B);
  const stage1 = guest.create(mem);
  const giova = 0x10000n;
  stage1.map(giova, pageA, true);
  const nested = t.step(`allocate a nested HWPT (${stage1.data.type}) with the guest's stage 1`, ok(), () =>
    ctx.allocHwpt(dev, { parent, data: stage1.data }),
  );
  if (nested === undefined) return undefined;
  if (t.step('attach the device to the nested HWPT', ok(), () => ctx.attach(dev, nested)) === undefined) return undefined;
  return { proc, ctx, ioas, dev, parent, nested, stage1, giova, pageA, pageB, info };
}
