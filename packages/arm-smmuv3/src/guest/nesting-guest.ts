/**
 * The guest side of SMMUv3 hardware nesting: what a guest's arm-smmu-v3 driver writes for a
 * nested HWPT, in guest-physical memory (the nest parent's IOVA space) — a linear CD table with
 * one CD (SSID 0) over an AArch64 stage-1 table with a 4 KiB granule and a 48-bit input — and
 * the `iommu_hwpt_arm_smmuv3` vSTE words and raw commands that hand it to the host. It builds
 * with the spec codecs only; the hardware model does the walking.
 */

import type { GuestMemory, GuestStage1, InvalidateEntry, NestingGuest } from '@ioasid/uapi';
import { CACHE_WBWA, encodeCd, SH_ISH, TG0_4K } from '../spec/cd.js';
import {
  CMD_CFGI_CD_ALL,
  CMD_TLBI_NH_ASID,
  CMD_TLBI_NH_VA,
  encodeCommand,
  tlbiRange,
  type SmmuCommand,
} from '../spec/commands.js';
import { ARM_LPAE_MAIR, ARM_LPAE_MAIR_ATTR_IDX_CACHE, DESC_TABLE, encodeS1Leaf, encodeTableDesc } from '../spec/pgtable.js';
import { addressSizeEncoding } from '../spec/registers.js';
import { encodeSte, STE_CFG_S1_TRANS, STE_S1FMT_LINEAR } from '../spec/ste.js';

/** Options of {@link smmuV3NestingGuestWith}: what the guest learnt from its vSMMU. */
export interface SmmuV3NestingGuestOptions {
  /** The ASID of the guest's CD (default 1; the host keeps guest ASIDs apart by VMID). */
  readonly asid?: number;
  /** The vSMMU advertises IDR3.RIL: invalidate ranges with range TLBIs (default false). */
  readonly rangeInvalidation?: boolean;
  /**
   * The virtual StreamID of the device the stage 1 is for. When given, `invalidateAll()` also
   * issues CMD_CFGI_CD_ALL for it (a guest that rewrote its CD needs that); without it the CD,
   * written once before the vSTE is installed, is never re-read stale.
   */
  readonly streamId?: number;
}

/** Guest IOVA bits translated by the stage 1 (CD.T0SZ = 64 − 48 = 16: start level 0 with 4K). */
export const GUEST_IAS = 48;
/** Past this many pages, `invalidateRange` invalidates the whole ASID (Linux CMDQ_MAX_TLBI_OPS, 1 << (PAGE_SHIFT − 3)). */
export const GUEST_MAX_TLBI_OPS = 512;

const PAGE = 4096n;
const DESC_ADDR_MASK = 0x0000_ffff_ffff_f000n; // OA[47:12] of a 4K-granule descriptor

function qword(w: Uint32Array): bigint {
  return BigInt(w[0]!) | (BigInt(w[1]!) << 32n);
}

function raw(cmds: readonly SmmuCommand[]): InvalidateEntry[] {
  return cmds.map((c) => ({ type: 'arm_smmuv3', cmd: encodeCommand(c) }));
}

