/**
 * SMMUv3 register file: offsets (IHI0070 §6.3, Linux `arm-smmu-v3.h`) and field layouts.
 * Page 0 at 0x00000, page 1 (EVENTQ/PRIQ PROD/CONS) at 0x10000.
 */

/** Feature register 0. */
export const SMMU_IDR0 = 0x000;
/** Feature register 1 (queue and table sizes). */
export const SMMU_IDR1 = 0x004;
/** Feature register 2. */
export const SMMU_IDR2 = 0x008;
/** Feature register 3. */
export const SMMU_IDR3 = 0x00c;
/** Feature register 4 (IMPLEMENTATION DEFINED). */
export const SMMU_IDR4 = 0x010;
/** Feature register 5 (OAS, granules). */
export const SMMU_IDR5 = 0x014;
/** Implementation identification. */
export const SMMU_IIDR = 0x018;
/** Architecture version. */
export const SMMU_AIDR = 0x01c;
/** Global control register 0. */
export const SMMU_CR0 = 0x020;
/** Acknowledges every write to CR0. */
export const SMMU_CR0ACK = 0x024;
/** Table and queue memory attributes. */
export const SMMU_CR1 = 0x028;
/** E2H, RECINVSID, PTM. */
export const SMMU_CR2 = 0x02c;
/** Status. */
export const SMMU_STATUSR = 0x040;
/** Global bypass attributes. */
export const SMMU_GBPA = 0x044;
/** Alternative global bypass attributes. */
export const SMMU_AGBPA = 0x048;
/** Interrupt enables. */
export const SMMU_IRQ_CTRL = 0x050;
/** Acknowledges IRQ_CTRL. */
export const SMMU_IRQ_CTRLACK = 0x054;
/** Global errors (toggle against GERRORN). */
export const SMMU_GERROR = 0x060;
/** Global error acknowledge. */
export const SMMU_GERRORN = 0x064;
/** GERROR MSI address (64-bit). */
export const SMMU_GERROR_IRQ_CFG0 = 0x068;
/** GERROR MSI data. */
export const SMMU_GERROR_IRQ_CFG1 = 0x070;
/** GERROR MSI attributes. */
export const SMMU_GERROR_IRQ_CFG2 = 0x074;
/** Stream table base (64-bit). */
export const SMMU_STRTAB_BASE = 0x080;
/** Stream table format and size. */
export const SMMU_STRTAB_BASE_CFG = 0x088;
/** Command queue base (64-bit). */
export const SMMU_CMDQ_BASE = 0x090;
/** Command queue producer index. */
export const SMMU_CMDQ_PROD = 0x098;
/** Command queue consumer index (and ERR). */
export const SMMU_CMDQ_CONS = 0x09c;
/** Event queue base (64-bit). */
export const SMMU_EVENTQ_BASE = 0x0a0;
/** Event queue MSI address (64-bit). */
export const SMMU_EVENTQ_IRQ_CFG0 = 0x0b0;
/** Event queue MSI data. */
export const SMMU_EVENTQ_IRQ_CFG1 = 0x0b8;
/** Event queue MSI attributes. */
export const SMMU_EVENTQ_IRQ_CFG2 = 0x0bc;
/** PRI queue base (64-bit). */
export const SMMU_PRIQ_BASE = 0x0c0;
/** PRI queue MSI address (64-bit). */
export const SMMU_PRIQ_IRQ_CFG0 = 0x0d0;
/** PRI queue MSI data. */
export const SMMU_PRIQ_IRQ_CFG1 = 0x0d8;
/** PRI queue MSI attributes. */
export const SMMU_PRIQ_IRQ_CFG2 = 0x0dc;
/** Event queue producer index (page 1). */
export const SMMU_EVENTQ_PROD = 0x100a8;
/** Event queue consumer index (page 1). */
export const SMMU_EVENTQ_CONS = 0x100ac;
/** PRI queue producer index (page 1). */
export const SMMU_PRIQ_PROD = 0x100c8;
/** PRI queue consumer index (page 1). */
export const SMMU_PRIQ_CONS = 0x100cc;

/** A register field: `[lsb, width]` within a 32-bit register. */
export type RegField = readonly [lsb: number, width: number];

/** Reads a register field. */
export function regField(value: number, f: RegField): number {
  const [lsb, width] = f;
  return ((value >>> lsb) & (width >= 32 ? 0xffffffff : (1 << width) - 1)) >>> 0;
}

