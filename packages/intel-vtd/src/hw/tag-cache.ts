/**
 * A tagged translation cache in typed arrays: the storage of the IOTLB and of the
 * paging-structure cache. An entry is keyed by a cache tag (DID + PASID tag, see tags.ts), a
 * page-size index and the first 4 KiB page number of the size-aligned block it covers, and
 * holds a number (an address) and a few permission bits.
 *
 * Why this shape: a translation hit is the hottest path of the model, so it must not allocate
 * (no entry objects, no BigInt) nor hash through a `Map` (≈ 30 ns against ≈ 13 ns for a
 * typed-array probe, anchors §A.3). The table is open-addressed with linear probing at a load
 * of at most one half, so a probe usually touches one slot. A slot is live only while its
 * generation equals the cache's, which makes the global flush O(1) (Emilio Cota's point about
 * big software TLBs: flushing must not cost a memset of the whole table). Holding `capacity`
 * entries, the next insertion drops everything, as QEMU's VT-d model does with its hash.
 */

import { tagDid, tagPasid } from './tags.js';

/** The tagged cache. */
export class TagCache {
  /** Slot mask (slots are a power of two, at least twice the capacity). */
  private readonly mask: number;
  /** 32 − log2(slots): the hash's top bits pick the slot. */
  private readonly shift: number;
  /** Generation a slot was written in; live iff equal to {@link gen}. */
  private readonly gens: Uint32Array;
  private readonly tags: Float64Array;
  private readonly keys: Float64Array;
  private readonly sizes: Uint8Array;
  private readonly values: Float64Array;
  private readonly bits: Uint8Array;
  private gen = 1;
  private count = 0;
  /** Value of the entry found by the last successful {@link find}. */
  value = 0;
  /** Permission bits of the entry found by the last successful {@link find}. */
  perm = 0;

  /** @param capacity - entries held before the next insertion drops everything */
  constructor(readonly capacity: number) {
    let slots = 16;
    let bits = 4;
    while (slots < capacity * 2) {
      slots *= 2;
      bits++;
    }
    this.mask = slots - 1;
    this.shift = 32 - bits;
    this.gens = new Uint32Array(slots);
    this.tags = new Float64Array(slots);
    this.keys = new Float64Array(slots);
    this.sizes = new Uint8Array(slots);
    this.values = new Float64Array(slots);
    this.bits = new Uint8Array(slots);
  }

  /** Entries held. */
  get size(): number {
    return this.count;
  }

  /**
   * The home slot: a multiplicative (Fibonacci) hash of the low 32 bits of the key and tag
   * and the size. Entries that differ only in higher bits share a probe run, which costs a
   * probe, never a wrong hit (slots compare the whole key and tag).
   */
  private home(tag: number, key: number, size: number): number {
    return Math.imul((key >>> 0) ^ Math.imul((tag >>> 0) + size, 0x85ebca6b), 0x9e3779b1) >>> this.shift;
  }

  /** The slot of (tag, size, key), or −1. */
  private slotOf(tag: number, key: number, size: number): number {
    const gen = this.gen;
    const gens = this.gens;
    const mask = this.mask;
    for (let i = this.home(tag, key, size); gens[i] === gen; i = (i + 1) & mask) {
      if (this.keys[i] === key && this.tags[i] === tag && this.sizes[i] === size) return i;
    }
    return -1;
  }

  /**
   * Looks up (tag, size, key); on a hit leaves the entry in {@link value} / {@link perm} and
   * returns true. Allocates nothing.
   */
  find(tag: number, key: number, size: number): boolean {
    if (this.count === 0) return false; // emptied (a flush after a global invalidation): nothing to probe
    const i = this.slotOf(tag, key, size);
    if (i < 0) return false;
    this.value = this.values[i]!;
    this.perm = this.bits[i]!;
    return true;
  }

  /** Caches (tag, size, key) → (value, perm), replacing an entry with the same key. */
  insert(tag: number, key: number, size: number, value: number, perm: number): void {
    const gens = this.gens;
    const mask = this.mask;
    // One probe run: the entry with this key, or the free slot that ends the run.
    let i = this.home(tag, key, size);
    for (; gens[i] === this.gen; i = (i + 1) & mask) {
      if (this.keys[i] === key && this.tags[i] === tag && this.sizes[i] === size) {
        this.values[i] = value;
        this.bits[i] = perm;
        return;
      }
    }
    if (this.count >= this.capacity) {
      this.clear();
      i = this.home(tag, key, size);
    }
    gens[i] = this.gen;
    this.tags[i] = tag;
    this.keys[i] = key;
    this.sizes[i] = size;
    this.values[i] = value;
    this.bits[i] = perm;
    this.count++;
  }

