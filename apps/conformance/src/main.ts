/**
 * The ioasid-conformance command line (see cli.ts for the usage).
 */

import { readFileSync } from 'node:fs';
import { performance as clock } from 'node:perf_hooks';
import { Command, CommanderError } from 'commander';
import cliProgress from 'cli-progress';
import { defaultBackendModules, loadBackends } from './registry.js';
import { compareReports, renderChanges } from './report/compare.js';
import { asReport, mergeReports } from './report/merge.js';
import { runConformance } from './runner.js';
import { WORKLOADS } from './workloads/index.js';
import { writeReports } from './write.js';

class UsageError extends Error {}

function parseShard(s: string | undefined): { index: number; count: number } | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(s);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!(count >= 1 && index >= 1 && index <= count)) throw new UsageError(`--shard must be i/n with 1 ≤ i ≤ n, got '${s}'`);
  return { index, count };
}

const list = (s: string | undefined) => (s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter((x) => x !== ''));

function readReport(path: string) {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${path}`);
  }
  try {
    return asReport(JSON.parse(text) as unknown, path);
  } catch (e) {
    throw new UsageError(`${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

interface RunFlags {
  out: string;
  backend?: string;
  workload?: string;
  shard?: string;
  module: string[];
  perf: boolean;
}

async function run(flags: RunFlags): Promise<number> {
  const shard = parseShard(flags.shard);
  let workloads = WORKLOADS;
  const wantW = list(flags.workload);
  if (wantW) {
    const unknown = wantW.filter((w) => !WORKLOADS.some((x) => x.id === w));
    if (unknown.length > 0) throw new UsageError(`unknown workload(s): ${unknown.join(', ')} (have ${WORKLOADS.map((w) => w.id).join(', ')})`);
    workloads = WORKLOADS.filter((w) => wantW.includes(w.id));
  }
  const modules = [...defaultBackendModules(), ...flags.module];
  const wantB = list(flags.backend);
  let backends = await loadBackends(modules, wantB);
  if (wantB) {
    const unknown = wantB.filter((b) => !backends.some((x) => x.id === b));
    if (unknown.length > 0) throw new UsageError(`unknown backend(s): ${unknown.join(', ')} (have ${backends.map((b) => b.id).join(', ')})`);
    backends = backends.filter((b) => wantB.includes(b.id));
  }
  const tty = process.stdout.isTTY;
  const bar = tty ? new cliProgress.SingleBar({ format: ' {bar} {value}/{total} {label}', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  const started = clock.now();
  bar?.start(workloads.length * backends.length, 0, { label: '' });
  const report = runConformance(workloads, backends, {
    ...(shard === undefined ? {} : { shard }),
    performance: flags.perf,
    onProgress: (done, total, label, status) => {
      if (bar) bar.update(done, { label: `${label}: ${status}` });
      else console.log(`[${done}/${total}] ${label}: ${status}`);
    },
  });
  bar?.stop();
  const files = writeReports(report, flags.out);
  const secs = ((clock.now() - started) / 1000).toFixed(2);
  const s = report.summary;
  console.log(`${s.pass} pass, ${s.divergence} divergence, ${s.fail} fail — ${workloads.length} workloads × ${backends.length} backends in ${secs} s`);
  console.log(`reports: ${files.json} ${files.markdown} ${files.html} ${files.junit}`);
  return s.fail === 0 ? 0 : 1;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let code = 0;
  const program = new Command('ioasid-conformance')
    .description('Runs the ioasid workloads on every backend and writes reports that compare them.')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  program
    .command('run', { isDefault: true })
    .description('run workloads × backends and write report.{json,md,html} and junit.xml')
    .option('--out <dir>', 'output folder', 'reports')
    .option('--backend <ids>', 'comma-separated backend ids')
    .option('--workload <ids>', 'comma-separated workload ids')
    .option('--shard <i/n>', 'run shard i of n (1-based) of the workload × backend pairs')
    .option('--module <package>', 'load another backend package (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--no-perf', 'skip the performance probe')
    .action(async (flags: RunFlags) => {
      code = await run(flags);
    });
  program
    .command('compare <a> <b>')
    .description('show what changed between two report.json files (exit 1 when anything did)')
    .action((a: string, b: string) => {
      const changes = compareReports(readReport(a), readReport(b));
      process.stdout.write(renderChanges(changes));
      code = changes.length === 0 ? 0 : 1;
    });
  program
    .command('merge <files...>')
    .description('merge shard report.json files and write the four formats')
    .option('--out <dir>', 'output folder', 'reports')
    .action((files: string[], flags: { out: string }) => {
      const merged = mergeReports(files.map(readReport));
      const written = writeReports(merged, flags.out);
      console.log(`merged ${files.length} reports: ${merged.summary.pass} pass, ${merged.summary.divergence} divergence, ${merged.summary.fail} fail → ${written.json}`);
      code = merged.summary.fail === 0 ? 0 : 1;
    });
  program
    .command('list')
    .description('list the backends and workloads')
    .action(async () => {
      for (const b of await loadBackends(defaultBackendModules())) console.log(`backend  ${b.id}  (${b.packageName})`);
      for (const w of WORKLOADS) console.log(`workload ${w.id}  ${w.title}`);
    });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError) {
      process.stderr.write(`ioasid-conformance: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  return code;
}

