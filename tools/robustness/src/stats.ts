/**
 * What a run did, counted: sequences run, uAPI operations executed, DMA probes issued,
 * allocation-failure points injected and malformed inputs tried. Each test file adds its
 * counts to a JSON file in the directory the global setup provides; the global teardown sums
 * and prints them.
 */

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The counters. */
export interface RobustnessStats {
  /** Random operation sequences run (differential and isolation properties). */
  sequences: number;
  /** uAPI operations executed by those sequences. */
  operations: number;
  /** DMA probes compared with the reference model. */
  probes: number;
  /** fail_nth points injected (each a failed-then-checked attempt). */
  failPoints: number;
  /** Malformed inputs given to a hardware-facing surface. */
  malformed: number;
}

/** Zeroed counters. */
export function emptyStats(): RobustnessStats {
  return { sequences: 0, operations: 0, probes: 0, failPoints: 0, malformed: 0 };
}

/** The counters of this worker (one test file). */
export const stats: RobustnessStats = emptyStats();

/** Per-backend breakdown of this worker's counters. */
export const statsByBackend = new Map<string, RobustnessStats>();

/** Adds to the counters, overall and for a backend. */
export function count(backend: string, key: keyof RobustnessStats, n = 1): void {
  stats[key] += n;
  let b = statsByBackend.get(backend);
  if (b === undefined) statsByBackend.set(backend, (b = emptyStats()));
  b[key] += n;
}

/** Writes this worker's counters as `<dir>/<name>.json`. */
export function saveStats(dir: string, name: string): void {
  mkdirSync(dir, { recursive: true });
  const body = { total: stats, byBackend: Object.fromEntries(statsByBackend) };
  writeFileSync(join(dir, `${name.replace(/[^a-zA-Z0-9_.-]/g, '_')}.json`), JSON.stringify(body));
}

/** Sums every worker's counters found in `dir`. */
export function loadStats(dir: string): { total: RobustnessStats; byBackend: Map<string, RobustnessStats> } {
  const total = emptyStats();
  const byBackend = new Map<string, RobustnessStats>();
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return { total, byBackend };
  }
  for (const f of files) {
    const body = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
      total: RobustnessStats;
      byBackend: Record<string, RobustnessStats>;
    };
    for (const k of Object.keys(total) as (keyof RobustnessStats)[]) total[k] += body.total[k];
    for (const [name, s] of Object.entries(body.byBackend)) {
      let b = byBackend.get(name);
      if (b === undefined) byBackend.set(name, (b = emptyStats()));
      for (const k of Object.keys(total) as (keyof RobustnessStats)[]) b[k] += s[k];
    }
  }
  return { total, byBackend };
}

/** A printable table of the counters. */
export function formatStats(mode: string, seconds: number, s: { total: RobustnessStats; byBackend: Map<string, RobustnessStats> }): string {
  const keys: (keyof RobustnessStats)[] = ['sequences', 'operations', 'probes', 'failPoints', 'malformed'];
  const rows = [['backend', ...keys], ...[...s.byBackend].sort(([a], [b]) => a.localeCompare(b)).map(([n, b]) => [n, ...keys.map((k) => String(b[k]))]), ['TOTAL', ...keys.map((k) => String(s.total[k]))]];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  return [`@ioasid/robustness (${mode} run, ${seconds.toFixed(1)} s)`, ...lines].join('\n');
}
