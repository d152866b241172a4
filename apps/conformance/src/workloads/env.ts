/** Shared set-up for workloads: standard devices, IOVA choice, guest memory over a process buffer. */

import type { DeviceSpec, HwInfo, IoasidContext, IovaRange, ObjectId, Process } from '@ioasid/uapi';
import type { Expectation, WorkloadRun } from '../workload.js';
import { fault } from '../workload.js';

/** The standard machine: a PF with one VF and two mediated devices, and a second PF. */
export const DEVICES: readonly (string | DeviceSpec)[] = [{ name: '0000:00:02.0', vfs: 1, mdevs: 2 }, '0000:00:03.0'];
/** The first PF. */
export const DEV1 = '0000:00:02.0';
/** The second PF. */
export const DEV2 = '0000:00:03.0';
/** The first PF's VF. */
export const VF1 = '0000:00:02.1';

/** A byte pattern: `n` bytes starting at `seed`. */
export function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed + i * 7) & 0xff;
  return out;
}

/**
 * A page-aligned IOVA with `length` bytes free in the usable ranges, at least 1 MiB in when the
 * range allows (so that IOVA 0 and low pages stay unused), preferring `preferred` when usable.
 */
export function pickIova(ranges: readonly IovaRange[], length: bigint, preferred = 0x100000n): bigint | undefined {
  for (const r of ranges) if (r.start <= preferred && preferred + length - 1n <= r.last) return preferred;
  for (const r of ranges) {
    let s = r.start < 0x100000n ? 0x100000n : r.start;
    s = (s + 0xfffn) & ~0xfffn;
    if (s + length - 1n <= r.last) return s;
  }
  return undefined;
}

/** What a DMA from a blocked (bound, unattached or detached) device should do on this backend. */
export function blockedFault(info: HwInfo): Expectation {
  return info.blocked
    ? fault('blocked')
    : fault(['blocked', 'translation', 'frozen'], info.unsupported['blocked'] ?? `${info.backend} has no blocking domain: an unattached device simply cannot DMA`);
}

/** What a DMA to an unmapped IOVA of an attached device should do. */
export function unmappedFault(info: HwInfo): Expectation {
  return info.dmaFaultFreezes === true
    ? fault(['translation', 'address-size'], 'a DMA fault freezes the partitionable endpoint (EEH)')
    : fault(['translation', 'address-size']);
}

/** A context with one IOAS and a device attached, plus a mapped, filled buffer. */
export interface Attached {
  /** The process. */
  readonly proc: Process;
  /** The context. */
  readonly ctx: IoasidContext;
  /** The IOAS. */
  readonly ioas: ObjectId;
  /** The device id. */
  readonly dev: ObjectId;
  /** hw_info of the device. */
  readonly info: HwInfo;
  /** IOVA of the buffer. */
  readonly iova: bigint;
  /** The buffer's process address. */
  readonly buf: bigint;
  /** Its first bytes. */
  readonly data: Uint8Array;
}

/** Opens a context, binds and attaches `device` to a fresh IOAS and maps 64 KiB of data. */
export function attachedDevice(t: WorkloadRun, device: string, seed = 1, proc?: Process): Attached | undefined {
  const p = proc ?? t.system.createProcess();
  const ctx = t.system.open(p);
  const ioas = ctx.allocIoas();
  const dev = t.step(`bind ${device}`, { kind: 'ok' }, () => ctx.bindDevice(device));
  if (dev === undefined) return undefined;
  const info = ctx.getInfo(dev);
  if (t.step(`attach ${device} to an IOAS`, { kind: 'ok' }, () => ctx.attach(dev, ioas)) === undefined) return undefined;
  const iova = pickIova(ctx.iovaRanges(ioas).ranges, 0x10000n);
  if (iova === undefined) {
    t.check('a usable IOVA range of 64 KiB exists', false);
    return undefined;
  }
  const buf = p.mmap(0x10000n);
  const data = pattern(64, seed);
  p.write(buf, data);
  if (t.step(`map 64 KiB at 0x${iova.toString(16)}`, { kind: 'ok' }, () => ctx.mapDma(ioas, { iova, vaddr: buf, length: 0x10000n })) === undefined) {
    return undefined;
  }
  return { proc: p, ctx, ioas, dev, info, iova, buf, data };
}

/**
 * On a backend where a DMA fault freezes the endpoint (PAPR EEH), the reason a later DMA of a
 * device that already faulted is refused; undefined elsewhere.
 */
export function probeFreeze(info: HwInfo): string | undefined {
  return info.dmaFaultFreezes === true ? 'the earlier fault froze the PE; it stays frozen until EEH recovery' : undefined;
}
