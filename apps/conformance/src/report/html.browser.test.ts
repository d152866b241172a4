// The HTML report in headless Chromium (Debian's, installed by scripts/ensure-chromium.mjs):
// it loads with no console error, needs no network, and its table has a row per workload and
// a column per backend.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { defaultBackendModules, loadBackends } from '../registry.js';
import { runConformance } from '../runner.js';
import { WORKLOADS } from '../workloads/index.js';
import { writeReports } from '../write.js';

const executablePath = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p));

describe('report.html in headless Chromium', () => {
  it('loads with no console error, offline, with a row per workload and a column per backend', async () => {
    expect(executablePath, 'Debian chromium must be installed (scripts/ensure-chromium.mjs)').toBeDefined();
    const backends = await loadBackends(defaultBackendModules());
    const report = runConformance(WORKLOADS, backends);
    const dir = mkdtempSync(join(tmpdir(), 'ioasid-html-'));
    const { html } = writeReports(report, dir);
    const browser = await chromium.launch({
      executablePath: executablePath!,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) requests.push(r.url());
      });
      await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      const rows = await page.locator('#results tbody tr').count();
      expect(rows).toBe(WORKLOADS.length);
      const headers = await page.locator('#results thead th').allTextContents();
      expect(headers).toEqual(['workload', ...backends.map((b) => b.id)]);
      const cellsPerRow = await page.locator('#results tbody tr:first-child td').count();
      expect(cellsPerRow).toBe(backends.length);
      const embedded = await page.locator('#report-data').textContent();
      expect(JSON.parse(embedded ?? '{}')).toMatchObject({ schema: 'ioasid-conformance-report', version: 1 });
      expect(await page.locator('svg[role=img]').count()).toBeGreaterThan(0);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
