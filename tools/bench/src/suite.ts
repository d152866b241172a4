/** The measurements. */

import { ProcessGuestMemory } from '@ioasid/core';
import type { IoasidContext, IoasidSystem, ObjectId, Process } from '@ioasid/uapi';
import type { BenchBackend } from './backends.js';
import { timeBatch, timeOnce } from './measure.js';
import { ReferenceWalker } from './reference.js';

/** One row of bench.json. */
export interface Result {
  /** Backend (package name without scope) or `reference`. */
  readonly backend: string;
  /** Metric name. */
  readonly metric: string;
  /** Operations (or pages) per second. */
  readonly opsPerSec: number;
  /** Nanoseconds per operation (or page). */
  readonly nsPerOp: number;
  /** For memory metrics: the value and its unit. */
  readonly value?: number;
  /** Unit of `value`. */
  readonly unit?: string;
  /** What was measured, when it needs saying. */
  readonly note?: string;
}

const DEV = '0000:00:02.0';
const DEVICES = [DEV, '0000:00:03.0'];
const GiB = 1n << 30n;

function row(backend: string, metric: string, f: { opsPerSec: number; nsPerOp: number }, note?: string): Result {
  return { backend, metric, opsPerSec: f.opsPerSec, nsPerOp: f.nsPerOp, ...(note === undefined ? {} : { note }) };
}

/** The plain-JavaScript reference: a 4-level walk and a direct-mapped IOTLB hit. */
export async function benchReference(): Promise<Result[]> {
  const pages = 65536;
  const w = new ReferenceWalker(200);
  for (let i = 0; i < pages; i++) w.map(0x100000 + i, 0x200000 + i);
  const his = new Uint32Array(4096);
  const los = new Uint32Array(4096);
  let seed = 12345;
  for (let i = 0; i < 4096; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const vpn = 0x100000 + (seed % pages);
    his[i] = Math.floor(vpn / 0x100000);
    los[i] = ((vpn % 0x100000) * 4096) >>> 0;
  }
  let sink = 0;
  const memory = new Uint8Array(64 * 4096);
  for (let i = 0; i < memory.length; i++) memory[i] = i & 0xff;
  const into = new Uint8Array(4);
  const tlb = await timeBatch('reference.tlb', 4096, () => {
    for (let i = 0; i < 4096; i++) sink += w.translate(1, 0x4000);
  });
  const hit = await timeBatch('reference.hit', 4096, () => {
    for (let i = 0; i < 4096; i++) if (w.read(1, 0x4004, memory, into, 4)) sink += into[0]!;
  });
  const miss = await timeBatch('reference.miss', 4096, () => {
    for (let i = 0; i < 4096; i++) sink += w.walk(his[i]!, los[i]!);
  });
  const leaf = new Uint32Array(1024);
  const map = await timeBatch('reference.map', 512, () => {
    for (let i = 0; i < 512; i++) {
      leaf[i * 2] = (((0x300000 + i) << 12) | 3) >>> 0;
      leaf[i * 2 + 1] = 0;
    }
  });
  if (sink === 42) console.log('');
  return [
    row('reference', 'dma.hit', hit, 'direct-mapped typed-array IOTLB hit, then 4 bytes copied into the caller\'s buffer'),
    row('reference', 'tlb.hit', tlb, 'the IOTLB hit alone (no data moved)'),
    row('reference', 'dma.miss', miss, '4-level radix walk, 65536 dense pages'),
    row('reference', 'map.4k', map, 'writing one 8-byte leaf entry'),
  ];
}

interface Setup {
  readonly system: IoasidSystem;
  readonly proc: Process;
  readonly ctx: IoasidContext;
  readonly ioas: ObjectId;
  readonly base: bigint;
}

