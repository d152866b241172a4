/** Merges shard reports into one report (the union of their cells, in the run's order). */

import { IoasidError } from '@ioasid/uapi';
import { REPORT_SCHEMA, REPORT_VERSION, summarize, type Report, type ReportBackend, type ReportCell, type ReportFigure, type ReportWorkload } from './schema.js';

/** Checks that a parsed JSON value is a report of this schema and version. */
export function asReport(value: unknown, argument: string): Report {
  const r = value as Partial<Report> | null;
  if (r === null || typeof r !== 'object' || r.schema !== REPORT_SCHEMA) {
    throw new IoasidError('EINVAL', argument, `not an ${REPORT_SCHEMA} file`);
  }
  if (r.version !== REPORT_VERSION) throw new IoasidError('EINVAL', argument, `report version ${String(r.version)} is not ${REPORT_VERSION}`);
  return r as Report;
}

/** Merges reports (e.g. the shards of one run). */
export function mergeReports(reports: readonly Report[]): Report {
  if (reports.length === 0) throw new IoasidError('EINVAL', 'reports', 'nothing to merge');
  const backends: ReportBackend[] = [];
  const workloads = new Map<string, { w: ReportWorkload; cells: Map<string, ReportCell> }>();
  const perf = new Map<string, ReportFigure>();
  for (const r of reports) {
    for (const b of r.backends) if (!backends.some((x) => x.id === b.id)) backends.push(b);
    for (const w of r.workloads) {
      let e = workloads.get(w.id);
      if (e === undefined) workloads.set(w.id, (e = { w, cells: new Map() }));
      for (const c of w.results) e.cells.set(c.backend, c);
    }
    for (const p of r.performance) perf.set(`${p.backend}/${p.metric}`, p);
  }
  const order = backends.map((b) => b.id);
  const merged: ReportWorkload[] = [...workloads.values()].map(({ w, cells }) => ({
    id: w.id,
    title: w.title,
    summary: w.summary,
    results: [...cells.values()].sort((x, y) => order.indexOf(x.backend) - order.indexOf(y.backend)),
  }));
  const first = reports[0]!;
  return {
    schema: REPORT_SCHEMA,
    version: REPORT_VERSION,
    generatedAt: first.generatedAt,
    node: first.node,
    backends,
    workloads: merged,
    performance: [...perf.values()],
    summary: summarize(merged),
  };
}
