/**
 * Hostile input through a vIOMMU: a guest's vSMMU driver may hand the VMM any command words, and
 * the VMM passes them to `invalidateHwpt(viommu, …)`. Random and malformed CMDQ commands —
 * every opcode, real and unknown vSIDs, random fields — must each end in a count or an
 * IoasidError (EIO/EINVAL, as arm_vsmmu_cache_invalidate refuses them), never another
 * exception; and they can only drop cached translations: the guest's device still reads what
 * its stage 1 maps, another VM's device still reads its own memory, and frames in use stay put.
 */

import { IOMMU_VIOMMU_TYPE_ARM_SMMUV3, isIoasidError, type InvalidateEntry } from '@ioasid/uapi';
import { ProcessGuestMemory } from '@ioasid/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SMMUV3 } from './backends.js';
import { fcParams } from './config.js';
import { count } from './stats.js';
import { saveStatsAfterAll } from '../test/save-stats.js';

saveStatsAfterAll('hostile-viommu');

const ID = 'arm-smmuv3 (vIOMMU)';
const DEV_A = '0000:00:02.0';
const DEV_B = '0000:00:03.0';
const VSID = 0x42;
const U64 = (1n << 64n) - 1n;
/** IHI0070 §4: command opcodes (bits [7:0] of the first word) a guest may try, valid or not. */
const OPCODES = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x12, 0x13, 0x18, 0x1a, 0x20, 0x21, 0x22, 0x23, 0x28, 0x2a, 0x30, 0x40, 0x41, 0x44, 0x45, 0x46];

function machine() {
  const s = SMMUV3.create([DEV_A, DEV_B]);
  // VM A: a vSMMU over guest RAM, its device with vSID 0x42 on a nested HWPT of the vIOMMU
  const pa = s.createProcess();
  const a = s.open(pa);
  const devA = a.bindDevice(DEV_A);
  const gpaIoas = a.allocIoas();
  const parent = a.allocHwpt(devA, { parent: gpaIoas, flags: { nestParent: true } });
  const gpa = 0x40000000n;
  const ram = pa.mmap(0x400000n);
  a.mapDma(gpaIoas, { iova: gpa, vaddr: ram, length: 0x400000n });
  pa.write(ram, Uint8Array.of(0xa1, 0xa2, 0xa3, 0xa4));
  const stage1 = SMMUV3.guest!.create(new ProcessGuestMemory(pa, ram, gpa, 0x400000n));
  stage1.map(0x10000n, gpa, true);
  const v = a.allocViommu(devA, { type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3, hwpt: parent });
  a.allocVdevice(v, devA, BigInt(VSID));
  a.attach(devA, a.allocHwpt(devA, { parent: v, data: stage1.data }));
  // VM B: a plain device with its own memory
  const pb = s.createProcess();
  const b = s.open(pb);
  const devB = b.bindDevice(DEV_B);
  const ioasB = b.allocIoas();
  const bufB = pb.mmap(0x1000n);
  pb.write(bufB, Uint8Array.of(0xb1, 0xb2, 0xb3, 0xb4));
  b.mapDma(ioasB, { iova: 0x10000n, vaddr: bufB, length: 0x1000n });
  b.attach(devB, ioasB);
  return { s, a, v };
}

const word = fc.bigInt({ min: 0n, max: U64 });
const command = fc
  .tuple(
    fc.oneof(fc.constantFrom(...OPCODES), fc.integer({ min: 0, max: 255 })),
    fc.oneof(fc.constant(VSID), fc.constant(0x10), fc.constant(0x18), fc.integer({ min: 0, max: 0xffffffff })),
    word,
    word,
  )
  .map(([op, sid, w0, w1]): InvalidateEntry => ({
    type: 'arm_smmuv3',
    // opcode in [7:0], StreamID (for CFGI_*/ATC_INV) in [63:32], random bits in between
    cmd: [(BigInt(sid) << 32n) | (w0 & 0xffffff00n) | BigInt(op), w1],
  }));

describe('hostile guest commands through a vIOMMU (arm-smmuv3)', () => {
  it('every batch ends in a count or EIO/EINVAL, and only ever drops cached translations', () => {
    fc.assert(
      fc.property(fc.array(fc.array(command, { minLength: 1, maxLength: 80 }), { minLength: 1, maxLength: 6 }), (batches) => {
        const { s, a, v } = machine();
        const frames = s.memory.framesInUse;
        for (const entries of batches) {
          try {
            const n = a.invalidateHwpt(v, entries);
            expect(Number.isInteger(n) && n >= 0 && n <= entries.length).toBe(true);
          } catch (e) {
            if (!isIoasidError(e)) throw e;
            expect(['EIO', 'EINVAL']).toContain(e.errno);
          }
          count(ID, 'malformed', entries.length);
          const ra = s.device(DEV_A).dma({ iova: 0x10000n, size: 4, write: false });
          expect(ra).toEqual({ ok: true, data: Uint8Array.of(0xa1, 0xa2, 0xa3, 0xa4) });
          const rb = s.device(DEV_B).dma({ iova: 0x10000n, size: 4, write: false });
          expect(rb).toEqual({ ok: true, data: Uint8Array.of(0xb1, 0xb2, 0xb3, 0xb4) });
          expect(s.device(DEV_B).dma({ iova: 0x20000n, size: 4, write: false }).ok).toBe(false);
          expect(s.memory.framesInUse).toBe(frames);
        }
        count(ID, 'sequences');
      }),
      fcParams('hostile vIOMMU commands', 40, 600),
    );
  });
});
