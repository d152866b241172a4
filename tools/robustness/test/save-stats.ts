/** Registers an afterAll that saves this test file's counters for the global teardown. */

import { afterAll, inject } from 'vitest';
import { saveStats } from '../src/stats.js';

/** Call once at the top level of a test file. */
export function saveStatsAfterAll(name: string): void {
  afterAll(() => {
    saveStats(inject('robustnessStatsDir'), `${name}-${process.pid}`);
  });
}
