/** report.md: the workload × backend table, then every divergence and failure with its reason. */

import type { Report } from './schema.js';

const ICON = { pass: '✅ pass', divergence: '🔶 divergence', fail: '❌ fail' } as const;
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Renders the report as Markdown. */
export function renderMarkdown(report: Report): string {
  const ids = report.backends.map((b) => b.id);
  const lines: string[] = [];
  lines.push('# ioasid conformance report', '');
  lines.push(`Generated ${report.generatedAt} on Node ${report.node}${report.shard ? ` (shard ${report.shard.index}/${report.shard.count})` : ''}.`, '');
  lines.push(`Steps: ${report.summary.pass} pass, ${report.summary.divergence} divergence, ${report.summary.fail} fail.`, '');
  lines.push(`| workload | ${ids.join(' | ')} |`, `|---|${ids.map(() => '---').join('|')}|`);
  for (const w of report.workloads) {
    const cells = ids.map((id) => {
      const c = w.results.find((r) => r.backend === id);
      return c === undefined ? '—' : ICON[c.status];
    });
    lines.push(`| ${cell(w.title)} | ${cells.join(' | ')} |`);
  }
  lines.push('', '## Findings', '');
  for (const w of report.workloads) {
    const notes: string[] = [];
    for (const c of w.results) {
      for (const s of c.steps) {
        if (s.status === 'pass') continue;
        notes.push(`- **${c.backend}** — ${cell(s.name)}: ${s.status === 'fail' ? '❌' : '🔶'} ${cell(s.actual)}${s.reason ? ` — ${cell(s.reason)}` : ''}`);
      }
    }
    if (notes.length > 0) lines.push(`### ${w.title}`, '', ...notes, '');
  }
  if (report.performance.length > 0) {
    lines.push('## Performance (quick probe; see `npm run bench` for the full benchmarks)', '', '| backend | metric | value |', '|---|---|---|');
    for (const p of report.performance) lines.push(`| ${p.backend} | ${p.metric} | ${p.value.toLocaleString('en-US')} ${p.unit} |`);
    lines.push('');
  }
  return lines.join('\n');
}
