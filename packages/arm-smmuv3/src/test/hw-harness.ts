/**
 * Test harness: programs an SmmuV3Hardware the way firmware-free software would — memory,
 * registers and queues only — with a bump allocator for tables. Used by the hardware tests.
 */

import { PhysicalMemory } from '@ioasid/core';
import { encodeCdWords, type Cd } from '../spec/cd.js';
import { encodeCommandWords, type SmmuCommand } from '../spec/commands.js';
import { decodeEventWords, type SmmuEvent } from '../spec/events.js';
import { decodePriWords, type PriRecord } from '../spec/priq.js';
import { encodeTableDesc, levelShift } from '../spec/pgtable.js';
import {
  CR0_CMDQEN,
  CR0_EVENTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  CR2_RECINVSID,
  IRQ_CTRL_EVENTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_CR2,
  SMMU_EVENTQ_BASE,
  SMMU_EVENTQ_CONS,
  SMMU_EVENTQ_PROD,
  SMMU_IRQ_CTRL,
  SMMU_PRIQ_BASE,
  SMMU_PRIQ_CONS,
  SMMU_PRIQ_PROD,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
} from '../spec/registers.js';
import { encodeSteWords, type Ste } from '../spec/ste.js';
import { SmmuV3Hardware, type SmmuV3Options } from '../hw/smmu-v3.js';

/** Where the harness puts things. */
export const STRTAB = 0x100000;
/** Command queue (256 entries). */
export const CMDQ = 0x200000;
/** Event queue (64 entries). */
export const EVTQ = 0x210000;
/** PRI queue (16 entries). */
export const PRIQ = 0x220000;

/** A programmed model plus helpers. */
export interface Harness {
  memory: PhysicalMemory;
  hw: SmmuV3Hardware;
  interrupts: string[];
  alloc(bytes: number): number;
  writeWords(addr: number, w: Uint32Array): void;
  writeSte(sid: number, ste: Partial<Ste>): void;
  writeCd(addr: number, cd: Partial<Cd>): void;
  cmd(...cmds: SmmuCommand[]): void;
  cmdWords(w: Uint32Array): void;
  events(): SmmuEvent[];
  pri(): PriRecord[];
  /** Installs `desc` (two words) for `va` at `level`, allocating tables from `root`. */
  map(root: number, va: number, desc: Uint32Array, level?: number, granuleShift?: number, startLevel?: number): number;
  read64(addr: number): bigint;
}

/** Builds a harness: linear stream table of 256 STEs, all queues enabled, RECINVSID. */
export function harness(options: Partial<SmmuV3Options> = {}, memSize = 1n << 32n): Harness {
  const memory = new PhysicalMemory({ size: memSize });
  const interrupts: string[] = [];
  const hw = new SmmuV3Hardware({ memory, onInterrupt: (l) => interrupts.push(l), ...options });
  const m = hw.mmio;
  let next = 0x1000000;
  const alloc = (bytes: number) => {
    const a = Math.ceil(next / bytes) * bytes;
    next = a + bytes;
    return a;
  };
  m.write64(SMMU_STRTAB_BASE, BigInt(STRTAB));
  m.write32(SMMU_STRTAB_BASE_CFG, 8);
  m.write64(SMMU_CMDQ_BASE, BigInt(CMDQ) | 8n);
  m.write32(SMMU_CMDQ_PROD, 0);
  m.write32(SMMU_CMDQ_CONS, 0);
  m.write64(SMMU_EVENTQ_BASE, BigInt(EVTQ) | 6n);
  m.write32(SMMU_EVENTQ_PROD, 0);
  m.write32(SMMU_EVENTQ_CONS, 0);
  m.write64(SMMU_PRIQ_BASE, BigInt(PRIQ) | 4n);
  m.write32(SMMU_PRIQ_PROD, 0);
  m.write32(SMMU_PRIQ_CONS, 0);
  m.write32(SMMU_CR2, CR2_RECINVSID);
  m.write32(SMMU_IRQ_CTRL, IRQ_CTRL_EVENTQ_IRQEN | IRQ_CTRL_PRIQ_IRQEN | IRQ_CTRL_GERROR_IRQEN);
  m.write32(SMMU_CR0, CR0_SMMUEN | CR0_EVENTQEN | CR0_CMDQEN | CR0_PRIQEN);
  const writeWords = (addr: number, w: Uint32Array) => {
    for (let i = 0; i < w.length; i++) memory.write32At(addr + i * 4, w[i]!);
  };
  const cmdWords = (w: Uint32Array) => {
    const prod = m.read32(SMMU_CMDQ_PROD);
    writeWords(CMDQ + (prod & 0xff) * 16, w);
    m.write32(SMMU_CMDQ_PROD, (prod + 1) & 0x1ff);
  };
  return {
    memory,
    hw,
    interrupts,
    alloc,
    writeWords,
    writeSte: (sid, ste) => { writeWords(STRTAB + sid * 64, encodeSteWords(ste)); },
    writeCd: (addr, cd) => { writeWords(addr, encodeCdWords(cd)); },
    cmd: (...cmds) => {
      for (const c of cmds) cmdWords(encodeCommandWords(c));
    },
    cmdWords,
    events: () => {
      const out: SmmuEvent[] = [];
      let cons = m.read32(SMMU_EVENTQ_CONS) & 0x7f;
      const prod = m.read32(SMMU_EVENTQ_PROD) & 0x7f;
      for (let n = 0; n < 128 && cons !== prod; n++) {
        const w = new Uint32Array(8);
        for (let i = 0; i < 8; i++) w[i] = memory.read32At(EVTQ + (cons & 0x3f) * 32 + i * 4);
        out.push(decodeEventWords(w));
        cons = (cons + 1) & 0x7f;
      }
      m.write32(SMMU_EVENTQ_CONS, cons);
      return out;
    },
    pri: () => {
      const out: PriRecord[] = [];
      let cons = m.read32(SMMU_PRIQ_CONS) & 0x1f;
      const prod = m.read32(SMMU_PRIQ_PROD) & 0x1f;
      for (let n = 0; n < 32 && cons !== prod; n++) {
        const w = new Uint32Array(4);
        for (let i = 0; i < 4; i++) w[i] = memory.read32At(PRIQ + (cons & 0xf) * 16 + i * 4);
        out.push(decodePriWords(w));
        cons = (cons + 1) & 0x1f;
      }
      m.write32(SMMU_PRIQ_CONS, cons);
      return out;
    },
    map: (root, va, desc, level = 3, g = 12, start = 0) => {
      let table = root;
      const stride = g - 3;
      for (let l = start; l < level; l++) {
        const shift = levelShift(g, l);
        let idx = Math.floor(va / 2 ** shift);
        if (l !== start) idx %= 2 ** stride;
        const slot = table + idx * 8;
        const lo = memory.read32At(slot);
        if ((lo & 3) === 3) {
          table = (memory.read32At(slot + 4) & 0xffff) * 2 ** 32 + (lo - (lo % 2 ** g) >>> 0);
          continue;
        }
        const t = alloc(2 ** g);
        writeWords(slot, encodeTableDesc(t));
        table = t;
      }
      const shift = levelShift(g, level);
      let idx = Math.floor(va / 2 ** shift);
      if (level !== start) idx %= 2 ** stride;
      writeWords(table + idx * 8, desc);
      return table + idx * 8;
    },
    read64: (addr) => memory.read64(BigInt(addr)),
  };
}
