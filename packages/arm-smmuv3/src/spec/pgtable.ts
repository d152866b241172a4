/**
 * VMSAv8-64 translation table descriptors (Arm ARM D8.3, D8.4) and the table geometry the SMMU
 * derives from TxSZ/TGx/SL0 (IHI0070 §3.4, Arm ARM D8.2). Descriptors are 64 bits, handled as
 * two 32-bit words `[lo, hi]` (hi = bits 63:32).
 */

/** Descriptor bit 0: valid. */
export const DESC_VALID = 1;
/** Descriptor bits [1:0] = 0b11: table (levels 0-2) or page (level 3). */
export const DESC_TABLE = 3;
/** Descriptor bits [1:0] = 0b01: block (levels 1-2). */
export const DESC_BLOCK = 1;

/** Stage-1 lower attributes (low word). */
export const S1_ATTRINDX_SHIFT = 2;
/** AP[1]: EL0 access (stage-1). */
export const S1_AP_UNPRIV = 1 << 6;
/** AP[2]: read-only (stage-1). */
export const S1_AP_RDONLY = 1 << 7;
/** SH [9:8]. */
export const DESC_SH_SHIFT = 8;
/** AF. */
export const DESC_AF = 1 << 10;
/** nG (stage-1): not global, tagged with the ASID. */
export const S1_NG = 1 << 11;
/** Upper attributes (high word, bit - 32). DBM (bit 51). */
export const DESC_HI_DBM = 1 << 19;
/** Contiguous (bit 52). */
export const DESC_HI_CONT = 1 << 20;
/** PXN (bit 53) / stage-2 XN[0]. */
export const DESC_HI_PXN = 1 << 21;
/** UXN/XN (bit 54) / stage-2 XN[1]. */
export const DESC_HI_UXN = 1 << 22;
/** Table descriptor PXNTable (bit 59). */
export const TABLE_HI_PXNTABLE = 1 << 27;
/** Table descriptor UXNTable/XNTable (bit 60). */
export const TABLE_HI_XNTABLE = 1 << 28;
/** Table descriptor APTable[0] (bit 61): no EL0 access below. */
export const TABLE_HI_APTABLE0 = 1 << 29;
/** Table descriptor APTable[1] (bit 62): no write access below. */
export const TABLE_HI_APTABLE1 = 1 << 30;

/** Stage-2 MemAttr [5:2]. */
export const S2_MEMATTR_SHIFT = 2;
/** S2AP[0] (bit 6): read. */
export const S2_AP_READ = 1 << 6;
/** S2AP[1] (bit 7): write. */
export const S2_AP_WRITE = 1 << 7;
/** Stage-2 MemAttr Normal outer/inner write-back (io-pgtable ARM_LPAE_PTE_MEMATTR_OIWB). */
export const S2_MEMATTR_OIWB = 0xf;

/** io-pgtable-arm stage-1 MAIR: idx0 NC 0x44, idx1 WBRWA 0xFF, idx2 Device-nGnRE 0x04, idx3 0xF4. */
export const ARM_LPAE_MAIR = 0xf404ff44;
/** io-pgtable-arm stage-1 AttrIndx of cacheable memory (IOMMU_CACHE). */
export const ARM_LPAE_MAIR_ATTR_IDX_CACHE = 1;

/** Address of a table descriptor's next level (NLTA), or a leaf's output, bits [47:shift]. */
export function descAddr(lo: number, hi: number, shift: number): number {
  const loPart = shift >= 32 ? 0 : ((lo >>> shift) << shift) >>> 0;
  const hiPart = hi & 0xffff;
  const hiMasked = shift > 32 ? hiPart & ~((1 << (shift - 32)) - 1) : hiPart;
  return hiMasked * 4294967296 + loPart;
}

/** Writes the address bits [47:12] of `pa` into a descriptor's words (other bits untouched). */
export function setDescAddr(out: Uint32Array, pa: number): void {
  out[0] = ((out[0]! & 0xfff) | ((pa % 4294967296) & 0xfffff000)) >>> 0;
  out[1] = ((out[1]! & 0xffff0000) | (Math.floor(pa / 4294967296) & 0xffff)) >>> 0;
}

/** Stage-1 leaf fields. */
export interface S1LeafFields {
  /** Output address (aligned to the leaf size). */
  readonly pa: number;
  /** True for a level-3 page (0b11), false for a block (0b01). */
  readonly page: boolean;
  /** AttrIndx [4:2]. */
  readonly attrIndx?: number;
  /** AP[2:1] as a 2-bit number (AP[2] = bit 1). */
  readonly ap?: number;
  /** SH [9:8]. */
  readonly sh?: number;
  /** AF. */
  readonly af?: boolean;
  /** nG. */
  readonly ng?: boolean;
  /** DBM. */
  readonly dbm?: boolean;
  /** PXN. */
  readonly pxn?: boolean;
  /** UXN. */
  readonly uxn?: boolean;
}

