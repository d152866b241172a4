/** Runs workloads on backends and builds the report. */

import { performance as clock } from 'node:perf_hooks';
import type { DmaRequest, DmaResult } from '@ioasid/uapi';
import { measure } from './perf.js';
import type { BackendEntry } from './registry.js';
import { REPORT_SCHEMA, REPORT_VERSION, jsonSafe, summarize, type Report, type ReportCell, type ReportFigure, type ReportWorkload } from './report/schema.js';
import { StepRecorder, probeInfo, type Expectation, type StepStatus, type Workload, type WorkloadRun } from './workload.js';

/** Options of a run. */
export interface RunOptions {
  /** Shard `index` (1-based) of `count`. */
  readonly shard?: { readonly index: number; readonly count: number };
  /** Called after each workload × backend pair. */
  readonly onProgress?: (done: number, total: number, label: string, status: StepStatus) => void;
  /** Measure performance figures (default true). */
  readonly performance?: boolean;
}

/** Runs one workload on one backend. */
export function runOne(workload: Workload, backend: BackendEntry): ReportCell {
  const rec = new StepRecorder();
  const start = clock.now();
  try {
    const system = backend.create(workload.devices);
    const run: WorkloadRun = {
      system,
      backend: backend.id,
      guest: backend.guest,
      step: (name, expect, fn) => rec.step(name, expect, fn),
      dma: (name: string, device: string, request: DmaRequest, expect: Expectation): DmaResult => {
        let r: DmaResult;
        try {
          r = system.device(device).dma(request);
        } catch (e) {
          rec.record(name, expect, 'exception', false, `a DMA threw: ${e instanceof Error ? e.message : String(e)}`);
          return { ok: false, fault: { class: 'blocked', name: 'EXCEPTION', code: -1, iova: request.iova, record: {} } };
        }
        rec.dma(name, r, expect);
        return r;
      },
      check: (name, holds, detail) => {
        rec.record(name, { kind: 'ok' }, holds ? 'ok' : 'violated', holds, detail);
      },
      note: (name, because) => {
        rec.record(name, { kind: 'ok', because }, 'ok', true);
      },
    };
    workload.run(run);
  } catch (e) {
    rec.record('workload', { kind: 'ok' }, 'exception', false, e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  }
  const steps = rec.steps;
  const status: StepStatus = steps.some((s) => s.status === 'fail') ? 'fail' : steps.some((s) => s.status === 'divergence') ? 'divergence' : 'pass';
  return { backend: backend.id, status, durationMs: Math.round((clock.now() - start) * 100) / 100, steps };
}

/** Runs every workload on every backend (or one shard of the pairs) and returns the report. */
export function runConformance(workloads: readonly Workload[], backends: readonly BackendEntry[], options: RunOptions = {}): Report {
  const generatedAt = new Date().toISOString();
  const pairs: [Workload, BackendEntry][] = [];
  for (const w of workloads) for (const b of backends) pairs.push([w, b]);
  const shard = options.shard;
  const mine = shard === undefined ? pairs : pairs.filter((_, i) => i % shard.count === shard.index - 1);
  const cells = new Map<string, ReportCell[]>();
  let done = 0;
  for (const [w, b] of mine) {
    const cell = runOne(w, b);
    let list = cells.get(w.id);
    if (list === undefined) cells.set(w.id, (list = []));
    list.push(cell);
    options.onProgress?.(++done, mine.length, `${w.id} on ${b.id}`, cell.status);
  }
  const reportWorkloads: ReportWorkload[] = workloads
    .filter((w) => cells.has(w.id))
    .map((w) => ({ id: w.id, title: w.title, summary: w.summary, results: cells.get(w.id)! }));
  const performance: ReportFigure[] = [];
  const measured = shard === undefined || shard.index === 1;
  if (options.performance !== false && measured) for (const b of backends) performance.push(...measure(b));
  const report: Report = {
    schema: REPORT_SCHEMA,
    version: REPORT_VERSION,
    generatedAt,
    node: process.version,
    ...(shard === undefined ? {} : { shard }),
    backends: backends.map((b) => ({
      id: b.id,
      package: b.packageName,
      label: b.label,
      hwInfo: JSON.parse(JSON.stringify(safeInfo(b), jsonSafe)) as unknown,
    })),
    workloads: reportWorkloads,
    performance,
    summary: summarize(reportWorkloads),
  };
  return report;
}

function safeInfo(b: BackendEntry): unknown {
  try {
    return probeInfo(b.create(['0000:00:02.0']), '0000:00:02.0');
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}