function setup(b: BenchBackend): Setup {
  const system = b.create(DEVICES);
  const proc = system.createProcess();
  const ctx = system.open(proc);
  const ioas = ctx.allocIoas();
  ctx.attach(ctx.bindDevice(DEV), ioas);
  const ranges = [...ctx.iovaRanges(ioas).ranges].sort((x, y) => (y.last - y.start > x.last - x.start ? 1 : -1));
  const big = ranges[0]!;
  const base = ((big.start + GiB - 1n) / GiB) * GiB || GiB;
  return { system, proc, ctx, ioas, base };
}

/** Every metric on one backend. */
export async function benchBackend(b: BenchBackend, options: { readonly quick: boolean }): Promise<Result[]> {
  const out: Result[] = [];
  const name = b.name;
  // --- DMA paths
  {
    const s = setup(b);
    const buf = s.proc.mmap(0x10000n);
    s.ctx.mapDma(s.ioas, { iova: s.base, vaddr: buf, length: 0x10000n });
    const ep = s.system.device(DEV);
    const req = { iova: s.base, size: 4, write: false };
    const into = new Uint8Array(4);
    ep.dma(req);
    out.push(row(name, 'dma.hit', await timeBatch(`${name}.hit`, 1000, () => {
      for (let i = 0; i < 1000; i++) ep.dmaInto(req, into);
    }), 'dmaInto: one request object and one 4-byte buffer reused'));
    out.push(row(name, 'dma.hit.result', await timeBatch(`${name}.hit.result`, 1000, () => {
      for (let i = 0; i < 1000; i++) ep.dma(req);
    }), 'dma(): a result object and a fresh Uint8Array per DMA'));
    if (b.flush) {
      const measureMiss = async (metric: string, flusher: (system: IoasidSystem) => () => void, what: string) => {
        const flush = flusher(s.system);
        const f = await timeBatch(`${name}.${metric}.flush`, 200, () => {
          for (let i = 0; i < 200; i++) flush();
        });
        const both = await timeBatch(`${name}.${metric}`, 200, () => {
          for (let i = 0; i < 200; i++) {
            flush();
            ep.dmaInto(req, into);
          }
        });
        const ns = Math.max(1, both.nsPerOp - f.nsPerOp);
        out.push({ backend: name, metric, nsPerOp: ns, opsPerSec: 1e9 / ns, note: `${what} emptied before each DMA; flush cost (${f.nsPerOp.toFixed(0)} ns) subtracted` });
      };
      await measureMiss('dma.miss', b.flushTranslations ?? b.flush, 'translation caches (IOTLB, paging-structure caches)');
      await measureMiss('dma.miss.cold', b.flush, 'every cache, configuration caches too');
    } else {
      const miss = out[out.length - 2]!;
      out.push({ ...miss, metric: 'dma.miss', note: 'the model has no translation cache: every DMA walks' });
    }
    s.ctx.close();
  }
  // --- nested translation on a cold cache
  if (b.guest && b.flush) {
    const r = nested(b);
    if (r !== undefined) out.push(r.result ?? { backend: name, metric: 'dma.nested', nsPerOp: NaN, opsPerSec: NaN, note: r.note ?? '' });
  }
  // --- MAP/UNMAP of 4 KiB pages
  {
    const s = setup(b);
    const areas = 1024;
    const per = 64;
    const buf = s.proc.mmap(BigInt(areas * per * 4096));
    // warm-up: the same map/unmap loop on another IOVA range, so that the JIT has compiled it
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < areas; i++) {
        const off = BigInt(i * per * 4096);
        s.ctx.mapDma(s.ioas, { iova: s.base + GiB + off, vaddr: buf + off, length: BigInt(per * 4096) });
      }
      for (let i = 0; i < areas; i++) s.ctx.unmapDma(s.ioas, { iova: s.base + GiB + BigInt(i * per * 4096), length: BigInt(per * 4096) });
    }
    const map = timeOnce(areas * per, () => {
      for (let i = 0; i < areas; i++) {
        const off = BigInt(i * per * 4096);
        s.ctx.mapDma(s.ioas, { iova: s.base + off, vaddr: buf + off, length: BigInt(per * 4096) });
      }
    });
    out.push(row(name, 'map.4k', map, `${areas} maps of ${per} pages; pages per second (pin + table writes + bookkeeping)`));
    const unmap = timeOnce(areas * per, () => {
      for (let i = 0; i < areas; i++) {
        s.ctx.unmapDma(s.ioas, { iova: s.base + BigInt(i * per * 4096), length: BigInt(per * 4096) });
      }
    });
    out.push(row(name, 'unmap.4k', unmap, 'pages per second'));
    s.ctx.close();
  }
  // --- one 1 GiB aligned map
  {
    const s = setup(b);
    const buf = s.proc.mmap(GiB);
    // table frames the first 1 GiB map needs (drivers may keep emptied tables after unmap)
    const before = s.system.memory.framesInUse;
    s.ctx.mapDma(s.ioas, { iova: s.base, vaddr: buf, length: GiB });
    const tableBytes = (s.system.memory.framesInUse - before) * 4096;
    s.ctx.unmapDma(s.ioas, { iova: s.base, length: GiB });
    for (let r = 0; r < 2; r++) {
      s.ctx.mapDma(s.ioas, { iova: s.base, vaddr: buf, length: GiB });
      s.ctx.unmapDma(s.ioas, { iova: s.base, length: GiB });
    }
    const f = timeOnce(1, () => {
      s.ctx.mapDma(s.ioas, { iova: s.base, vaddr: buf, length: GiB });
    });
    out.push({ ...row(name, 'map.huge', f, `1 GiB map (warm); the first one allocated ${tableBytes} bytes of table frames (4 KiB leaves would need 2 MiB)`), value: tableBytes, unit: 'table bytes' });
    s.ctx.close();
  }
  // --- dirty bitmap read-and-clear of 1 GiB of 4 KiB mappings
  {
    const s = setup(b);
    const dev = s.ctx.bindDevice('0000:00:03.0');
    if (s.ctx.getInfo(dev).dirtyTracking) {
      const hwpt = s.ctx.allocHwpt(dev, { parent: s.ioas, flags: { dirtyTracking: true } });
      s.ctx.attach(dev, hwpt);
      const buf = s.proc.mmap(GiB + 0x1000n);
      // the IOVA is one page off the 2 MiB alignment of the (aligned) buffer, so IOVA and
      // physical address never agree modulo 2 MiB and no block entry fits: 262144 4 KiB leaves
      const iova = s.base + 0x1000n;
      const chunk = 16n << 20n;
      for (let off = 0n; off < GiB; off += chunk) s.ctx.mapDma(s.ioas, { iova: iova + off, vaddr: buf + off, length: chunk });
      s.ctx.setDirtyTracking(hwpt, true);
      const ep = s.system.device('0000:00:03.0');
      const one = Uint8Array.of(1);
      const dirty = () => {
        for (let p = 0; p < 262144; p += 64) ep.dma({ iova: iova + BigInt(p) * 4096n, size: 0, write: true, data: one });
      };
      dirty();
      const f = timeOnce(1, () => s.ctx.readDirtyBitmap(hwpt, { iova, length: GiB, pageSize: 4096n }));
      out.push(row(name, 'dirty.read', f, 'GET_DIRTY_BITMAP read-and-clear of 1 GiB of 4 KiB mappings (4096 of 262144 pages dirty); ns per bitmap read'));
    }
    s.ctx.close();
  }
  // --- map/unmap cost against live mappings, and memory per mapping
  {
    const s = setup(b);
    const top = options.quick ? 100_000 : 1_000_000;
    const buf = s.proc.mmap(BigInt(top) * 4096n);
    const probe = s.proc.mmap(0x1000n);
    let live = 0;
    const frames0 = s.system.memory.framesInUse;
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    {
      // warm-up of the measured pair, so the first point is not a JIT figure
      const at = s.base + BigInt(top) * 8192n + 0x1000000n;
      for (let i = 0; i < 2000; i++) {
        s.ctx.mapDma(s.ioas, { iova: at, vaddr: probe, length: 0x1000n });
        s.ctx.unmapDma(s.ioas, { iova: at, length: 0x1000n });
      }
    }
    for (const n of [1_000, 10_000, 100_000, 1_000_000]) {
      if (n > top) break;
      for (; live < n; live++) {
        // every other page, so that no two mappings are contiguous
        const off = BigInt(live) * 4096n;
        s.ctx.mapDma(s.ioas, { iova: s.base + off * 2n, vaddr: buf + off, length: 0x1000n });
      }
      const at = s.base + BigInt(top) * 8192n + 0x1000000n;
      const f = await timeBatch(`${name}.scale.${n}`, 50, () => {
        for (let i = 0; i < 50; i++) {
          s.ctx.mapDma(s.ioas, { iova: at, vaddr: probe, length: 0x1000n });
          s.ctx.unmapDma(s.ioas, { iova: at, length: 0x1000n });
        }
      }, 200);
      out.push(row(name, `map.scale.${n}`, f, `one map+unmap pair with ${n} live mappings`));
    }
    global.gc?.();
    const heap = process.memoryUsage().heapUsed - heap0;
    const tableFrames = s.system.memory.framesInUse - frames0;
    const tableBytes = (tableFrames * 4096) / live;
    out.push({ backend: name, metric: 'memory.table', opsPerSec: NaN, nsPerOp: NaN, value: tableBytes, unit: 'bytes/mapping', note: `table frames per live 4 KiB mapping at ${live} mappings (minimum 8 + upper levels)` });
    out.push({ backend: name, metric: 'memory.heap', opsPerSec: NaN, nsPerOp: NaN, value: heap / live, unit: 'bytes/mapping', note: `JS heap per live mapping at ${live} mappings${global.gc ? '' : ' (run with --expose-gc for a settled figure)'}` });
    s.ctx.close();
  }
  return out;
}