/** Builds a register value from fields. */
export function regValue(fields: readonly (readonly [RegField, number])[]): number {
  let v = 0;
  for (const [[lsb, width], x] of fields) v |= (x & (width >= 32 ? 0xffffffff : (1 << width) - 1)) << lsb;
  return v >>> 0;
}

/** IDR0 fields. */
export const IDR0 = {
  S2P: [0, 1],
  S1P: [1, 1],
  TTF: [2, 2],
  COHACC: [4, 1],
  BTM: [5, 1],
  HTTU: [6, 2],
  DORMHINT: [8, 1],
  HYP: [9, 1],
  ATS: [10, 1],
  NS1ATS: [11, 1],
  ASID16: [12, 1],
  MSI: [13, 1],
  SEV: [14, 1],
  ATOS: [15, 1],
  PRI: [16, 1],
  VMW: [17, 1],
  VMID16: [18, 1],
  CD2L: [19, 1],
  VATOS: [20, 1],
  TTENDIAN: [21, 2],
  ATSRECERR: [23, 1],
  STALL_MODEL: [24, 2],
  TERM_MODEL: [26, 1],
  ST_LEVEL: [27, 2],
  RME_IMPL: [30, 1],
} as const satisfies Record<string, RegField>;

/** IDR0.TTF: AArch64 translation tables only. */
export const IDR0_TTF_AARCH64 = 2;
/** IDR0.TTENDIAN: little-endian only. */
export const IDR0_TTENDIAN_LE = 2;
/** IDR0.STALL_MODEL: stall and terminate both supported. */
export const IDR0_STALL_MODEL_STALL = 0;
/** IDR0.STALL_MODEL: stall not supported. */
export const IDR0_STALL_MODEL_NO_STALL = 1;
/** IDR0.STALL_MODEL: stall forced. */
export const IDR0_STALL_MODEL_FORCE = 2;
/** IDR0.HTTU: access flag and dirty state updates. */
export const IDR0_HTTU_ACCESS_DIRTY = 2;

/** IDR1 fields. */
export const IDR1 = {
  SIDSIZE: [0, 6],
  SSIDSIZE: [6, 5],
  PRIQS: [11, 5],
  EVENTQS: [16, 5],
  CMDQS: [21, 5],
  ATTR_PERMS_OVR: [26, 1],
  ATTR_TYPES_OVR: [27, 1],
  REL: [28, 1],
  QUEUES_PRESET: [29, 1],
  TABLES_PRESET: [30, 1],
  ECMDQ: [31, 1],
} as const satisfies Record<string, RegField>;

/** IDR3 fields. */
export const IDR3 = {
  HAD: [2, 1],
  PBHA: [3, 1],
  XNX: [4, 1],
  PPS: [5, 1],
  MPAM: [7, 1],
  FWB: [8, 1],
  STT: [9, 1],
  RIL: [10, 1],
  BBML: [11, 2],
  E0PD: [13, 1],
  PTWNNC: [14, 1],
  DPT: [15, 1],
} as const satisfies Record<string, RegField>;

/** IDR5 fields. */
export const IDR5 = {
  OAS: [0, 3],
  GRAN4K: [4, 1],
  GRAN16K: [5, 1],
  GRAN64K: [6, 1],
  VAX: [10, 2],
  STALL_MAX: [16, 16],
} as const satisfies Record<string, RegField>;

/** Address size encodings (IDR5.OAS, CD.IPS, STE.S2PS) → bits. */
export const ADDRESS_SIZE_BITS: readonly number[] = [32, 36, 40, 42, 44, 48, 52, 56];

/** The bits of an OAS/IPS/PS encoding (values above 6 are treated as 52 on v3.0-v3.3 parts). */
export function addressSizeBits(encoding: number): number {
  return ADDRESS_SIZE_BITS[Math.min(encoding & 7, 6)]!;
}

/** The OAS/IPS/PS encoding for a number of address bits (the largest not above it). */
export function addressSizeEncoding(bits: number): number {
  let enc = 0;
  for (let i = 0; i <= 6; i++) if (ADDRESS_SIZE_BITS[i]! <= bits) enc = i;
  return enc;
}

