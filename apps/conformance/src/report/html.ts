/**
 * report.html: one self-contained page (no network, no script needed): the workload × backend
 * table with outcomes and reasons, every backend's hw_info side by side, and the performance
 * figures as inline SVG bar charts. The report's JSON is embedded for tools.
 */

import type { Report, ReportFigure } from './schema.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const LABEL = { pass: 'pass', divergence: 'divergence', fail: 'FAIL' } as const;

function chart(metric: string, figures: readonly ReportFigure[]): string {
  const max = Math.max(1, ...figures.map((f) => f.value));
  const rowH = 26;
  const labelW = 170;
  const barW = 420;
  const h = figures.length * rowH + 30;
  const bars = figures
    .map((f, i) => {
      const w = Math.max(1, Math.round((f.value / max) * barW));
      const y = 24 + i * rowH;
      return `<text x="0" y="${y + 15}" class="lbl">${esc(f.backend)}</text><rect x="${labelW}" y="${y}" width="${w}" height="18" class="bar"/><text x="${labelW + w + 6}" y="${y + 14}" class="val">${esc(f.value.toLocaleString('en-US'))} ${esc(f.unit)}</text>`;
    })
    .join('');
  return `<figure><svg role="img" aria-label="${esc(metric)}" width="${labelW + barW + 170}" height="${h}" viewBox="0 0 ${labelW + barW + 170} ${h}"><text x="0" y="14" class="title">${esc(metric)}</text>${bars}</svg></figure>`;
}

function infoValue(v: unknown): string {
  if (v === undefined || v === null) return '—';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) {
    return v.length === 0 ? '—' : v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ');
  }
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

/** Renders the report as a self-contained HTML page. */
export function renderHtml(report: Report): string {
  const ids = report.backends.map((b) => b.id);
  const head = `<tr><th scope="col">workload</th>${ids.map((id) => `<th scope="col">${esc(id)}</th>`).join('')}</tr>`;
  const rows = report.workloads
    .map((w) => {
      const cells = ids
        .map((id) => {
          const c = w.results.find((r) => r.backend === id);
          if (c === undefined) return '<td class="none">—</td>';
          const notes = c.steps.filter((s) => s.status !== 'pass');
          const list = c.steps
            .map((s) => `<li class="${s.status}"><span class="st">${LABEL[s.status]}</span> ${esc(s.name)} → <code>${esc(s.actual)}</code>${s.reason ? ` <em>${esc(s.reason)}</em>` : ''}</li>`)
            .join('');
          const firstReason = notes[0]?.reason;
          return `<td class="${c.status}"><details><summary>${LABEL[c.status]}${notes.length > 0 ? ` (${notes.length})` : ''}${firstReason ? `<div class="why">${esc(firstReason)}</div>` : ''}</summary><ol>${list}</ol></details></td>`;
        })
        .join('');
      return `<tr data-workload="${esc(w.id)}"><th scope="row" title="${esc(w.summary)}">${esc(w.title)}<div class="sum">${esc(w.summary)}</div></th>${cells}</tr>`;
    })
    .join('\n');
  const keys = [...new Set(report.backends.flatMap((b) => Object.keys((b.hwInfo ?? {}) as Record<string, unknown>)))];
  const infoRows = keys
    .map((k) => `<tr><th scope="row">${esc(k)}</th>${report.backends.map((b) => `<td>${esc(infoValue((b.hwInfo as Record<string, unknown>)[k]))}</td>`).join('')}</tr>`)
    .join('\n');
  const metrics = [...new Set(report.performance.map((p) => p.metric))];
  const charts = metrics.map((m) => chart(m, report.performance.filter((p) => p.metric === m))).join('\n');
  const json = JSON.stringify(report).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ioasid conformance report</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;color:#1b1b1b}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.35rem .5rem;vertical-align:top;text-align:left}
thead th{background:#f0f0f0;position:sticky;top:0}
td.pass{background:#e8f6e8}td.divergence{background:#fff4dc}td.fail{background:#fde2e2}td.none{color:#999}
.sum{font-weight:normal;color:#555;font-size:12px;max-width:28rem}.why{font-size:12px;color:#6b4b00;max-width:18rem}
details ol{margin:.3rem 0 0 1rem;padding:0;font-size:12px;max-width:32rem}li.fail{color:#a00}li.divergence{color:#6b4b00}
.st{font-weight:600}code{font-size:12px}
svg .bar{fill:#3b6fb6}svg .lbl,svg .val{font-size:12px;fill:#222}svg .title{font-size:13px;font-weight:600;fill:#111}
</style>
</head>
<body>
<h1>ioasid conformance report</h1>
<p>Generated ${esc(report.generatedAt)} on Node ${esc(report.node)}. Steps: <strong>${report.summary.pass}</strong> pass, <strong>${report.summary.divergence}</strong> divergence, <strong>${report.summary.fail}</strong> fail. A divergence is a difference the backend predicts in its hw_info (the reason is shown); a failure contradicts it.</p>
<h2>Workloads × backends</h2>
<table id="results"><thead>${head}</thead><tbody>
${rows}
</tbody></table>
<h2>Hardware information</h2>
<table id="hwinfo"><thead><tr><th scope="col">field</th>${ids.map((id) => `<th scope="col">${esc(id)}</th>`).join('')}</tr></thead><tbody>
${infoRows}
</tbody></table>
<h2>Performance</h2>
${charts === '' ? '<p>No figures in this report.</p>' : charts}
<script type="application/json" id="report-data">${json}</script>
</body>
</html>
`;
}