/** Encodes a stage-1 block or page descriptor into `[lo, hi]`. */
export function encodeS1Leaf(f: S1LeafFields, out: Uint32Array = new Uint32Array(2)): Uint32Array {
  out[0] = 0;
  out[1] = 0;
  setDescAddr(out, f.pa);
  let lo = out[0] | (f.page ? DESC_TABLE : DESC_BLOCK);
  lo |= ((f.attrIndx ?? 0) & 7) << S1_ATTRINDX_SHIFT;
  lo |= ((f.ap ?? 0) & 3) << 6;
  lo |= ((f.sh ?? 0) & 3) << DESC_SH_SHIFT;
  if (f.af === true) lo |= DESC_AF;
  if (f.ng === true) lo |= S1_NG;
  let hi = out[1];
  if (f.dbm === true) hi |= DESC_HI_DBM;
  if (f.pxn === true) hi |= DESC_HI_PXN;
  if (f.uxn === true) hi |= DESC_HI_UXN;
  out[0] = lo >>> 0;
  out[1] = hi >>> 0;
  return out;
}

/** Stage-2 leaf fields. */
export interface S2LeafFields {
  /** Output address. */
  readonly pa: number;
  /** Page (level 3) or block. */
  readonly page: boolean;
  /** MemAttr [5:2]. */
  readonly memAttr?: number;
  /** S2AP [7:6]: bit 0 read, bit 1 write. */
  readonly s2ap?: number;
  /** SH. */
  readonly sh?: number;
  /** AF. */
  readonly af?: boolean;
  /** DBM. */
  readonly dbm?: boolean;
  /** XN [54:53]. */
  readonly xn?: number;
}

/** Encodes a stage-2 block or page descriptor into `[lo, hi]`. */
export function encodeS2Leaf(f: S2LeafFields, out: Uint32Array = new Uint32Array(2)): Uint32Array {
  out[0] = 0;
  out[1] = 0;
  setDescAddr(out, f.pa);
  let lo = out[0] | (f.page ? DESC_TABLE : DESC_BLOCK);
  lo |= ((f.memAttr ?? 0) & 0xf) << S2_MEMATTR_SHIFT;
  lo |= ((f.s2ap ?? 0) & 3) << 6;
  lo |= ((f.sh ?? 0) & 3) << DESC_SH_SHIFT;
  if (f.af === true) lo |= DESC_AF;
  let hi = out[1];
  if (f.dbm === true) hi |= DESC_HI_DBM;
  hi |= ((f.xn ?? 0) & 3) << 21;
  out[0] = lo >>> 0;
  out[1] = hi >>> 0;
  return out;
}

/** Encodes a table descriptor pointing at `pa` into `[lo, hi]`. */
export function encodeTableDesc(pa: number, out: Uint32Array = new Uint32Array(2)): Uint32Array {
  out[0] = 0;
  out[1] = 0;
  setDescAddr(out, pa);
  out[0] = (out[0] | DESC_TABLE) >>> 0;
  return out;
}

/** Granule size shift from CD.TG0 (0 4K, 1 64K, 2 16K; 3 reserved → -1). */
export function tg0Shift(tg0: number): number {
  return tg0 === 0 ? 12 : tg0 === 1 ? 16 : tg0 === 2 ? 14 : -1;
}

/** Granule size shift from CD.TG1 (1 16K, 2 4K, 3 64K; 0 reserved → -1). */
export function tg1Shift(tg1: number): number {
  return tg1 === 1 ? 14 : tg1 === 2 ? 12 : tg1 === 3 ? 16 : -1;
}

/** Granule size shift from STE.S2TG (0 4K, 1 64K, 2 16K; 3 reserved → -1). */
export function s2tgShift(tg: number): number {
  return tg0Shift(tg);
}

/** Address bits resolved per level: granule shift − 3. */
export function levelStride(granuleShift: number): number {
  return granuleShift - 3;
}

/** The input address bit at which level `level`'s index starts. */
export function levelShift(granuleShift: number, level: number): number {
  return granuleShift + (3 - level) * (granuleShift - 3);
}

/** Stage-1 start level for an input size of `inputBits` (Arm ARM: from TxSZ). */
export function s1StartLevel(inputBits: number, granuleShift: number): number {
  const stride = granuleShift - 3;
  return 4 - Math.ceil((inputBits - granuleShift) / stride);
}

/** Stage-2 start level from S2SL0 (VTCR_EL2.SL0 encoding), or -1 when reserved. */
export function s2StartLevel(sl0: number, granuleShift: number): number {
  if (granuleShift === 12) return sl0 === 0 ? 2 : sl0 === 1 ? 1 : sl0 === 2 ? 0 : -1;
  return sl0 === 0 ? 3 : sl0 === 1 ? 2 : sl0 === 2 ? 1 : -1;
}

/** The S2SL0 encoding of a stage-2 start level (Linux: `sl = start_level (+1 for 4K); SL0 = ~sl & 3`). */
export function s2Sl0(startLevel: number, granuleShift: number): number {
  const sl = granuleShift === 12 ? startLevel + 1 : startLevel;
  return ~sl & 3;
}

/** Leaf levels at which a block descriptor is allowed without DS/LPA (4K: 1, 2; 16K/64K: 2). */
export function blockAllowed(granuleShift: number, level: number): boolean {
  if (granuleShift === 12) return level === 1 || level === 2;
  return level === 2;
}

/** SH [9:8] = 0b11 (inner shareable), in place. */
export const SH_ISH_BITS = 3 << 8;
