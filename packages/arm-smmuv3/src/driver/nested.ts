/**
 * Upstream's rules for user-owned SMMUv3 state (Linux `arm-smmu-v3-iommufd.c`): which vSTE bits
 * a nested HWPT may carry (`arm_smmu_validate_vste`), and which raw commands a vIOMMU
 * invalidation may pass and how they are rewritten (`arm_vsmmu_convert_user_cmd`). Anything else
 * is EIO ("EIO is reserved for invalid STE data").
 */

import { IoasidError } from '@ioasid/uapi';
import {
  CMD_ATC_INV,
  CMD_CFGI_CD,
  CMD_CFGI_CD_ALL,
  CMD_TLBI_NH_ALL,
  CMD_TLBI_NH_ASID,
  CMD_TLBI_NH_VA,
  CMD_TLBI_NH_VAA,
  CMD_TLBI_NSNH_ALL,
} from '../spec/commands.js';
import { STE_CFG_ABORT, STE_CFG_BYPASS, STE_CFG_S1_TRANS, STE_EATS_ABT, STE_EATS_TRANS } from '../spec/ste.js';

/** vSTE qword 0 bits userspace may set: V | Config | S1Fmt | S1ContextPtr[51:6] | S1CDMax. */
export const STRTAB_STE_0_NESTING_ALLOWED = 0xf80fffffffffffffn;
/** vSTE qword 1 bits: S1DSS | S1CIR | S1COR | S1CSH | S1STALLD | EATS. */
export const STRTAB_STE_1_NESTING_ALLOWED = 0x380000ffn;

/** A validated vSTE. */
export interface ValidVste {
  /** qword 0 (zero when V=0). */
  readonly w0: bigint;
  /** qword 1 with EATS stripped. */
  readonly w1: bigint;
  /** The guest asked for ATS (EATS=1 with Config=S1_TRANS). */
  readonly ats: boolean;
}

/** Validates `struct iommu_hwpt_arm_smmuv3` as arm_smmu_validate_vste does. */
export function validateVste(ste: readonly [bigint, bigint]): ValidVste {
  const w0 = BigInt.asUintN(64, ste[0]);
  const w1 = BigInt.asUintN(64, ste[1]);
  if ((w0 & 1n) === 0n) return { w0: 0n, w1: 0n, ats: false }; // V=0: abort, the guest sees C_BAD_STE
  if ((w0 & ~STRTAB_STE_0_NESTING_ALLOWED) !== 0n) throw new IoasidError('EIO', 'data', 'vSTE qword 0 sets bits the kernel does not accept');
  if ((w1 & ~STRTAB_STE_1_NESTING_ALLOWED) !== 0n) throw new IoasidError('EIO', 'data', 'vSTE qword 1 sets bits the kernel does not accept');
  const cfg = Number((w0 >> 1n) & 7n);
  if (cfg !== STE_CFG_ABORT && cfg !== STE_CFG_BYPASS && cfg !== STE_CFG_S1_TRANS) {
    throw new IoasidError('EIO', 'data', `vSTE Config ${cfg} is not abort, bypass or stage-1 translate`);
  }
  const eats = Number((w1 >> 28n) & 3n);
  if (eats !== STE_EATS_ABT && eats !== STE_EATS_TRANS) throw new IoasidError('EIO', 'data', `vSTE EATS ${eats} is not accepted`);
  return { w0, w1: w1 & ~(3n << 28n), ats: eats === STE_EATS_TRANS && cfg === STE_CFG_S1_TRANS };
}

/**
 * Rewrites one user command for the host queue: TLBI_NSNH_ALL → TLBI_NH_ALL, the VMID of every
 * stage-1 TLBI forced to the vSMMU's, the StreamID of ATC_INV/CFGI_CD/CFGI_CD_ALL translated
 * from the virtual SID. Everything else is EIO.
 */
export function convertUserCommand(
  cmd: readonly [bigint, bigint],
  vmid: number,
  physicalSid: (vsid: number) => number | undefined,
  index: number,
): [bigint, bigint] {
  const q0 = BigInt.asUintN(64, cmd[0]);
  const q1 = BigInt.asUintN(64, cmd[1]);
  const op = Number(q0 & 0xffn);
  const vmidMask = 0xffffn << 32n;
  switch (op) {
    case CMD_TLBI_NSNH_ALL:
      return [BigInt(CMD_TLBI_NH_ALL) | (BigInt(vmid) << 32n), 0n];
    case CMD_TLBI_NH_VA:
    case CMD_TLBI_NH_VAA:
    case CMD_TLBI_NH_ALL:
    case CMD_TLBI_NH_ASID:
      return [(q0 & ~vmidMask) | (BigInt(vmid) << 32n), q1];
    case CMD_ATC_INV:
    case CMD_CFGI_CD:
    case CMD_CFGI_CD_ALL: {
      const vsid = Number(q0 >> 32n);
      const sid = physicalSid(vsid);
      if (sid === undefined) throw new IoasidError('EIO', `entries[${index}]`, `virtual StreamID 0x${vsid.toString(16)} has no device`);
      return [(q0 & 0xffffffffn) | (BigInt(sid) << 32n), q1];
    }
    default:
      throw new IoasidError('EIO', `entries[${index}]`, `command opcode 0x${op.toString(16)} is not accepted from user space`);
  }
}