/** CR0 bits. */
export const CR0_SMMUEN = 1 << 0;
/** PRI queue enable. */
export const CR0_PRIQEN = 1 << 1;
/** Event queue enable. */
export const CR0_EVENTQEN = 1 << 2;
/** Command queue enable. */
export const CR0_CMDQEN = 1 << 3;
/** ATS check. */
export const CR0_ATSCHK = 1 << 4;
/** CR0 bits that are not RES0: SMMUEN, PRIQEN, EVENTQEN, CMDQEN, ATSCHK, VMW[8:6], DPT_WALK_EN[10]. */
export const CR0_WRITABLE = 0x5df;

/** CR1 fields. */
export const CR1 = {
  QUEUE_IC: [0, 2],
  QUEUE_OC: [2, 2],
  QUEUE_SH: [4, 2],
  TABLE_IC: [6, 2],
  TABLE_OC: [8, 2],
  TABLE_SH: [10, 2],
} as const satisfies Record<string, RegField>;

/** CR2 bits. */
export const CR2_E2H = 1 << 0;
/** Record C_BAD_STREAMID for out-of-range StreamIDs. */
export const CR2_RECINVSID = 1 << 1;
/** Private TLB maintenance. */
export const CR2_PTM = 1 << 2;

/** GBPA fields. */
export const GBPA = {
  MEMATTR: [0, 4],
  MTCFG: [4, 1],
  ALLOCCFG: [8, 4],
  SHCFG: [12, 2],
  PRIVCFG: [16, 2],
  INSTCFG: [18, 2],
  ABORT: [20, 1],
  UPDATE: [31, 1],
} as const satisfies Record<string, RegField>;
/** GBPA.ABORT. */
export const GBPA_ABORT = 1 << 20;
/** GBPA.Update. */
export const GBPA_UPDATE = 0x80000000;

/** IRQ_CTRL bits. */
export const IRQ_CTRL_GERROR_IRQEN = 1 << 0;
/** PRI queue interrupt enable. */
export const IRQ_CTRL_PRIQ_IRQEN = 1 << 1;
/** Event queue interrupt enable. */
export const IRQ_CTRL_EVENTQ_IRQEN = 1 << 2;

/** GERROR bits. */
export const GERROR_CMDQ_ERR = 1 << 0;
/** Event queue external abort. */
export const GERROR_EVTQ_ABT_ERR = 1 << 2;
/** PRI queue external abort. */
export const GERROR_PRIQ_ABT_ERR = 1 << 3;
/** Service failure mode. */
export const GERROR_SFM_ERR = 1 << 8;
/** GERROR bits Linux handles. */
export const GERROR_ERR_MASK = 0x1fd;

/** STRTAB_BASE: read-allocate hint (bit 62). */
export const STRTAB_BASE_RA = 1n << 62n;
/** STRTAB_BASE.ADDR bits [51:6]. */
export const STRTAB_BASE_ADDR_MASK = ((1n << 52n) - 1n) & ~0x3fn;
/** STRTAB_BASE_CFG fields. */
export const STRTAB_BASE_CFG = {
  LOG2SIZE: [0, 6],
  SPLIT: [6, 5],
  FMT: [16, 2],
} as const satisfies Record<string, RegField>;
/** STRTAB_BASE_CFG.FMT linear. */
export const STRTAB_BASE_CFG_FMT_LINEAR = 0;
/** STRTAB_BASE_CFG.FMT 2-level. */
export const STRTAB_BASE_CFG_FMT_2LVL = 1;

/** Queue base registers: WA/RA hint bit 62, ADDR [51:5], LOG2SIZE [4:0]. */
export const Q_BASE_RWA = 1n << 62n;
/** Queue base address mask, bits [51:5]. */
export const Q_BASE_ADDR_MASK = ((1n << 52n) - 1n) & ~0x1fn;
/** Queue LOG2SIZE mask. */
export const Q_BASE_LOG2SIZE_MASK = 0x1f;
/** PROD/CONS overflow flag (EVENTQ/PRIQ PROD.OVFLG, CONS.OVACKFLG). */
export const Q_OVF = 0x80000000;
/** CMDQ_CONS.ERR field. */
export const CMDQ_CONS_ERR: RegField = [24, 7];
/** CMDQ error: none. */
export const CERROR_NONE = 0x00;
/** CMDQ error: illegal command. */
export const CERROR_ILL = 0x01;
/** CMDQ error: abort on command fetch. */
export const CERROR_ABT = 0x02;
/** CMDQ error: ATC invalidation timeout. */
export const CERROR_ATC_INV_SYNC = 0x03;
