/**
 * `npm run bench`: per backend, the DMA hit and miss paths, nested translation, MAP/UNMAP of
 * 4 KiB pages, a 1 GiB map, map/unmap cost against the number of live mappings, and memory per
 * mapping — beside a plain JavaScript reference walker measured in the same run. Writes
 * `bench.json` at the repository root and prints a table.
 */

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BACKEND_LOADERS } from './backends.js';
import { benchBackend, benchReference, type Result } from './suite.js';

const self = fileURLToPath(import.meta.url);
const root = join(self, '..', '..', '..', '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const child = args.indexOf('--child');

if (child >= 0) {
  // one measurement in this process: the reference, or one backend
  const name = args[child + 1] ?? '';
  const load = BACKEND_LOADERS[name];
  const rows = name === 'reference' ? await benchReference() : load === undefined ? [] : await benchBackend(await load(), { quick });
  process.stdout.write(JSON.stringify(rows));
  process.exit(0);
}

/**
 * Each backend is measured in a process of its own, as a user runs one backend: in one
 * process the shared call sites of core and the bench (Endpoint.dmaInto, the timing loops)
 * would see every backend and the ones measured later would pay for the others' shapes.
 */
function measure(name: string): Result[] {
  process.stderr.write(`bench: ${name}…\n`);
  const out = execFileSync(process.execPath, [...process.execArgv, self, '--child', name, ...(quick ? ['--quick'] : [])], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out) as Result[];
}

const only = args.filter((a) => !a.startsWith('-'));
const results: Result[] = [...measure('reference')];
for (const name of Object.keys(BACKEND_LOADERS)) {
  if (only.length > 0 && !only.includes(name)) continue;
  results.push(...measure(name));
}
const out = { node: process.version, date: new Date().toISOString(), results };
writeFileSync(join(root, 'bench.json'), JSON.stringify(out, null, 2) + '\n');

const fmt = (n: number) => (Number.isFinite(n) ? (n >= 100 ? n.toFixed(0) : n.toFixed(1)) : '—');
const rate = (r: Result) => (!Number.isFinite(r.opsPerSec) ? '—' : r.opsPerSec >= 1e6 ? `${(r.opsPerSec / 1e6).toFixed(2)} M` : `${fmt(r.opsPerSec / 1e3)} k`);
const rows = results.map((r) => [r.backend, r.metric, fmt(r.nsPerOp), rate(r), r.value === undefined ? '' : `${fmt(r.value)} ${r.unit ?? ''}`, r.note ?? '']);
const head = ['backend', 'metric', 'ns/op', 'ops/s', 'value', 'note'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
console.log(`\nwrote ${join(root, 'bench.json')}`);
