/** The differential property, defined for a list of backends (split over files so that vitest runs them in parallel). */

import fc from 'fast-check';
import { afterAll, describe, it } from 'vitest';
import type { BackendUnderTest } from './backends.js';
import { fcParams, runs } from './config.js';
import { coverage, runSequence } from './differential.js';
import { opsArb } from './arbitraries.test-util.js';
import { saveStatsAfterAll } from '../test/save-stats.js';

/** Defines the differential property for each backend of `backends`; `name` names the counters file. */
export function differentialSuite(name: string, backends: readonly BackendUnderTest[], bounded = 20, long = 300): void {
  saveStatsAfterAll(name);
  afterAll(() => {
    if (process.env['IOASID_FUZZ_COVERAGE'] !== '1') return;
    for (const [id, c] of coverage) {
      console.log(`${id}: ${c.dataProbes} data probes, ${c.faultProbes} fault probes`);
      console.log([...c.ops].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `  ${k}: ${v}`).join('\n'));
    }
  });
  describe('differential: random uAPI sequences against the reference model', () => {
    for (const backend of backends) {
      it(`${backend.id}: every operation answers as the model says, every probe reads what the model says`, () => {
        fc.assert(
          fc.property(opsArb(runs(20, 50)), (ops) => {
            runSequence(backend, ops);
          }),
          fcParams(`differential ${backend.id}`, bounded, long),
        );
      });
    }
  });
}
