/**
 * Workloads and steps. A workload is written once against the uAPI and runs unchanged on every
 * backend. Each step states what it expects — derived from the backend's hw_info — and records
 * what happened. A step that behaves as expected passes; one whose expectation carries a
 * reason ("PAPR has no PASIDs") is a divergence: a finding about the architecture, not a
 * failure. A step whose behaviour contradicts its expectation fails.
 */

import { isIoasidError, type DeviceSpec, type DmaRequest, type DmaResult, type ErrnoName, type FaultClass, type HwInfo, type IoasidSystem, type NestingGuest } from '@ioasid/uapi';

/** What a step expects. */
export type Expectation =
  | { readonly kind: 'ok'; readonly because?: string }
  | { readonly kind: 'errno'; readonly errno: ErrnoName; readonly because?: string }
  | { readonly kind: 'data'; readonly data: Uint8Array; readonly because?: string }
  | { readonly kind: 'fault'; readonly classes: readonly FaultClass[]; readonly because?: string };

/** Expects success. */
export const ok = (because?: string): Expectation => (because === undefined ? { kind: 'ok' } : { kind: 'ok', because });
/** Expects an IoasidError with this errno. */
export const errno = (e: ErrnoName, because?: string): Expectation =>
  because === undefined ? { kind: 'errno', errno: e } : { kind: 'errno', errno: e, because };
/** Expects a DMA read that returns exactly these bytes (or a write that succeeds, with empty data). */
export const data = (d: Uint8Array | readonly number[], because?: string): Expectation => {
  const bytes = d instanceof Uint8Array ? d : Uint8Array.from(d);
  return because === undefined ? { kind: 'data', data: bytes } : { kind: 'data', data: bytes, because };
};
/** Expects a DMA fault of one of these classes. */
export const fault = (classes: FaultClass | readonly FaultClass[], because?: string): Expectation => {
  const c = typeof classes === 'string' ? [classes] : classes;
  return because === undefined ? { kind: 'fault', classes: c } : { kind: 'fault', classes: c, because };
};

/** A step's status. */
export type StepStatus = 'pass' | 'divergence' | 'fail';

/** One recorded step. */
export interface StepResult {
  /** What the step does. */
  readonly name: string;
  /** The expected outcome, as text (`ok`, `EOPNOTSUPP`, `fault:translation`, `data:[1,2,3]`). */
  readonly expected: string;
  /** What happened, as text. */
  readonly actual: string;
  /** pass, divergence or fail. */
  readonly status: StepStatus;
  /** Why the outcome differs from the full-featured behaviour (divergences) or what went wrong (failures). */
  readonly reason?: string;
  /** The architecture's own detail (errno message, fault name and record). */
  readonly detail?: string;
}

/** The environment a workload runs in: one fresh system of one backend. */
export interface WorkloadRun {
  /** The system (built with the workload's devices). */
  readonly system: IoasidSystem;
  /** The backend's id (package name without scope, or a variant id). */
  readonly backend: string;
  /** The backend's guest-side stage-1 builder, if it has hardware nesting. */
  readonly guest: NestingGuest | undefined;
  /** Runs a uAPI step: returns its value, or undefined when it threw. */
  step<T>(name: string, expect: Expectation, fn: () => T): T | undefined;
  /** Runs a DMA step. */
  dma(name: string, device: string, request: DmaRequest, expect: Expectation): DmaResult;
  /** Records an observation that is not an operation (always passes when `holds`). */
  check(name: string, holds: boolean, detail?: string): void;
  /** Records a finding: the workload cannot go further on this backend, and why. */
  note(name: string, because: string): void;
}

/** A workload. */
export interface Workload {
  /** Short id, e.g. `userspace-driver`. */
  readonly id: string;
  /** Title. */
  readonly title: string;
  /** What the workload shows, in a sentence or two. */
  readonly summary: string;
  /** Devices the workload's system needs. */
  readonly devices: readonly (string | DeviceSpec)[];
  /** Runs the workload. */
  run(t: WorkloadRun): void;
}

const hexBytes = (d: Uint8Array) => `[${[...d.slice(0, 8)].join(',')}${d.length > 8 ? ',…' : ''}]`;

/** Text for an expectation. */
export function describeExpectation(e: Expectation): string {
  switch (e.kind) {
    case 'ok':
      return 'ok';
    case 'errno':
      return e.errno;
    case 'data':
      return e.data.length === 0 ? 'ok' : `data:${hexBytes(e.data)}`;
    case 'fault':
      return `fault:${e.classes.join('|')}`;
  }
}

/** Records steps for one workload on one backend. */
export class StepRecorder {
  /** The steps so far. */
  readonly steps: StepResult[] = [];

  /** Records a step from its expectation and what happened. */
  record(name: string, expect: Expectation, actual: string, matched: boolean, detail?: string): void {
    const expected = describeExpectation(expect);
    const base = { name, expected, actual, ...(detail === undefined ? {} : { detail }) };
    if (matched) {
      this.steps.push(expect.because === undefined ? { ...base, status: 'pass' } : { ...base, status: 'divergence', reason: expect.because });
    } else {
      this.steps.push({ ...base, status: 'fail', reason: `expected ${expected}, got ${actual}` });
    }
  }

  /** Runs a uAPI step. */
  step<T>(name: string, expect: Expectation, fn: () => T): T | undefined {
    try {
      const value = fn();
      this.record(name, expect, 'ok', expect.kind === 'ok');
      return value;
    } catch (e) {
      if (isIoasidError(e)) {
        this.record(name, expect, e.errno, expect.kind === 'errno' && expect.errno === e.errno, e.message);
      } else {
        this.record(name, expect, 'exception', false, e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      }
      return undefined;
    }
  }

  /** Records a DMA result against its expectation. */
  dma(name: string, result: DmaResult, expect: Expectation): void {
    if (result.ok) {
      const actual = result.data.length === 0 ? 'ok' : `data:${hexBytes(result.data)}`;
      const matched =
        (expect.kind === 'data' && result.data.length === expect.data.length && result.data.every((b, i) => b === expect.data[i])) ||
        (expect.kind === 'ok' && result.data.length === 0);
      this.record(name, expect, actual, matched);
    } else {
      const f = result.fault;
      this.record(name, expect, `fault:${f.class}`, expect.kind === 'fault' && expect.classes.includes(f.class), `${f.name} (${f.code}) at 0x${f.iova.toString(16)}`);
    }
  }
}

/** Reads hw_info for a device by binding it in a throw-away context. */
export function probeInfo(system: IoasidSystem, device: string): HwInfo {
  const proc = system.createProcess();
  const ctx = system.open(proc);
  try {
    return ctx.getInfo(ctx.bindDevice(device));
  } finally {
    ctx.close();
  }
}
