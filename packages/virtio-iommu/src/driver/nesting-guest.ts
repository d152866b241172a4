/**
 * The guest side of the extension's nesting: a guest vIOMMU driver building an Arm LPAE
 * stage-1 table (4 KiB granule, 4 levels, 48-bit input) in guest memory — the stage-2 input
 * space, i.e. the nest parent's IOVAs — and the `virtio` invalidation entries that make the
 * device drop what it cached.
 */

import type { GuestMemory, GuestStage1, InvalidateEntry, NestingGuest } from '@ioasid/uapi';
import { lpaePageDescriptor, lpaeTableDescriptor } from '../spec/arm-lpae.js';

function word64(w: Uint32Array): bigint {
  return BigInt(w[0]!) | (BigInt(w[1]!) << 32n);
}

/** Builds `arm-lpae-s1` tables for the `virtio_table` nesting format. */
export const virtioNestingGuest: NestingGuest = {
  format: 'virtio_table',
  create(memory: GuestMemory): GuestStage1 {
    const root = memory.alloc();
    const scratch = new Uint32Array(2);
    const leafSlot = (iova: bigint, make: boolean): bigint | undefined => {
      let table = root;
      for (let level = 0; level < 3; level++) {
        const idx = (iova >> BigInt(39 - 9 * level)) & 511n;
        const slot = table + idx * 8n;
        const e = memory.read64(slot);
        if ((e & 1n) === 0n) {
          if (!make) return undefined;
          const next = memory.alloc();
          lpaeTableDescriptor(Number(next), scratch);
          memory.write64(slot, word64(scratch));
          table = next;
        } else table = e & 0xfffffffff000n;
      }
      return table + ((iova >> 12n) & 511n) * 8n;
    };
    return {
      data: { type: 'virtio_table', format: 'arm-lpae-s1', root },
      map(iova: bigint, gpa: bigint, write: boolean): void {
        const slot = leafSlot(iova, true)!; // may use `scratch` for new tables: before the leaf
        lpaePageDescriptor(Number(gpa), write, false, scratch);
        memory.write64(slot, word64(scratch));
      },
      unmap(iova: bigint): void {
        const slot = leafSlot(iova, false);
        if (slot !== undefined) memory.write64(slot, 0n);
      },
      invalidateRange(iova: bigint, length: bigint): InvalidateEntry[] {
        return [{ type: 'virtio', scope: 'va', addr: iova, size: length }];
      },
      invalidateAll(): InvalidateEntry[] {
        return [{ type: 'virtio', scope: 'domain' }];
      },
    };
  },
};
