/**
 * A fixed sequence through the differential harness (model and probes after every step): the
 * two mediated devices of PF1 end up in two VMs, which core allows only while no other context
 * drives their parent (FINDINGS.md F1). Each step's answer — EBUSY or success — and every DMA
 * probe is checked against the reference model, on every backend (without PASIDs the mdev binds
 * are EOPNOTSUPP, as the model says).
 */

import { describe, it } from 'vitest';
import { BACKENDS } from './backends.js';
import { runSequence, type Op } from './differential.js';
import { saveStatsAfterAll } from '../test/save-stats.js';

saveStatsAfterAll('differential-ownership');

// device indices: 0 PF1, 1 VF1, 2 mdev0, 3 mdev1, 4 PF2; contexts 0 and 1
const MOVE_MDEV1_TO_VM1: readonly Op[] = [
  { t: 'unbind', d: 3 }, // mdev1 leaves context 0
  { t: 'bind', c: 1, d: 3 }, // EBUSY: PF1 is driven by context 0
  { t: 'unbind', d: 0 }, // PF1 leaves context 0
  { t: 'bind', c: 1, d: 3 }, // now context 1 may take mdev1
  { t: 'attach', d: 3, tgt: 0, p: 1 }, // mdev1's vPASID 1 → context 1's first IOAS
  { t: 'attach', d: 2, tgt: 1, p: 1 }, // mdev0's vPASID 1 → context 0's second IOAS
  { t: 'dmaWrite', d: 3, key: 0, probe: 0, len: 8, seed: 7 },
  { t: 'dmaWrite', d: 2, key: 0, probe: 0, len: 8, seed: 9 },
  { t: 'bind', c: 0, d: 0 }, // EBUSY: context 1 holds mdev1
  { t: 'bind', c: 1, d: 0 }, // EBUSY: context 0 holds mdev0
  { t: 'unbind', d: 2 }, // mdev0 leaves context 0
  { t: 'bind', c: 1, d: 0 }, // context 1 holds every bound device of the family: PF1 may join it
  { t: 'attach', d: 0, tgt: 0, p: 0 },
  { t: 'bind', c: 0, d: 2 }, // EBUSY: PF1 is in context 1 now
  { t: 'close', c: 1 },
  { t: 'bind', c: 0, d: 2 }, // the family is free again
];

describe('differential: a parent and its mdevs never in two contexts', () => {
  for (const backend of BACKENDS) {
    it(`${backend.id}: every answer and every probe matches the model`, () => {
      runSequence(backend, MOVE_MDEV1_TO_VM1);
    });
  }
});
