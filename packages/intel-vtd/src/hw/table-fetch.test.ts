import { describe, expect, it } from 'vitest';
import { Bench } from '../test/bench.js';
import { PGTT_SECOND_STAGE, encodePasidDirEntry } from '../spec/pasid-entry.js';
import { encodeScalableContextEntry } from '../spec/context-entry.js';
import { GCMD_REG, GCMD_SRTP, GCMD_TE, RTADDR_REG } from '../spec/registers.js';
import { SM_FAULT } from '../spec/faults.js';

// The root, context, PASID-directory and PASID-table entries are read in place from their
// frames: an entry outside memory is an external abort (the *_ACCESS faults), a frame never
// written reads as zeros, and the root entry's half follows the devfn.

const BEYOND = 2 ** 37; // outside the bench's 2^36 bytes of memory, inside HAW
const SID = 0x0310;

function unit() {
  const b = new Bench();
  b.enable();
  const ss = b.alloc();
  const page = b.alloc();
  b.memory.write(BigInt(page), Uint8Array.of(0x5a));
  b.ssMap(ss, 0x7000, page, true, true);
  return { b, ss };
}

const code = (b: Bench, sid: number) => {
  const r = b.read(sid, 0x7000n, 1);
  return r.ok ? `data ${String(r.data[0])}` : r.fault.code;
};

describe('table entries read in place', () => {
  it('a devfn ≥ 0x80 uses the upper half of the root entry, and a clear lower half is not present', () => {
    const { b, ss } = unit();
    const upper = 0x0390; // bus 3, devfn 0x90
    b.context(upper);
    b.pasidEntry(upper, 0, { present: true, pgtt: PGTT_SECOND_STAGE, aw: 2, ssptptr: BigInt(ss), did: 3 });
    expect(code(b, upper)).toBe('data 90');
    expect(code(b, SID)).toBe(SM_FAULT.ROOT_ENTRY_NOT_PRESENT); // devfn 0x10: LP clear
  });

  it('a PASID table in a frame never written reads as zeros: PASID entry not present', () => {
    const { b } = unit();
    const ca = b.context(SID);
    const dir = Number(b.r64(ca) & 0xffffffffff000n);
    const unwritten = 0x800_0000; // inside memory, never allocated or written
    b.w64(dir, encodePasidDirEntry({ present: true, smptblptr: BigInt(unwritten) }));
    expect(code(b, SID)).toBe(SM_FAULT.PASID_ENTRY_NOT_PRESENT);
  });

  it('each entry outside memory is an external abort of its own kind', () => {
    // PASID table beyond memory
    let { b } = unit();
    let ca = b.context(SID);
    const dir = Number(b.r64(ca) & 0xffffffffff000n);
    b.w64(dir, encodePasidDirEntry({ present: true, smptblptr: BigInt(BEYOND) }));
    expect(code(b, SID)).toBe(SM_FAULT.PASID_ENTRY_ACCESS);
    // PASID directory beyond memory
    ({ b } = unit());
    ca = b.context(SID);
    encodeScalableContextEntry({ present: true, paside: true, pdts: 2, pasidDirPtr: BigInt(BEYOND) }).forEach((q, i) => {
      b.w64(ca + i * 8, q);
    });
    expect(code(b, SID)).toBe(SM_FAULT.PASID_DIR_ACCESS);
    // context table beyond memory
    ({ b } = unit());
    b.w64(b.root + 3 * 16, BigInt(BEYOND) | 1n);
    expect(code(b, SID)).toBe(SM_FAULT.CONTEXT_ENTRY_ACCESS);
    // root table beyond memory
    ({ b } = unit());
    b.hw.mmio.write64(RTADDR_REG, BigInt(BEYOND) | (1n << 10n)); // scalable mode
    b.hw.mmio.write32(GCMD_REG, (GCMD_SRTP | GCMD_TE) >>> 0); // latch it, translation kept on
    expect(code(b, SID)).toBe(SM_FAULT.ROOT_ENTRY_ACCESS);
  });
});
