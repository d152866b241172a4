import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { iotlbDescriptor, iotlbWords, piotlbDescriptor, piotlbWords, psiAlignedAddress, psiAlignedMask, type QiDescriptor } from './invalidation.js';

const words = (d: QiDescriptor) => [d[0] & 0xffffffffn, d[0] >> 32n, d[1] & 0xffffffffn, d[1] >> 32n].map(Number);

// Page numbers below 2^45 (57-bit IOVAs), with ranges from one page to most of the space and
// starts that are aligned, almost aligned, or anywhere.
const pfnArb = fc.oneof(fc.integer({ min: 0, max: 2 ** 45 - 1 }), fc.integer({ min: 0, max: 40 }).map((k) => 2 ** k), fc.integer({ min: 0, max: 0xfffff }));
const rangeArb = fc.tuple(pfnArb, fc.oneof(fc.integer({ min: 1, max: 1024 }), fc.integer({ min: 1, max: 2 ** 45 }))).map(([first, n]) => [first, first + n - 1] as const);

describe('number-only invalidation helpers', () => {
  it('psiAlignedMask and the descriptor words agree with the BigInt encoders', () => {
    fc.assert(
      fc.property(rangeArb, fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xfffff }), fc.boolean(), ([first, last], did, pasid, ih) => {
        const psi = psiAlignedAddress(BigInt(first) * 4096n, BigInt(last) * 4096n + 0xfffn);
        const mask = psiAlignedMask(first, last);
        expect(mask).toBe(psi.mask);
        const addrPfn = Math.floor(first / 2 ** mask) * 2 ** mask;
        expect(BigInt(addrPfn) * 4096n).toBe(psi.addr);
        const out = new Uint32Array(4);
        piotlbWords(out, 0, 3, did, pasid, addrPfn, mask, ih);
        expect([...out]).toEqual(words(piotlbDescriptor({ granularity: 3, did, pasid, addr: psi.addr, am: psi.mask, ih })));
        iotlbWords(out, 0, 3, did, addrPfn, mask, ih, true, true);
        expect([...out]).toEqual(words(iotlbDescriptor({ granularity: 3, did, addr: psi.addr, am: psi.mask, ih, dr: true, dw: true })));
      }),
      { numRuns: 500 },
    );
  });

  it('the examples of calculate_psi_aligned_address', () => {
    expect(psiAlignedMask(0x10, 0x12)).toBe(2);
    expect(psiAlignedMask(0x11, 0x12)).toBe(2);
    expect(psiAlignedMask(0x1ff, 0x200)).toBe(10); // straddles 2 MiB: shared bits start at bit 10
    expect(psiAlignedMask(7, 7)).toBe(0);
  });
});