function nested(b: BenchBackend): { result?: Result; note?: string } | undefined {
  const system = b.create([DEV]);
  const proc = system.createProcess();
  const ctx = system.open(proc);
  const ioas = ctx.allocIoas();
  const d = ctx.bindDevice(DEV);
  const parent = ctx.allocHwpt(d, { parent: ioas, flags: { nestParent: true } });
  const gpa = 0x40000000n;
  const ram = proc.mmap(0x400000n);
  ctx.mapDma(ioas, { iova: gpa, vaddr: ram, length: 0x400000n });
  const mem = new ProcessGuestMemory(proc, ram, gpa, 0x400000n);
  const stage1 = b.guest!.create(mem);
  stage1.map(0x10000n, gpa, false);
  const hwpt = ctx.allocHwpt(d, { parent, data: stage1.data });
  ctx.attach(d, hwpt);
  const ep = system.device(DEV);
  const req = { iova: 0x10000n, size: 4, write: false };
  const first = ep.dma(req);
  if (!first.ok) return { note: `nested DMA faulted: ${first.fault.name}` };
  const flush = b.flush!(system);
  const into = new Uint8Array(4);
  for (let i = 0; i < 2000; i++) {
    flush();
    ep.dmaInto(req, into); // warm-up
  }
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 2000; i++) flush();
  const tf = Number(process.hrtime.bigint() - t0) / 2000;
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < 2000; i++) {
    flush();
    ep.dmaInto(req, into);
  }
  const both = Number(process.hrtime.bigint() - t1) / 2000;
  const ns = both - tf;
  ctx.close();
  if (ns < tf * 0.1) {
    // the flush dominates: report the pair, not a difference lost in noise
    return { result: { backend: b.name, metric: 'dma.nested', nsPerOp: both, opsPerSec: 1e9 / both, note: `flush + nested DMA (the flush, ${tf.toFixed(0)} ns, dominates and is not subtracted)` } };
  }
  return { result: { backend: b.name, metric: 'dma.nested', nsPerOp: ns, opsPerSec: 1e9 / ns, note: `stage 1 over stage 2, caches emptied before each DMA (flush ${tf.toFixed(0)} ns subtracted)` } };
}
