/** Compares two reports: which workload × backend × step outcomes changed between runs. */

import type { Report } from './schema.js';

/** One change between two runs. */
export interface Change {
  /** Workload id. */
  readonly workload: string;
  /** Backend id. */
  readonly backend: string;
  /** Step name (or `(workload)` for a whole cell that appeared or vanished). */
  readonly step: string;
  /** Status/outcome before (`absent` if missing). */
  readonly before: string;
  /** Status/outcome after. */
  readonly after: string;
}

/** The changes from `a` to `b`. */
export function compareReports(a: Report, b: Report): Change[] {
  const index = (r: Report) => {
    const m = new Map<string, string>();
    for (const w of r.workloads) {
      for (const c of w.results) {
        m.set(`${w.id}\u0000${c.backend}\u0000(workload)`, c.status);
        for (const s of c.steps) m.set(`${w.id}\u0000${c.backend}\u0000${s.name}`, `${s.status} (${s.actual})`);
      }
    }
    return m;
  };
  const ia = index(a);
  const ib = index(b);
  const keys = [...new Set([...ia.keys(), ...ib.keys()])].sort();
  const out: Change[] = [];
  for (const k of keys) {
    const before = ia.get(k) ?? 'absent';
    const after = ib.get(k) ?? 'absent';
    if (before === after) continue;
    const [workload, backend, step] = k.split('\u0000') as [string, string, string];
    out.push({ workload, backend, step, before, after });
  }
  return out;
}

/** Renders changes as text, one per line. */
export function renderChanges(changes: readonly Change[]): string {
  if (changes.length === 0) return 'no changes\n';
  return changes.map((c) => `${c.workload} / ${c.backend} / ${c.step}: ${c.before} → ${c.after}`).join('\n') + '\n';
}
