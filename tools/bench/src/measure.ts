/** Timing helpers: tinybench tasks that run a batch of operations per iteration. */

import { Bench } from 'tinybench';

/** One figure. */
export interface Figure {
  /** Operations per second. */
  readonly opsPerSec: number;
  /** Nanoseconds per operation. */
  readonly nsPerOp: number;
}

/**
 * Measures `fn`, which performs `batch` operations per call, with tinybench (warm-up, then
 * at least `time` ms of samples); returns per-operation figures.
 */
export async function timeBatch(name: string, batch: number, fn: () => void, time = 300): Promise<Figure> {
  const bench = new Bench({ time, warmupTime: 50 });
  bench.add(name, fn);
  await bench.run();
  const task = bench.tasks[0]!;
  const result = task.result as { latency?: { mean: number } } | undefined;
  const meanMs = result?.latency?.mean ?? NaN;
  const nsPerOp = (meanMs * 1e6) / batch;
  return { nsPerOp, opsPerSec: 1e9 / nsPerOp };
}

/** Times a single run of `fn` doing `ops` operations (for set-up-heavy measurements). */
export function timeOnce(ops: number, fn: () => void): Figure {
  const t = process.hrtime.bigint();
  fn();
  const ns = Number(process.hrtime.bigint() - t) / ops;
  return { nsPerOp: ns, opsPerSec: 1e9 / ns };
}
