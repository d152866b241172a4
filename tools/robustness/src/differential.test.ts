import fc from 'fast-check';
import { afterAll, describe, it } from 'vitest';
import { BACKENDS } from './backends.js';
import { fcParams, runs } from './config.js';
import { coverage, runSequence } from './differential.js';
import { opsArb } from './arbitraries.test-util.js';
import { saveStatsAfterAll } from '../test/save-stats.js';

saveStatsAfterAll('differential');

afterAll(() => {
  if (process.env['IOASID_FUZZ_COVERAGE'] !== '1') return;
  for (const [id, c] of coverage) {
    console.log(`${id}: ${c.dataProbes} data probes, ${c.faultProbes} fault probes`);
    console.log([...c.ops].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `  ${k}: ${v}`).join('\n'));
  }
});

describe('differential: random uAPI sequences against the reference model, on every backend', () => {
  for (const backend of BACKENDS) {
    it(`${backend.id}: every operation answers as the model says, every probe reads what the model says`, () => {
      fc.assert(
        fc.property(opsArb(runs(20, 60)), (ops) => {
          runSequence(backend, ops);
        }),
        fcParams(`differential ${backend.id}`, 20, 600),
      );
    });
  }
});
