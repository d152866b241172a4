/**
 * JUnit XML for CI panels: a testsuite per backend, a testcase per workload. A failure is
 * `<failure>`; a divergence (a limitation the backend predicted in hw_info) is `<skipped>` with
 * its reason, as CI conventions for runner limitations go.
 */

import type { Report } from './schema.js';

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Renders the report as JUnit XML. */
export function renderJunit(report: Report): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const total = report.backends.length * report.workloads.length;
  const failures = report.workloads.reduce((n, w) => n + w.results.filter((c) => c.status === 'fail').length, 0);
  out.push(`<testsuites name="ioasid-conformance" tests="${total}" failures="${failures}">`);
  for (const b of report.backends) {
    const cells = report.workloads.flatMap((w) => w.results.filter((c) => c.backend === b.id).map((c) => ({ w, c })));
    const f = cells.filter((x) => x.c.status === 'fail').length;
    const s = cells.filter((x) => x.c.status === 'divergence').length;
    const time = cells.reduce((t, x) => t + x.c.durationMs, 0) / 1000;
    out.push(`  <testsuite name="${xml(b.id)}" tests="${cells.length}" failures="${f}" skipped="${s}" time="${time.toFixed(3)}">`);
    for (const { w, c } of cells) {
      out.push(`    <testcase classname="${xml(b.id)}" name="${xml(w.title)}" time="${(c.durationMs / 1000).toFixed(3)}">`);
      const bad = c.steps.filter((st) => st.status === 'fail');
      const div = c.steps.filter((st) => st.status === 'divergence');
      if (bad.length > 0) {
        const msg = bad.map((st) => `${st.name}: ${st.reason ?? ''}${st.detail ? ` (${st.detail})` : ''}`).join('\n');
        out.push(`      <failure message="${xml(bad[0]!.name)}">${xml(msg)}</failure>`);
      } else if (div.length > 0) {
        out.push(`      <skipped message="${xml(div.map((st) => `${st.name}: ${st.reason ?? ''}`).join('; '))}"/>`);
      }
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>', '');
  return out.join('\n');
}
