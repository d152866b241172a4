/**
 * The SMMU TLB: translations tagged by VMID and ASID (or global, or stage-2 only), looked up by
 * input address at the leaf size, served until a matching TLBI removes them (IHI0070 §16.2).
 * Map-based, bounded by the capacity (oldest entries evicted first); no BigInt on lookups.
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

/** A cached translation. */
export interface TlbEntry {
  /** Output address of the leaf's base. */
  readonly pa: number;
  /** log2 of the leaf size. */
  readonly shift: number;
  /** PERM_* bits. */
  readonly perms: number;
}

interface TlbCtx {
  readonly kind: number;
  readonly vmid: number;
  readonly asid: number;
  readonly entries: Map<number, TlbEntry>;
  readonly shifts: number[];
}

/** The tag of a TLB context. */
export function tlbTag(kind: number, vmid: number, asid: number): number {
  return kind * 4294967296 + vmid * 65536 + asid;
}

function key(vaLow: number, hiRegion: number, shift: number): number {
  return (Math.floor(vaLow / 2 ** shift) * 2 + hiRegion) * 64 + shift;
}

/** The SMMU TLB. */
export class Tlb {
  private readonly ctxs = new Map<number, TlbCtx>();
  private count = 0;

  /** @param capacity - entries the TLB holds */
  constructor(readonly capacity: number) {}

  /** Number of cached translations. */
  get size(): number {
    return this.count;
  }

  /** Looks up `vaLow` (the input address within the table's range; hiRegion 1 = TTB1). */
  lookup(tag: number, vaLow: number, hiRegion: number): TlbEntry | undefined {
    const ctx = this.ctxs.get(tag);
    if (ctx === undefined) return undefined;
    for (const s of ctx.shifts) {
      const e = ctx.entries.get(key(vaLow, hiRegion, s));
      if (e !== undefined) return e;
    }
    return undefined;
  }

  /** Inserts a translation. */
  insert(kind: number, vmid: number, asid: number, vaLow: number, hiRegion: number, entry: TlbEntry): void {
    const tag = tlbTag(kind, vmid, asid);
    let ctx = this.ctxs.get(tag);
    if (ctx === undefined) {
      ctx = { kind, vmid, asid, entries: new Map(), shifts: [] };
      this.ctxs.set(tag, ctx);
    }
    if (!ctx.shifts.includes(entry.shift)) {
      ctx.shifts.push(entry.shift);
      ctx.shifts.sort((a, b) => a - b);
    }
    const k = key(vaLow, hiRegion, entry.shift);
    if (!ctx.entries.has(k)) {
      if (this.count >= this.capacity) this.evictOne();
      this.count++;
    }
    ctx.entries.set(k, entry);
  }

  private evictOne(): void {
    for (const [tag, ctx] of this.ctxs) {
      for (const k of ctx.entries.keys()) {
        ctx.entries.delete(k);
        this.count--;
        if (ctx.entries.size === 0) this.ctxs.delete(tag);
        return;
      }
      this.ctxs.delete(tag);
    }
  }

  private dropCtx(tag: number, ctx: TlbCtx): void {
    this.count -= ctx.entries.size;
    this.ctxs.delete(tag);
  }

  /** Removes every entry. */
  invalidateAll(): void {
    this.ctxs.clear();
    this.count = 0;
  }

  /** Removes the contexts `pred` selects. */
  invalidateWhere(pred: (kind: number, vmid: number, asid: number) => boolean): void {
    for (const [tag, ctx] of [...this.ctxs]) if (pred(ctx.kind, ctx.vmid, ctx.asid)) this.dropCtx(tag, ctx);
  }

  /**
   * Removes entries of the selected contexts that overlap `[addr, addr + length)`; an address
   * at or above 2^63 (the TTB1 half) removes every TTB1 entry of those contexts.
   */
  invalidateRange(
    pred: (kind: number, vmid: number, asid: number) => boolean,
    addr: number,
    length: number,
  ): void {
    const upper = addr >= 2 ** 63;
    const end = addr + length;
    for (const [tag, ctx] of [...this.ctxs]) {
      if (!pred(ctx.kind, ctx.vmid, ctx.asid)) continue;
      for (const [k, e] of [...ctx.entries]) {
        const hiRegion = Math.floor(k / 64) % 2;
        if (upper) {
          if (hiRegion === 1) this.remove(ctx, k);
          continue;
        }
        if (hiRegion === 1) continue;
        const base = Math.floor(k / 128) * 2 ** e.shift;
        if (base < end && base + 2 ** e.shift > addr) this.remove(ctx, k);
      }
      if (ctx.entries.size === 0) this.ctxs.delete(tag);
    }
  }

  private remove(ctx: TlbCtx, k: number): void {
    if (ctx.entries.delete(k)) this.count--;
  }
}
