/** fast-check arbitraries of differential operations (test-only: fast-check is a dev dependency). */

import fc from 'fast-check';
import type { Op } from './differential.js';

const small = (max: number) => fc.integer({ min: 0, max });

/** One operation, weighted toward memory and attach operations. */
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant('map' as const), c: small(1), io: small(1), a: small(15), s: small(15), n: fc.integer({ min: 1, max: 4 }), v: small(63), w: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('mapAuto' as const), c: small(1), io: small(1), n: fc.integer({ min: 1, max: 8 }), v: small(63), w: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('unmap' as const), c: small(1), io: small(1), a: small(15), s: small(15), n: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unmapAll' as const), c: small(1), io: small(1) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('unmapArea' as const), c: small(1), io: small(1), i: small(7) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('copyArea' as const), c: small(1), dst: small(1), src: small(1), i: small(7), a2: small(15), s2: small(15), w: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('copy' as const), c: small(1), dst: small(1), src: small(1), a: small(15), s: small(15), n: fc.integer({ min: 1, max: 3 }), a2: small(15), s2: small(15), w: fc.boolean() }) },
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant('attach' as const),
      d: small(4),
      // mostly an IOAS (0, 1), sometimes an explicit, nested or nest-parent HWPT
      tgt: fc.oneof({ weight: 4, arbitrary: small(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 3 }) }, { weight: 2, arbitrary: fc.integer({ min: 4, max: 5 }) }, { weight: 1, arbitrary: fc.constant(6) }),
      // mostly without PASID
      p: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 4 }) }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('detach' as const), d: small(4), p: small(3) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('bind' as const), c: small(1), d: small(4) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unbind' as const), d: small(4) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('allocHwpt' as const), d: small(4), io: small(1), kind: small(2), slot: small(1) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('destroyHwpt' as const), c: small(1), slot: small(1) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('nestAlloc' as const), k: small(1) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('nestFree' as const), k: small(1) }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('s1map' as const), k: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }), g: small(15), tgt: small(31), w: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('s1unmap' as const), k: small(1), g: small(15) }) },
  // a device onto a nested HWPT (target 4/5), with or without PASID
  { weight: 3, arbitrary: fc.record({ t: fc.constant('attach' as const), d: small(2), tgt: fc.constantFrom(4, 4, 5), p: fc.constantFrom(0, 0, 1, 4) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('bindSva' as const), d: small(4) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unbindSva' as const), d: small(4) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('munmap' as const), c: small(1), v: small(63) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('procWrite' as const), c: small(1), v: small(63), seed: fc.integer() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('dmaWrite' as const), d: small(4), key: small(7), probe: small(31), len: fc.integer({ min: 1, max: 16 }), seed: fc.integer() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('close' as const), c: fc.constant(1) }) },
);

/** Operations that allocate (table frames, pins, object ids, PASIDs): where fail_nth can strike. */
const ALLOCATING = new Set<Op['t']>(['map', 'mapAuto', 'copy', 'copyArea', 'attach', 'allocHwpt', 'nestAlloc', 'bindSva', 'bind']);

/** An operation, or (one in four) an allocating one whose n-th allocation fails (fail_nth inside a sequence). */
export const opOrInjectArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: opArb },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('inject' as const),
      n: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 12 })),
      op: opArb.filter((o) => ALLOCATING.has(o.t)),
    }),
  },
);

/** A sequence of operations. */
export function opsArb(maxLength: number): fc.Arbitrary<Op[]> {
  return fc.array(opOrInjectArb, { minLength: 1, maxLength, size: 'max' });
}