/** Builds guest stage-1 structures for `arm_smmuv3` nesting with the given options. */
export function smmuV3NestingGuestWith(options: SmmuV3NestingGuestOptions = {}): NestingGuest {
  const asid = options.asid ?? 1;
  const ril = options.rangeInvalidation === true;
  return {
    format: 'arm_smmuv3',
    create(memory: GuestMemory): GuestStage1 {
      const root = memory.alloc();
      const cdTable = memory.alloc(); // a linear CD table of one 64-byte CD (S1CDMax = 0)
      // arm_smmu_make_s1_cd: 4K granule, 48-bit input, EPD1 (no TTB1), IPS 48 bits, AArch64,
      // R (record faults), A (abort on fault), ASET (a private ASID), io-pgtable's MAIR.
      const cd = encodeCd({
        T0SZ: 64 - GUEST_IAS, TG0: TG0_4K, IR0: CACHE_WBWA, OR0: CACHE_WBWA, SH0: SH_ISH, EPD1: 1, V: 1,
        IPS: addressSizeEncoding(GUEST_IAS), AA64: 1, R: 1, A: 1, ASET: 1, ASID: asid, TTB0: Number(root), MAIR0: ARM_LPAE_MAIR,
      });
      for (let i = 0; i < cd.length; i++) memory.write64(cdTable + BigInt(i * 8), cd[i]!);
      // The vSTE: only fields upstream's arm_smmu_validate_vste accepts (V, Config, S1Fmt,
      // S1ContextPtr, S1CDMax in qword 0; S1DSS, S1CIR/S1COR/S1CSH in qword 1).
      const ste = encodeSte({
        V: 1, Config: STE_CFG_S1_TRANS, S1Fmt: STE_S1FMT_LINEAR, S1ContextPtr: Number(cdTable), S1CDMax: 0,
        S1CIR: CACHE_WBWA, S1COR: CACHE_WBWA, S1CSH: SH_ISH,
      });
      const desc = new Uint32Array(2);

      /** The level-3 slot of `iova`, allocating tables on the way when `alloc`. */
      const leafSlot = (iova: bigint, alloc: boolean): bigint | undefined => {
        let table = root;
        for (let level = 0; level < 3; level++) {
          const slot = table + ((iova >> BigInt(39 - 9 * level)) & 511n) * 8n;
          const e = memory.read64(slot);
          if ((e & 3n) !== BigInt(DESC_TABLE)) {
            if (!alloc) return undefined;
            const next = memory.alloc();
            memory.write64(slot, qword(encodeTableDesc(Number(next), desc)));
            table = next;
          } else table = e & DESC_ADDR_MASK;
        }
        return table + ((iova >> 12n) & 511n) * 8n;
      };

      const check = (iova: bigint): void => {
        if (iova < 0n || iova >= 1n << BigInt(GUEST_IAS) || iova % PAGE !== 0n) {
          throw new RangeError(`guest IOVA 0x${iova.toString(16)} is not a page of the ${GUEST_IAS}-bit stage-1 input`);
        }
      };

      return {
        data: { type: 'arm_smmuv3', ste: [ste[0]!, ste[1]!] },
        map(iova, gpa, write) {
          check(iova);
          const slot = leafSlot(iova, true)!; // first: it may encode table descriptors into `desc`
          // arm_lpae_prot_to_pte for ARM_64_LPAE_S1: nG, AP[1] (EL0 access: DMA is unprivileged),
          // AP[2] when read-only, AttrIndx cacheable, SH ISH, AF.
          const leaf = encodeS1Leaf(
            { pa: Number(gpa & ~(PAGE - 1n)), page: true, attrIndx: ARM_LPAE_MAIR_ATTR_IDX_CACHE, ap: write ? 0b01 : 0b11, sh: 3, af: true, ng: true },
            desc,
          );
          memory.write64(slot, qword(leaf));
        },
        unmap(iova) {
          check(iova);
          const slot = leafSlot(iova, false);
          if (slot !== undefined) memory.write64(slot, 0n);
        },
        invalidateRange(iova, length) {
          const first = iova & ~(PAGE - 1n);
          const pages = (iova + length - first + PAGE - 1n) / PAGE;
          if (pages > BigInt(GUEST_MAX_TLBI_OPS) || first + pages * PAGE > 1n << BigInt(GUEST_IAS)) {
            return raw([{ op: CMD_TLBI_NH_ASID, asid }]);
          }
          // Only leaf entries ever change (tables are never freed): Leaf = 1.
          return raw(tlbiRange({ op: CMD_TLBI_NH_VA, asid }, Number(first), Number(pages * PAGE), ril, true));
        },
        invalidateAll() {
          const cmds: SmmuCommand[] = [{ op: CMD_TLBI_NH_ASID, asid }];
          if (options.streamId !== undefined) cmds.unshift({ op: CMD_CFGI_CD_ALL, sid: options.streamId });
          return raw(cmds);
        },
      };
    },
  };
}

/**
 * The SMMUv3 guest stage-1 builder for workloads written against the uAPI: ASID 1, one TLBI by
 * VA per page (ASID-wide beyond {@link GUEST_MAX_TLBI_OPS} pages).
 */
export const smmuV3NestingGuest: NestingGuest = smmuV3NestingGuestWith();
