/**
 * The configuration caches (IHI0070 §16.2): decoded STEs by StreamID and decoded CDs by
 * (StreamID, SubstreamID), each a direct-mapped array of `capacity` entries (a power of two)
 * with tags in typed arrays. Emptying a whole cache bumps a generation number (O(1)), and the
 * CDs of one StreamID (CMD_CFGI_CD_ALL, CMD_CFGI_STE) go by bumping that StreamID's epoch.
 * Lookups allocate nothing.
 */

import type { ContextConfig, StreamConfig } from './config.js';

function pow2Floor(n: number): number {
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

/** Decoded STEs by StreamID. */
export class SteCache {
  private readonly mask: number;
  private readonly sids: Uint32Array;
  private readonly gens: Uint32Array;
  private readonly vals: (StreamConfig | undefined)[];
  private gen = 1;

  /** @param capacity - entries (rounded down to a power of two) */
  constructor(capacity: number) {
    const n = pow2Floor(Math.max(1, capacity));
    this.mask = n - 1;
    this.sids = new Uint32Array(n);
    this.gens = new Uint32Array(n);
    this.vals = new Array<StreamConfig | undefined>(n).fill(undefined);
  }

  /** The cached STE of `sid`. */
  get(sid: number): StreamConfig | undefined {
    const i = sid & this.mask;
    return this.gens[i] === this.gen && this.sids[i] === sid ? this.vals[i] : undefined;
  }

  /** Caches `sc` for `sid` (evicting whatever shared its slot). */
  set(sid: number, sc: StreamConfig): void {
    const i = sid & this.mask;
    this.sids[i] = sid;
    this.gens[i] = this.gen;
    this.vals[i] = sc;
  }

  /** Forgets `sid`. */
  delete(sid: number): void {
    const i = sid & this.mask;
    if (this.sids[i] === sid) this.gens[i] = 0;
  }

  /** Forgets every StreamID in `[first, first + span)`. */
  deleteRange(first: number, span: number): void {
    for (let i = 0; i <= this.mask; i++) {
      const sid = this.sids[i]!;
      if (sid >= first && sid - first < span) this.gens[i] = 0;
    }
  }

  /** Forgets everything. */
  clear(): void {
    if (this.gen === 0xffffffff) {
      this.gens.fill(0);
      this.gen = 0;
    }
    this.gen++;
  }

  /** Entries held (a scan: for tests). */
  get size(): number {
    let n = 0;
    for (let i = 0; i <= this.mask; i++) if (this.gens[i] === this.gen) n++;
    return n;
  }
}

/** Decoded CDs by (StreamID, SubstreamID). */
export class CdCache {
  private readonly mask: number;
  private readonly sids: Uint32Array;
  private readonly ssids: Uint32Array;
  private readonly gens: Uint32Array;
  private readonly epochs: Uint32Array;
  private readonly vals: (ContextConfig | undefined)[];
  /** Per StreamID (low 16 bits; sharing one only invalidates more): bumped to drop its CDs. */
  private readonly sidEpoch = new Uint32Array(65536);
  private gen = 1;

  /** @param capacity - entries (rounded down to a power of two) */
  constructor(capacity: number) {
    const n = pow2Floor(Math.max(1, capacity));
    this.mask = n - 1;
    this.sids = new Uint32Array(n);
    this.ssids = new Uint32Array(n);
    this.gens = new Uint32Array(n);
    this.epochs = new Uint32Array(n);
    this.vals = new Array<ContextConfig | undefined>(n).fill(undefined);
  }

  private slot(sid: number, ssid: number): number {
    return (Math.imul(ssid ^ Math.imul(sid, 0x01000193), 0x9e3779b1) >>> 12) & this.mask;
  }

  /** The cached CD of (`sid`, `ssid`). */
  get(sid: number, ssid: number): ContextConfig | undefined {
    const i = this.slot(sid, ssid);
    return this.gens[i] === this.gen && this.sids[i] === sid && this.ssids[i] === ssid && this.epochs[i] === this.sidEpoch[sid & 0xffff]
      ? this.vals[i]
      : undefined;
  }

  /** Caches `cc` for (`sid`, `ssid`). */
  set(sid: number, ssid: number, cc: ContextConfig): void {
    const i = this.slot(sid, ssid);
    this.sids[i] = sid;
    this.ssids[i] = ssid;
    this.gens[i] = this.gen;
    this.epochs[i] = this.sidEpoch[sid & 0xffff]!;
    this.vals[i] = cc;
  }

  /** Forgets (`sid`, `ssid`). */
  delete(sid: number, ssid: number): void {
    const i = this.slot(sid, ssid);
    if (this.sids[i] === sid && this.ssids[i] === ssid) this.gens[i] = 0;
  }

  /** Forgets every CD of `sid`. */
  deleteSid(sid: number): void {
    this.sidEpoch[sid & 0xffff] = (this.sidEpoch[sid & 0xffff]! + 1) >>> 0;
  }

  /** Forgets everything. */
  clear(): void {
    if (this.gen === 0xffffffff) {
      this.gens.fill(0);
      this.gen = 0;
    }
    this.gen++;
  }

  /** Entries held (a scan: for tests). */
  get size(): number {
    let n = 0;
    for (let i = 0; i <= this.mask; i++) {
      if (this.gens[i] === this.gen && this.epochs[i] === this.sidEpoch[this.sids[i]! & 0xffff]) n++;
    }
    return n;
  }
}
