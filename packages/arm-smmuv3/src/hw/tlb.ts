/**
 * The SMMU TLB: translations tagged by VMID and ASID (or global, or stage-2 only), looked up by
 * input address at the leaf size, served until a matching TLBI removes them (IHI0070 §16.2).
 *
 * A set-associative cache in typed arrays, `capacity` entries in sets of {@link TLB_WAYS}; an
 * entry is keyed by its context's id, the leaf size and the input address bits above it (the
 * two 32-bit halves, no BigInt). A context — one (kind, VMID, ASID) tag — is a small object the
 * model keeps a reference to; invalidating a whole context gives it a fresh id, so its old
 * entries stop matching at once (O(1)) and are reused as free ways. Lookups allocate nothing.
 */

/** Stage-1 (or nested combined) entry tagged by ASID. */
export const TLB_KIND_S1 = 0;
/** Stage-1 global entry (nG=0): matches every ASID of the VMID. */
export const TLB_KIND_S1_GLOBAL = 1;
/** Stage-2-only entry keyed by IPA. */
export const TLB_KIND_S2 = 2;

/** Permission bits stored in an entry. */
export const PERM_R_PRIV = 1;
/** Privileged write. */
export const PERM_W_PRIV = 2;
/** Privileged execute. */
export const PERM_X_PRIV = 4;
/** Unprivileged read. */
export const PERM_R_USER = 8;
/** Unprivileged write. */
export const PERM_W_USER = 16;
/** Unprivileged execute. */
export const PERM_X_USER = 32;
/** Writable once hardware sets the dirty state (DBM with HD): a write must re-walk. */
export const PERM_W_DBM = 64;

/** Ways per set. */
export const TLB_WAYS = 4;

const TWO32 = 4294967296;
// Bit 31 of the stored high key word: the entry translates the TTB1 (upper) half.
const REGION_BIT = 0x80000000;

/** The translations of one (kind, VMID, ASID) tag. */
export class TlbContext {
  /** Leaf sizes (log2) present, as a bit mask. */
  shifts = 0;

  /**
   * @param kind - TLB_KIND_*
   * @param vmid - VMID
   * @param asid - ASID (0 for global and stage-2 entries)
   * @param id - current id (entries carry it)
   */
  constructor(
    readonly kind: number,
    readonly vmid: number,
    readonly asid: number,
    public id: number,
  ) {}
}

/** The tag of a TLB context. */
export function tlbTag(kind: number, vmid: number, asid: number): number {
  return kind * TWO32 + vmid * 65536 + asid;
}

