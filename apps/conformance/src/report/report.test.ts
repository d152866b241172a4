import { describe, expect, it } from 'vitest';
import { compareReports, renderChanges } from './compare.js';
import { renderJunit } from './junit.js';
import { renderMarkdown } from './markdown.js';
import { asReport, mergeReports } from './merge.js';
import { REPORT_SCHEMA, REPORT_VERSION, summarize, type Report, type ReportWorkload } from './schema.js';

const workloads: ReportWorkload[] = [
  {
    id: 'w1', title: 'W one', summary: 's1',
    results: [
      { backend: 'a', status: 'pass', durationMs: 1, steps: [{ name: 'x', expected: 'ok', actual: 'ok', status: 'pass' }] },
      { backend: 'b', status: 'divergence', durationMs: 2, steps: [{ name: 'x', expected: 'EOPNOTSUPP', actual: 'EOPNOTSUPP', status: 'divergence', reason: 'no <PASID> & co' }] },
    ],
  },
  {
    id: 'w2', title: 'W two', summary: 's2',
    results: [
      { backend: 'a', status: 'fail', durationMs: 3, steps: [{ name: 'y', expected: 'ok', actual: 'EINVAL', status: 'fail', reason: 'expected ok, got EINVAL' }] },
      { backend: 'b', status: 'pass', durationMs: 4, steps: [{ name: 'y', expected: 'ok', actual: 'ok', status: 'pass' }] },
    ],
  },
];
const report: Report = {
  schema: REPORT_SCHEMA, version: REPORT_VERSION, generatedAt: '2026-01-01T00:00:00.000Z', node: 'v20',
  backends: [{ id: 'a', package: '@x/a', label: 'A', hwInfo: {} }, { id: 'b', package: '@x/b', label: 'B', hwInfo: {} }],
  workloads, performance: [{ backend: 'a', metric: 'dma.hit', value: 1000, unit: 'ops/s' }], summary: summarize(workloads),
};

describe('report formats', () => {
  it('summarize counts every step by status', () => {
    expect(report.summary).toEqual({ pass: 2, divergence: 1, fail: 1 });
  });
  it('Markdown has a row per workload, a column per backend, and every non-pass step with its reason', () => {
    const md = renderMarkdown(report);
    expect(md).toContain('| workload | a | b |');
    expect(md).toContain('| W one | ✅ pass | 🔶 divergence |');
    expect(md).toContain('| W two | ❌ fail | ✅ pass |');
    expect(md).toContain('**b** — x: 🔶 EOPNOTSUPP — no <PASID> & co');
    expect(md).toContain('| a | dma.hit | 1,000 ops/s |');
  });
  it('JUnit: a suite per backend; failures as <failure>, divergences as <skipped>, XML escaped', () => {
    const x = renderJunit(report);
    expect(x).toContain('<testsuites name="ioasid-conformance" tests="4" failures="1">');
    expect(x).toContain('<testsuite name="a" tests="2" failures="1" skipped="0" time="0.004">');
    expect(x).toContain('<testsuite name="b" tests="2" failures="0" skipped="1" time="0.006">');
    expect(x).toContain('<skipped message="x: no &lt;PASID&gt; &amp; co"/>');
    expect(x).toContain('<failure message="y">');
  });
});

describe('merge and compare', () => {
  it('merging two shards gives back the whole run', () => {
    const shard = (keep: (i: number) => boolean): Report => {
      let i = 0;
      const ws = workloads.map((w) => ({ ...w, results: w.results.filter(() => keep(i++)) })).filter((w) => w.results.length > 0);
      return { ...report, shard: { index: 1, count: 2 }, workloads: ws, summary: summarize(ws) };
    };
    const merged = mergeReports([shard((i) => i % 2 === 0), shard((i) => i % 2 === 1)]);
    expect(merged.summary).toEqual(report.summary);
    expect(merged.workloads.map((w) => w.results.map((c) => c.backend))).toEqual([['a', 'b'], ['a', 'b']]);
    expect(merged.shard).toBeUndefined();
  });
  it('compare lists exactly the outcomes that changed', () => {
    expect(compareReports(report, report)).toEqual([]);
    expect(renderChanges([])).toBe('no changes\n');
    const fixed: Report = {
      ...report,
      workloads: [workloads[0]!, { ...workloads[1]!, results: [{ ...workloads[1]!.results[0]!, status: 'pass', steps: [{ name: 'y', expected: 'ok', actual: 'ok', status: 'pass' }] }, workloads[1]!.results[1]!] }],
    };
    const changes = compareReports(report, fixed);
    expect(changes).toEqual([
      { workload: 'w2', backend: 'a', step: '(workload)', before: 'fail', after: 'pass' },
      { workload: 'w2', backend: 'a', step: 'y', before: 'fail (EINVAL)', after: 'pass (ok)' },
    ]);
  });
  it('asReport rejects other files and other versions', () => {
    expect(() => asReport({ schema: 'x' }, 'f')).toThrow(/EINVAL/);
    expect(() => asReport({ schema: REPORT_SCHEMA, version: 99 }, 'f')).toThrow(/version/);
  });
});
