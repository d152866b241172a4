/**
 * The guest side of VT-d hardware nesting: what a guest's intel-iommu driver writes for a
 * nested HWPT — an x86-64 4-level first-stage table in guest-physical memory — and the
 * `iommu_hwpt_vtd_s1_invalidate` entries that report its changes.
 */

import { IOMMU_VTD_INV_FLAGS_LEAF, U64_MAX, type GuestMemory, type GuestStage1, type NestingGuest } from '@ioasid/uapi';
import { encodeFsLeaf, encodeFsTable, FS_P } from './spec/first-stage.js';

const ADDR_MASK = 0x000f_ffff_ffff_f000n;

/** Builds VT-d first-stage tables in guest memory (`vtd_s1`, addr_width 48). */
export const vtdNestingGuest: NestingGuest = {
  format: 'vtd_s1',
  create(memory: GuestMemory): GuestStage1 {
    const root = memory.alloc();
    const leafSlot = (iova: bigint, alloc: boolean): bigint | undefined => {
      let table = root;
      for (let level = 4; level > 1; level--) {
        const slot = table + ((iova >> BigInt(12 + 9 * (level - 1))) & 511n) * 8n;
        const e = memory.read64(slot);
        if ((e & BigInt(FS_P)) === 0n) {
          if (!alloc) return undefined;
          const next = memory.alloc();
          memory.write64(slot, encodeFsTable(next));
          table = next;
        } else table = e & ADDR_MASK;
      }
      return table + ((iova >> 12n) & 511n) * 8n;
    };
    return {
      data: { type: 'vtd_s1', flags: 0, pgtblAddr: root, addrWidth: 48 },
      map(iova, gpa, write) {
        memory.write64(leafSlot(iova, true)!, encodeFsLeaf(gpa & ~0xfffn, { writable: write }));
      },
      unmap(iova) {
        const slot = leafSlot(iova, false);
        if (slot !== undefined) memory.write64(slot, 0n);
      },
      invalidateRange(iova, length) {
        const first = iova & ~0xfffn;
        const npages = (iova + length - first + 0xfffn) >> 12n;
        return [{ type: 'vtd_s1', addr: first, npages, flags: IOMMU_VTD_INV_FLAGS_LEAF }];
      },
      invalidateAll() {
        return [{ type: 'vtd_s1', addr: 0n, npages: U64_MAX, flags: 0 }];
      },
    };
  },
};
