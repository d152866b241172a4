import { describe, expect, it } from 'vitest';
import { Bench } from '../test/bench.js';
import { PGTT_FIRST_STAGE, PGTT_SECOND_STAGE } from '../spec/pasid-entry.js';
import { encodeSsLeaf } from '../spec/second-stage.js';
import { encodeFsLeaf } from '../spec/first-stage.js';
import { CCMD_REG, GCMD_REG, GCMD_SRTP, IOTLB_REG_OFFSET, RTADDR_REG } from '../spec/registers.js';
import { SM_FAULT } from '../spec/faults.js';
import { pasidCacheDescriptor } from '../spec/invalidation.js';

// The unit remembers its last resolution (context + PASID entry) and its last IOTLB hit, so
// that a run of identical DMAs skips the lookups. These tests repeat one request many times
// (the remembered path) and check that every event that changes what the hardware would
// answer — an invalidation command, a register write, TE off — changes the answer at once,
// while a table change without an invalidation stays invisible, as it does in the caches.

const SID = 0x0310;
const SID2 = 0x0318;
const bytes = (...b: number[]) => Uint8Array.from(b);
const REPEAT = 5;

function readMany(b: Bench, sid: number, iova: bigint, extra: { pasid?: number; priv?: boolean } = {}) {
  const into = new Uint8Array(1);
  let last: number | undefined;
  for (let i = 0; i < REPEAT; i++) {
    const f = b.hw.dmaInto(sid, { iova, size: 1, write: false, ...extra }, into);
    if (f !== undefined) return f.code;
    if (last !== undefined) expect(into[0]).toBe(last);
    last = into[0]!;
  }
  return `data ${String(last)}`;
}

function ssUnit() {
  const b = new Bench();
  b.enable();
  b.context(SID);
  const ss = b.alloc();
  b.pasidEntry(SID, 0, { present: true, pgtt: PGTT_SECOND_STAGE, aw: 2, ssptptr: BigInt(ss), did: 5 });
  const p1 = b.alloc();
  const p2 = b.alloc();
  b.memory.write(BigInt(p1), bytes(1));
  b.memory.write(BigInt(p2), bytes(2));
  const leaf = b.ssMap(ss, 0x7000, p1, true, false);
  return { b, ss, p1, p2, leaf };
}

