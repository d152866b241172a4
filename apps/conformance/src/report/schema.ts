/**
 * The report's schema (`report.json`), version 1. BigInts (addresses, sizes, registers) are
 * written as `0x…` hex strings. Documented field by field in the app's README.
 */

import type { StepResult, StepStatus } from '../workload.js';

/** Schema name. */
export const REPORT_SCHEMA = 'ioasid-conformance-report';
/** Schema version: bump on any incompatible change. */
export const REPORT_VERSION = 1;

/** One backend configuration. */
export interface ReportBackend {
  /** Id (package name without scope, or a variant id). */
  readonly id: string;
  /** The npm package. */
  readonly package: string;
  /** One-line description. */
  readonly label: string;
  /** hw_info of the standard device `0000:00:02.0`, JSON-safe. */
  readonly hwInfo: unknown;
}

/** One workload on one backend. */
export interface ReportCell {
  /** Backend id. */
  readonly backend: string;
  /** fail if any step failed, else divergence if any diverged, else pass. */
  readonly status: StepStatus;
  /** Wall time of the workload on this backend. */
  readonly durationMs: number;
  /** The steps. */
  readonly steps: readonly StepResult[];
}

/** One workload and its results. */
export interface ReportWorkload {
  /** Id. */
  readonly id: string;
  /** Title. */
  readonly title: string;
  /** What it shows. */
  readonly summary: string;
  /** A result per backend. */
  readonly results: readonly ReportCell[];
}

/** A performance figure. */
export interface ReportFigure {
  /** Backend id. */
  readonly backend: string;
  /** Metric name (`dma.hit`, `map.4k` …). */
  readonly metric: string;
  /** Value. */
  readonly value: number;
  /** Unit (`ops/s`, `pages/s`). */
  readonly unit: string;
}

/** The whole report. */
export interface Report {
  /** Always {@link REPORT_SCHEMA}. */
  readonly schema: typeof REPORT_SCHEMA;
  /** Always {@link REPORT_VERSION}. */
  readonly version: typeof REPORT_VERSION;
  /** ISO time the run started. */
  readonly generatedAt: string;
  /** Node.js version. */
  readonly node: string;
  /** The shard this report covers (absent: the whole run, or merged). */
  readonly shard?: { readonly index: number; readonly count: number };
  /** Backends, in column order. */
  readonly backends: readonly ReportBackend[];
  /** Workloads, in row order. */
  readonly workloads: readonly ReportWorkload[];
  /** Performance figures measured during the run. */
  readonly performance: readonly ReportFigure[];
  /** Step counts. */
  readonly summary: { readonly pass: number; readonly divergence: number; readonly fail: number };
}

/** JSON.stringify replacer: bigints as hex strings, typed arrays as plain arrays. */
export function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return `0x${value.toString(16)}`;
  if (value instanceof Uint8Array || value instanceof Uint32Array) return [...value];
  return value;
}

/** Counts the steps of a report's workloads. */
export function summarize(workloads: readonly ReportWorkload[]): Report['summary'] {
  const s = { pass: 0, divergence: 0, fail: 0 };
  for (const w of workloads) for (const c of w.results) for (const st of c.steps) s[st.status]++;
  return s;
}