  /** Drops (tag, size, key) if cached. */
  remove(tag: number, key: number, size: number): void {
    const i = this.slotOf(tag, key, size);
    if (i >= 0) this.removeSlot(i);
  }

  /** Backward-shift deletion: later entries of the probe run move up so no run is broken. */
  private removeSlot(hole: number): void {
    const gens = this.gens;
    const gen = this.gen;
    const mask = this.mask;
    let i = hole;
    for (let j = (i + 1) & mask; gens[j] === gen; j = (j + 1) & mask) {
      const k = this.home(this.tags[j]!, this.keys[j]!, this.sizes[j]!);
      // The entry at j stays when its home lies cyclically in (i, j].
      if (i <= j ? i < k && k <= j : i < k || k <= j) continue;
      this.tags[i] = this.tags[j]!;
      this.keys[i] = this.keys[j]!;
      this.sizes[i] = this.sizes[j]!;
      this.values[i] = this.values[j]!;
      this.bits[i] = this.bits[j]!;
      i = j;
    }
    gens[i] = 0;
    this.count--;
  }

  /** Drops everything (O(1)). */
  clear(): void {
    this.count = 0;
    if (++this.gen === 0xffffffff) {
      this.gens.fill(0);
      this.gen = 1;
    }
  }

  /**
   * Drops every entry for which `drop(tag, key, size)` holds: one pass over the slots, then
   * the survivors are re-inserted (rare: domain- and PASID-wide invalidations).
   */
  removeWhere(drop: (tag: number, key: number, size: number) => boolean): void {
    if (this.count === 0) return;
    const gens = this.gens;
    const gen = this.gen;
    const keep: number[] = [];
    let dropped = 0;
    for (let i = 0; i <= this.mask; i++) {
      if (gens[i] !== gen) continue;
      const tag = this.tags[i]!;
      const key = this.keys[i]!;
      const size = this.sizes[i]!;
      if (drop(tag, key, size)) dropped++;
      else keep.push(tag, key, size, this.values[i]!, this.bits[i]!);
    }
    if (dropped === 0) return;
    this.clear();
    for (let k = 0; k < keep.length; k += 5) this.insert(keep[k]!, keep[k + 1]!, keep[k + 2]!, keep[k + 3]!, keep[k + 4]!);
  }

  /** Every entry of a DID (any PASID tag). */
  removeDid(did: number): void {
    this.removeWhere((tag) => tagDid(tag) === did);
  }

  /** Every entry of one tag. */
  removeTag(tag: number): void {
    this.removeWhere((t) => t === tag);
  }

  /**
   * Entries of `tag` whose block overlaps the 4 KiB pages `[firstVpn, firstVpn + pages)`;
   * `pagesPerSize[s]` is the 4 KiB pages a block of size `s` covers. Small ranges are probed
   * block by block; large ones take one pass over the slots.
   */
  removeTagRange(tag: number, firstVpn: number, pages: number, pagesPerSize: readonly number[]): void {
    if (this.count === 0 || pages <= 0) return;
    const last = firstVpn + pages - 1;
    let probes = 0;
    for (let s = 0; s < pagesPerSize.length; s++) {
      const n = pagesPerSize[s]!;
      probes += (alignDown(last, n) - alignDown(firstVpn, n)) / n + 1;
    }
    if (probes > 64) {
      this.removeWhere((t, key, size) => {
        if (t !== tag) return false;
        const n = pagesPerSize[size]!;
        return key <= last && key + n > firstVpn;
      });
      return;
    }
    for (let s = 0; s < pagesPerSize.length; s++) {
      const n = pagesPerSize[s]!;
      const end = alignDown(last, n);
      for (let key = alignDown(firstVpn, n); key <= end; key += n) this.remove(tag, key, s);
    }
  }

  /**
   * Every PASID-tagged entry of `did`, and its DID-tagged entries overlapping the range (the
   * IOTLB page-selective invalidation).
   */
  removeDidRange(did: number, firstVpn: number, pages: number, pagesPerSize: readonly number[]): void {
    const last = firstVpn + pages - 1;
    this.removeWhere((tag, key, size) => {
      if (tagDid(tag) !== did) return false;
      if (tagPasid(tag) !== 0) return true;
      const n = pagesPerSize[size]!;
      return key <= last && key + n > firstVpn;
    });
  }
}

/**
 * `vpn` rounded down to a multiple of `n` (a power of two up to 2^18): the key of the block of
 * `n` pages holding it. Integer ops on the low 32 bits, which hold the offset exactly for any
 * page number below 2^53 — no division, so nothing for the JIT to speculate on.
 */
export function alignDown(vpn: number, n: number): number {
  return vpn - (vpn & (n - 1));
}
