import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from './main.js';
import type { Report } from './report/schema.js';
import { WORKLOADS } from './workloads/index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'ioasid-conf-'));
const read = (dir: string) => JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report;

describe('ioasid-conformance CLI', () => {
  it('a full run on every backend matches every expectation (exit 0) and writes the four formats', async () => {
    const out = tmp();
    expect(await main(['run', '--out', out])).toBe(0);
    for (const f of ['report.json', 'report.md', 'report.html', 'junit.xml']) expect(existsSync(join(out, f))).toBe(true);
    const r = read(out);
    expect(r.summary.fail).toBe(0);
    expect(r.workloads.map((w) => w.id)).toEqual(WORKLOADS.map((w) => w.id));
    const ids = r.backends.map((b) => b.id);
    for (const b of ['intel-vtd', 'arm-smmuv3', 'papr-no-passthrough', 'virtio-iommu']) expect(ids).toContain(b);
    for (const w of r.workloads) expect(w.results.map((c) => c.backend)).toEqual(ids);
  }, 60_000);

  it('--shard splits the pairs and merge joins them into the whole run', async () => {
    const a = tmp();
    const b = tmp();
    const m = tmp();
    const args = ['--backend', 'papr-no-passthrough', '--no-perf'];
    expect(await main(['run', '--out', a, '--shard', '1/2', ...args])).toBe(0);
    expect(await main(['run', '--out', b, '--shard', '2/2', ...args])).toBe(0);
    const ra = read(a);
    const rb = read(b);
    const cells = (r: Report) => r.workloads.reduce((n, w) => n + w.results.length, 0);
    expect(cells(ra) + cells(rb)).toBe(WORKLOADS.length);
    expect(await main(['merge', join(a, 'report.json'), join(b, 'report.json'), '--out', m])).toBe(0);
    const merged = read(m);
    expect(cells(merged)).toBe(WORKLOADS.length);
    expect(await main(['compare', join(m, 'report.json'), join(m, 'report.json')])).toBe(0);
    expect(await main(['compare', join(a, 'report.json'), join(m, 'report.json')])).toBe(1);
  }, 60_000);

  it('bad arguments exit 2', async () => {
    expect(await main(['run', '--shard', '3/2', '--out', tmp()])).toBe(2);
    expect(await main(['run', '--backend', 'no-such-iommu', '--out', tmp()])).toBe(2);
    expect(await main(['run', '--workload', 'nope', '--out', tmp()])).toBe(2);
    expect(await main(['compare', '/nonexistent/a.json', '/nonexistent/b.json'])).toBe(2);
    expect(await main(['frobnicate'])).toBe(2);
  });
});