function pow2Floor(n: number): number {
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

/** The SMMU TLB. */
export class Tlb {
  private readonly sets: number;
  private readonly setMask: number;
  private readonly ctxOf: Int32Array; // context id, 0 = empty
  private readonly keyLo: Uint32Array; // input address bits [shift+31:shift]
  private readonly keyHi: Uint32Array; // the bits above, | REGION_BIT for TTB1
  private readonly shiftOf: Uint8Array;
  private readonly permsOf: Uint8Array;
  private readonly paLo: Uint32Array;
  private readonly paHi: Uint32Array;
  private readonly victim: Uint8Array; // round-robin way per set
  private readonly ctxs = new Map<number, TlbContext>();
  private nextId = 1;

  /** @param capacity - entries the TLB holds (rounded down to a power of two, at least one set) */
  constructor(readonly capacity: number) {
    this.sets = Math.max(1, pow2Floor(Math.max(1, Math.floor(capacity / TLB_WAYS))));
    this.setMask = this.sets - 1;
    const n = this.sets * TLB_WAYS;
    this.ctxOf = new Int32Array(n);
    this.keyLo = new Uint32Array(n);
    this.keyHi = new Uint32Array(n);
    this.shiftOf = new Uint8Array(n);
    this.permsOf = new Uint8Array(n);
    this.paLo = new Uint32Array(n);
    this.paHi = new Uint32Array(n);
    this.victim = new Uint8Array(this.sets);
  }

  /** Number of cached translations (counts the live entries: for tests, not a hot path). */
  get size(): number {
    const live = new Set<number>();
    for (const c of this.ctxs.values()) live.add(c.id);
    let n = 0;
    for (let i = 0; i < this.ctxOf.length; i++) if (live.has(this.ctxOf[i]!)) n++;
    return n;
  }

  /** The context of a tag (created on first use; always the same object for a tag). */
  context(kind: number, vmid: number, asid: number): TlbContext {
    const tag = tlbTag(kind, vmid, asid);
    let c = this.ctxs.get(tag);
    if (c === undefined) {
      c = new TlbContext(kind, vmid, asid, this.nextId++);
      this.ctxs.set(tag, c);
    }
    return c;
  }

  private set(id: number, shift: number, kLo: number, kHi: number): number {
    return ((Math.imul(kLo ^ Math.imul(kHi, 0x01000193) ^ (id << 8) ^ shift, 0x9e3779b1) >>> 12) & this.setMask) * TLB_WAYS;
  }

  /**
   * Looks up input address `hi:lo` (below 2^52, within the table's range; `region` 1 = TTB1).
   * Returns the entry's index or −1. Read it with {@link pa}, {@link shiftAt}, {@link permsAt}.
   */
  lookup(c: TlbContext, hi: number, lo: number, region: number): number {
    let m = c.shifts;
    const id = c.id;
    while (m !== 0) {
      const bit = m & -m;
      m ^= bit;
      const s = 31 - Math.clz32(bit);
      const kLo = ((lo >>> s) | (hi << (32 - s))) >>> 0;
      const kHi = ((hi >>> s) | (region << 31)) >>> 0;
      const base = this.set(id, s, kLo, kHi);
      for (let i = base; i < base + TLB_WAYS; i++) {
        if (this.ctxOf[i] === id && this.keyLo[i] === kLo && this.keyHi[i] === kHi && this.shiftOf[i] === s) return i;
      }
    }
    return -1;
  }

  /** Output address of entry `i`'s leaf base. */
  pa(i: number): number {
    return this.paHi[i]! * TWO32 + this.paLo[i]!;
  }

  /** log2 of entry `i`'s leaf size. */
  shiftAt(i: number): number {
    return this.shiftOf[i]!;
  }

  /** PERM_* bits of entry `i`. */
  permsAt(i: number): number {
    return this.permsOf[i]!;
  }

  /** Inserts the translation of the leaf of size 2^shift containing `hi:lo`, output `pa`. */
  insert(c: TlbContext, hi: number, lo: number, region: number, shift: number, pa: number, perms: number): void {
    const s = shift;
    const kLo = ((lo >>> s) | (hi << (32 - s))) >>> 0;
    const kHi = ((hi >>> s) | (region << 31)) >>> 0;
    const id = c.id;
    const base = this.set(id, s, kLo, kHi);
    let way = -1;
    for (let i = base; i < base + TLB_WAYS; i++) {
      const o = this.ctxOf[i]!;
      if (o === id && this.keyLo[i] === kLo && this.keyHi[i] === kHi && this.shiftOf[i] === s) {
        way = i; // replace the same translation
        break;
      }
      if (way < 0 && o === 0) way = i; // a free way (stale ones, of dropped ids, go round-robin)
    }
    if (way < 0) {
      const set = base / TLB_WAYS;
      way = base + this.victim[set]!;
      this.victim[set] = (this.victim[set]! + 1) % TLB_WAYS;
    }
    this.ctxOf[way] = id;
    this.keyLo[way] = kLo;
    this.keyHi[way] = kHi;
    this.shiftOf[way] = s;
    this.permsOf[way] = perms;
    this.paLo[way] = pa >>> 0;
    this.paHi[way] = Math.floor(pa / TWO32);
    c.shifts |= 1 << s;
  }

  /** Drops every entry of `c` (it gets a fresh id). A context whose `shifts` is 0 has no entries. */
  private drop(c: TlbContext): void {
    c.id = this.nextId++; // ids are never reused: the old entries can no longer match
    c.shifts = 0;
  }

  /** Removes every entry. */
  invalidateAll(): void {
    // Contexts are kept (the model holds references to them): one per tag ever used.
    for (const c of this.ctxs.values()) if (c.shifts !== 0) this.drop(c);
  }

  /** Removes the contexts `pred` selects. */
  invalidateWhere(pred: (kind: number, vmid: number, asid: number) => boolean): void {
    for (const c of this.ctxs.values()) if (c.shifts !== 0 && pred(c.kind, c.vmid, c.asid)) this.drop(c);
  }

  /**
   * Removes entries of the selected contexts that overlap `[addr, addr + length)`; an address
   * at or above 2^63 (the TTB1 half) removes every TTB1 entry of those contexts.
   */
  invalidateRange(pred: (kind: number, vmid: number, asid: number) => boolean, addr: number, length: number): void {
    const upper = addr >= 2 ** 63;
    const end = addr + length;
    for (const c of this.ctxs.values()) {
      if (c.shifts === 0 || !pred(c.kind, c.vmid, c.asid)) continue;
      let m = c.shifts;
      while (m !== 0) {
        const bit = m & -m;
        m ^= bit;
        const s = 31 - Math.clz32(bit);
        const size = 2 ** s;
        const first = upper ? 0 : Math.floor(addr / size);
        const count = upper ? Infinity : Math.floor((end - 1) / size) - first + 1;
        if (count <= 2 * TLB_WAYS) {
          for (let k = 0; k < count; k++) this.removeAt(c, first * size + k * size, s);
        } else this.scan(c, s, upper, addr, end);
      }
    }
  }

  /** Removes the entry of `c` with leaf size 2^s containing `va` (TTB0 half), if cached. */
  private removeAt(c: TlbContext, va: number, s: number): void {
    const hi = Math.floor(va / TWO32);
    const lo = va >>> 0;
    const kLo = ((lo >>> s) | (hi << (32 - s))) >>> 0;
    const kHi = (hi >>> s) >>> 0;
    const base = this.set(c.id, s, kLo, kHi);
    for (let i = base; i < base + TLB_WAYS; i++) {
      if (this.ctxOf[i] === c.id && this.keyLo[i] === kLo && this.keyHi[i] === kHi && this.shiftOf[i] === s) this.ctxOf[i] = 0;
    }
  }

  /** Removes, by a full scan, the entries of `c` of leaf size 2^s in the range (or every TTB1 one). */
  private scan(c: TlbContext, s: number, upper: boolean, addr: number, end: number): void {
    const id = c.id;
    const size = 2 ** s;
    for (let i = 0; i < this.ctxOf.length; i++) {
      if (this.ctxOf[i] !== id || this.shiftOf[i] !== s) continue;
      const hiWord = this.keyHi[i]!;
      const inUpper = (hiWord & REGION_BIT) !== 0;
      if (upper) {
        if (inUpper) this.ctxOf[i] = 0;
        continue;
      }
      if (inUpper) continue;
      const base = ((hiWord & 0x7fffffff) * TWO32 + this.keyLo[i]!) * size;
      if (base < end && base + size > addr) this.ctxOf[i] = 0;
    }
  }
}