describe('the remembered resolution and IOTLB hit are dropped exactly when the caches change', () => {
  it('a remapped leaf stays invisible until a register-based IOTLB invalidation (IOTLB_REG, IIRG global)', () => {
    const { b, p2, leaf } = ssUnit();
    expect(readMany(b, SID, 0x7000n)).toBe('data 1');
    b.w64(leaf, encodeSsLeaf(BigInt(p2), { read: true, write: false }));
    expect(readMany(b, SID, 0x7000n)).toBe('data 1'); // stale, as the IOTLB is
    const iro = b.hw.caps.iroBytes;
    b.hw.mmio.write64(iro + IOTLB_REG_OFFSET, (1n << 63n) | (1n << 60n)); // IVT, IIRG = 01b (global)
    expect(readMany(b, SID, 0x7000n)).toBe('data 2');
  });

  it('a cleared context entry keeps translating until a register-based global context invalidation (CCMD_REG)', () => {
    const { b } = ssUnit();
    expect(readMany(b, SID, 0x7000n)).toBe('data 1');
    b.context(SID, { present: false });
    expect(readMany(b, SID, 0x7000n)).toBe('data 1');
    b.hw.mmio.write64(CCMD_REG, (1n << 63n) | (1n << 61n)); // ICC, CIRG = 01b (global)
    expect(readMany(b, SID, 0x7000n)).toBe(SM_FAULT.CONTEXT_ENTRY_NOT_PRESENT);
  });

  it('a cleared PASID entry keeps translating until a PASID-cache invalidation, even with the IOTLB warm', () => {
    const { b } = ssUnit();
    b.enableQi();
    expect(readMany(b, SID, 0x7000n)).toBe('data 1');
    b.pasidEntry(SID, 0, { present: false, pgtt: 0, did: 0 });
    expect(readMany(b, SID, 0x7000n)).toBe('data 1');
    b.submit(pasidCacheDescriptor({ granularity: 1, did: 5, pasid: 0 }));
    expect(readMany(b, SID, 0x7000n)).toBe(SM_FAULT.PASID_ENTRY_NOT_PRESENT);
  });

  it('TE off sends the same request untranslated at once; TE on translates it again from the caches', () => {
    const { b, p1 } = ssUnit();
    b.memory.write(0x7000n, bytes(0x77));
    expect(readMany(b, SID, 0x7000n)).toBe('data 1');
    b.hw.mmio.write32(GCMD_REG, 0); // TE = 0
    expect(readMany(b, SID, 0x7000n)).toBe('data 119');
    b.enable();
    expect(readMany(b, SID, 0x7000n)).toBe('data 1');
    expect(p1).not.toBe(0x7000);
  });

  it('an SRTP to a legacy-mode root table forgets the resolution: a PASID request is then 0x31 at once', () => {
    const b = new Bench();
    b.enable();
    b.context(SID);
    const fs = b.alloc();
    b.pasidEntry(SID, 4, { present: true, pgtt: PGTT_FIRST_STAGE, did: 1, fsptptr: BigInt(fs) });
    const page = b.alloc();
    b.memory.write(BigInt(page), bytes(9));
    b.fsMap(fs, 0x10000, page, true);
    expect(readMany(b, SID, 0x10000n, { pasid: 4 })).toBe('data 9');
    b.hw.mmio.write64(RTADDR_REG, BigInt(b.root)); // TTM = 00b (legacy)
    b.hw.mmio.write32(GCMD_REG, (GCMD_SRTP | 0x80000000) >>> 0);
    expect(readMany(b, SID, 0x10000n, { pasid: 4 })).toBe(0x31 /* TTM0_WITH_PASID in the legacy codes too */);
  });

  it('the access kind is part of the remembered hit: a read, then a write to a read-only page, then user vs supervisor', () => {
    const b = new Bench();
    b.enable();
    b.context(SID);
    const fs = b.alloc();
    b.pasidEntry(SID, 7, { present: true, pgtt: PGTT_FIRST_STAGE, did: 1, fsptptr: BigInt(fs), sre: true });
    const page = b.alloc();
    const leaf = b.fsMap(fs, 0x4000_0000, page, false, { user: false });
    const into = new Uint8Array(1);
    const sup = { pasid: 7, priv: true };
    for (let i = 0; i < REPEAT; i++) expect(b.hw.dmaInto(SID, { iova: 0x4000_0000n, size: 1, write: false, ...sup }, into)).toBeUndefined();
    expect(b.hw.dmaInto(SID, { iova: 0x4000_0000n, size: 1, write: false, pasid: 7 }, into)?.code).toBe(SM_FAULT.FS_USER_PRIVILEGE);
    expect(b.hw.dmaInto(SID, { iova: 0x4000_0000n, size: 1, write: false, ...sup }, into)).toBeUndefined();
    // A supervisor write to a read-only page with WPE = 0 is allowed and sets D (a walk, not the remembered read).
    expect(b.r64(leaf) & 0x40n).toBe(0n);
    expect(b.hw.dmaInto(SID, { iova: 0x4000_0000n, size: 0, write: true, data: bytes(3), ...sup }, into)).toBeUndefined();
    expect(b.r64(leaf) & 0x40n).toBe(0x40n);
    expect(b.memory.read(BigInt(page), 1)).toEqual(bytes(3));
    // The leaf made user-accessible without an invalidation: an IOTLB entry that refuses an
    // access is dropped and the tables walked again (a permission fault is never served from
    // a stale entry), so the remembered supervisor hit must not answer the user request.
    b.w64(leaf, encodeFsLeaf(BigInt(page), { writable: false, user: true }));
    expect(b.hw.dmaInto(SID, { iova: 0x4000_0000n, size: 1, write: false, pasid: 7 }, into)).toBeUndefined();
    expect(into[0]).toBe(3);
    const misses = b.hw.stats.iotlbMisses;
    for (let i = 0; i < REPEAT; i++) expect(b.hw.dmaInto(SID, { iova: 0x4000_0000n, size: 1, write: false, pasid: 7 }, into)).toBeUndefined();
    expect(b.hw.stats.iotlbMisses).toBe(misses);
  });

  it('devices and PASIDs alternating each get their own translation', () => {
    const b = new Bench();
    b.enable();
    b.context(SID);
    b.context(SID2);
    const tables = [b.alloc(), b.alloc(), b.alloc()];
    b.pasidEntry(SID, 1, { present: true, pgtt: PGTT_FIRST_STAGE, did: 1, fsptptr: BigInt(tables[0]!) });
    b.pasidEntry(SID, 2, { present: true, pgtt: PGTT_FIRST_STAGE, did: 1, fsptptr: BigInt(tables[1]!) });
    b.pasidEntry(SID2, 1, { present: true, pgtt: PGTT_FIRST_STAGE, did: 2, fsptptr: BigInt(tables[2]!) });
    tables.forEach((t, i) => {
      const page = b.alloc();
      b.memory.write(BigInt(page), bytes(10 + i));
      b.fsMap(t, 0x1000, page, true);
    });
    const into = new Uint8Array(1);
    const order: [number, number, number][] = [
      [SID, 1, 10],
      [SID, 2, 11],
      [SID2, 1, 12],
      [SID, 1, 10],
      [SID2, 1, 12],
      [SID, 2, 11],
    ];
    for (let round = 0; round < 3; round++) {
      for (const [sid, pasid, want] of order) {
        expect(b.hw.dmaInto(sid, { iova: 0x1000n, size: 1, write: false, pasid }, into)).toBeUndefined();
        expect(into[0]).toBe(want);
      }
    }
    // No PASID on SID2: RID_PASID 0 has no entry.
    expect(b.hw.dmaInto(SID2, { iova: 0x1000n, size: 1, write: false }, into)?.code).toBe(SM_FAULT.PASID_ENTRY_NOT_PRESENT);
  });
});
