/**
 * Vitest global setup: gives every test file a fresh directory for its counters, and at the
 * end sums and prints them (sequences, operations, probes, fail_nth points, malformed inputs).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { FUZZ_MODE } from '../src/config.js';
import { formatStats, loadStats } from '../src/stats.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where each test file writes its counters. */
    robustnessStatsDir: string;
  }
}

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'ioasid-robustness-'));
  const started = performance.now();
  project.provide('robustnessStatsDir', dir);
  return () => {
    const s = loadStats(dir);
    console.log(`\n${formatStats(FUZZ_MODE, (performance.now() - started) / 1000, s)}\n`);
    rmSync(dir, { recursive: true, force: true });
  };
}
