/**
 * A test bench that programs a VtdHardware by registers and memory alone, with the spec
 * encoders: what a third party driving the model would write.
 */

import { PhysicalMemory } from '@ioasid/core';
import { VtdHardware, type VtdHardwareOptions, type VtdInterrupt } from '../hw/vtd-hardware.js';
import { encodeScalableContextEntry } from '../spec/context-entry.js';
import { encodePasidDirEntry, encodePasidEntry, type PasidEntryFields } from '../spec/pasid-entry.js';
import { encodeSsLeaf, encodeSsTable } from '../spec/second-stage.js';
import { encodeFsLeaf, encodeFsTable } from '../spec/first-stage.js';
import type { QiDescriptor } from '../spec/invalidation.js';
import { GCMD_QIE, GCMD_REG, GCMD_SRTP, GCMD_TE, IQA_REG, IQT_REG, RTADDR_REG } from '../spec/registers.js';

/** A hardware unit with helpers to build its structures. */
export class Bench {
  readonly memory = new PhysicalMemory({ size: 1n << 36n });
  readonly hw: VtdHardware;
  readonly root: number;
  readonly interrupts: VtdInterrupt[] = [];
  private gcmd = 0;
  private qiBase = 0;
  private qiTail = 0;
  private readonly dirs = new Map<number, number>();

  constructor(options: Partial<Omit<VtdHardwareOptions, 'memory'>> = {}) {
    this.hw = new VtdHardware({
      memory: this.memory,
      ...options,
      onInterrupt: (s) => {
        this.interrupts.push(s);
      },
    });
    this.root = this.alloc();
  }

  /** A zeroed page; returns its physical address. */
  alloc(): number {
    return this.memory.allocFrame() * 4096;
  }

  w64(pa: number, v: bigint): void {
    this.memory.write64(BigInt(pa), v);
  }

  r64(pa: number): bigint {
    return this.memory.read64(BigInt(pa));
  }

  command(bits: number): void {
    this.hw.mmio.write32(GCMD_REG, (this.gcmd | bits) >>> 0);
  }

  /** Latches the root table (scalable or legacy), then enables translation. */
  enable(scalable = true): void {
    this.hw.mmio.write64(RTADDR_REG, BigInt(this.root) | (scalable ? 1n << 10n : 0n));
    this.command(GCMD_SRTP);
    this.gcmd |= GCMD_TE;
    this.command(0);
  }

  /** Enables queued invalidation with a 4 KiB queue of 256-bit descriptors. */
  enableQi(): void {
    this.qiBase = this.alloc();
    this.hw.mmio.write64(IQT_REG, 0n);
    this.hw.mmio.write64(IQA_REG, BigInt(this.qiBase) | (1n << 11n));
    this.gcmd |= GCMD_QIE;
    this.command(0);
  }

  /** Writes descriptors at the tail and advances IQT. */
  submit(...descs: QiDescriptor[]): void {
    for (const [qw0, qw1] of descs) {
      const a = this.qiBase + this.qiTail;
      this.w64(a, qw0);
      this.w64(a + 8, qw1);
      this.w64(a + 16, 0n);
      this.w64(a + 24, 0n);
      this.qiTail = (this.qiTail + 32) % 4096;
    }
    this.hw.mmio.write64(IQT_REG, BigInt(this.qiTail));
  }

  /** Writes a scalable-mode context entry with a one-page PASID directory (PDTS 2). */
  context(sid: number, fields: { present?: boolean; fpd?: boolean; paside?: boolean; pre?: boolean; ridPasid?: number } = {}): number {
    const bus = sid >> 8;
    const devfn = sid & 0xff;
    const half = devfn >= 0x80 ? 8 : 0;
    let ctp = Number(this.r64(this.root + bus * 16 + half) & ~0xfffn);
    if (ctp === 0) {
      ctp = this.alloc();
      this.w64(this.root + bus * 16 + half, BigInt(ctp) | 1n);
    }
    let dir = this.dirs.get(sid);
    if (dir === undefined) this.dirs.set(sid, (dir = this.alloc()));
    const v = encodeScalableContextEntry({
      present: fields.present ?? true,
      fpd: fields.fpd ?? false,
      paside: fields.paside ?? true,
      pre: fields.pre ?? false,
      pdts: 2,
      pasidDirPtr: BigInt(dir),
      ridPasid: fields.ridPasid ?? 0,
    });
    const ca = ctp + (devfn & 0x7f) * 32;
    v.forEach((q, i) => {
      this.w64(ca + i * 8, q);
    });
    return ca;
  }

  /** Writes a PASID-table entry (allocating the PASID table); returns its address. */
  pasidEntry(sid: number, pasid: number, fields: PasidEntryFields): number {
    const dir = this.dirs.get(sid)!;
    const da = dir + (pasid >> 6) * 8;
    let table = Number(this.r64(da) & ~0xfffn);
    if (table === 0) {
      table = this.alloc();
      this.w64(da, encodePasidDirEntry({ present: true, smptblptr: BigInt(table) }));
    }
    const pa = table + (pasid & 63) * 64;
    encodePasidEntry(fields).forEach((q, i) => {
      this.w64(pa + i * 8, q);
    });
    return pa;
  }

  /** Maps one 4 KiB page in a second-stage table rooted at `root`; returns the leaf address. */
  ssMap(root: number, iova: number, pa: number, read: boolean, write: boolean, levels = 4): number {
    let table = root;
    for (let level = levels; level > 1; level--) {
      const slot = table + (Math.floor(iova / 2 ** (12 + 9 * (level - 1))) % 512) * 8;
      let next = Number(this.r64(slot) & 0xffffffffff000n);
      if (next === 0) {
        next = this.alloc();
        this.w64(slot, encodeSsTable(BigInt(next)));
      }
      table = next;
    }
    const leaf = table + (Math.floor(iova / 4096) % 512) * 8;
    this.w64(leaf, encodeSsLeaf(BigInt(pa), { read, write }));
    return leaf;
  }

  /** Maps one 4 KiB page in a first-stage table; returns the leaf address. */
  fsMap(root: number, va: number, pa: number, writable: boolean, options: { user?: boolean; xd?: boolean; levels?: number; alloc?: () => number } = {}): number {
    const alloc = options.alloc ?? (() => this.alloc());
    const levels = options.levels ?? 4;
    let table = root;
    for (let level = levels; level > 1; level--) {
      const slot = table + (Math.floor(va / 2 ** (12 + 9 * (level - 1))) % 512) * 8;
      let next = Number(this.r64(slot) & 0xffffffffff000n);
      if (next === 0) {
        next = alloc();
        this.w64(slot, encodeFsTable(BigInt(next)));
      }
      table = next;
    }
    const leaf = table + (Math.floor(va / 4096) % 512) * 8;
    this.w64(leaf, encodeFsLeaf(BigInt(pa), { writable, user: options.user ?? true, xd: options.xd ?? false }));
    return leaf;
  }

  /** Reads `n` bytes through the unit. */
  read(sid: number, iova: bigint, n: number, extra: { pasid?: number; priv?: boolean; exec?: boolean } = {}) {
    return this.hw.dma({ sourceId: sid, iova, size: n, write: false, ...extra });
  }

  /** Writes bytes through the unit. */
  write(sid: number, iova: bigint, data: Uint8Array, extra: { pasid?: number; priv?: boolean } = {}) {
    return this.hw.dma({ sourceId: sid, iova, size: data.length, write: true, data, ...extra });
  }
}
