/**
 * fail_nth in the style of iommufd's selftest: for one uAPI operation, fail the 1st, 2nd, …
 * allocation it makes (table frames, pins, object ids) until it succeeds. Every failed attempt
 * must throw ENOMEM (or a documented errno) and leave the state exactly as before.
 */

import type { System } from '@ioasid/core';
import { IoasidError, type ErrnoName, type Process } from '@ioasid/uapi';
import type { BackendUnderTest } from './backends.js';
import { snapshotState, stateDiff, type ProbeSpec } from './snapshot.js';

/** What a fail_nth loop found. */
export interface FailNthReport<R> {
  /** The result of the attempt that succeeded. */
  readonly result: R;
  /** Failed attempts (allocation failure points injected). */
  readonly failures: number;
  /** The errnos the failed attempts threw. */
  readonly errnos: ReadonlySet<ErrnoName>;
  /** Attempts whose injected failure was absorbed (the call succeeded anyway). */
  readonly absorbed: number;
}

/** A failed attempt that broke a rule: the n, and what went wrong. */
export class FailNthViolation extends Error {
  override name = 'FailNthViolation';
}

/** Options of {@link failNthLoop}. */
export interface FailNthOptions<R> {
  /** The backend (for PAPR recovery and scratch frames). */
  readonly backend: BackendUnderTest;
  /** The system. */
  readonly system: System;
  /** Processes whose pins are compared. */
  readonly procs: readonly Process[];
  /** DMA probes whose answers must not change. */
  readonly probes: readonly ProbeSpec[];
  /** The operation. */
  readonly op: () => R;
  /** Errnos a failed attempt may throw (default ENOMEM only). */
  readonly allowed?: readonly ErrnoName[];
  /** Give up after this many attempts (default 5000). */
  readonly maxAttempts?: number;
  /** Called after each checked failed attempt (to count injection points). */
  readonly onFailure?: () => void;
}

/**
 * Fails the n-th allocation of `op` for n = 1, 2, … until `op` succeeds; after each failure
 * checks the errno and that nothing changed. Throws a {@link FailNthViolation} on the first
 * broken rule.
 */
export function failNthLoop<R>(o: FailNthOptions<R>): FailNthReport<R> {
  const allowed = new Set<ErrnoName>(o.allowed ?? ['ENOMEM']);
  const errnos = new Set<ErrnoName>();
  const inj = o.system.failNth;
  let failures = 0;
  let absorbed = 0;
  const max = o.maxAttempts ?? 5000;
  for (let n = 1; n <= max; n++) {
    const before = snapshotState(o.backend, o.system, o.procs, o.probes);
    inj.arm(n);
    let result: R;
    try {
      result = o.op();
    } catch (e) {
      const fired = inj.hasFired;
      inj.disarm();
      if (!(e instanceof IoasidError)) throw new FailNthViolation(`n=${n}: threw a non-IoasidError: ${String(e)}`);
      if (!fired) throw new FailNthViolation(`n=${n}: failed with ${e.message} although the injected failure did not fire`);
      if (!allowed.has(e.errno)) throw new FailNthViolation(`n=${n}: failed with ${e.message}; expected ${[...allowed].join(' or ')}`);
      errnos.add(e.errno);
      failures++;
      const after = snapshotState(o.backend, o.system, o.procs, o.probes);
      const diff = stateDiff(o.backend, o.system, before, after);
      if (diff.length > 0) throw new FailNthViolation(`n=${n}: the failed attempt (${e.message}) changed the state: ${diff.join('; ')}`);
      o.onFailure?.();
      continue;
    }
    const fired = inj.hasFired;
    inj.disarm();
    if (fired) {
      absorbed++; // the allocation that failed was optional (a cache, a retry): the call succeeded
    }
    return { result, failures, errnos, absorbed };
  }
  throw new FailNthViolation(`still failing after ${max} attempts`);
}
