/**
 * Quick performance figures taken during a conformance run, for the report's charts (the full
 * benchmarks are `npm run bench`). Each is measured over a fixed amount of work on a fresh
 * system, so a run stays well under a second per backend.
 */

import { performance as clock } from 'node:perf_hooks';
import type { BackendEntry } from './registry.js';
import type { ReportFigure } from './report/schema.js';

const DEVICE = '0000:00:02.0';

/** Measures `dma.hit` (cached 4-byte reads) and `map.4k` (pages mapped per second) on a backend. */
export function measure(backend: BackendEntry): ReportFigure[] {
  const out: ReportFigure[] = [];
  try {
    const system = backend.create([DEVICE]);
    const proc = system.createProcess();
    const ctx = system.open(proc);
    const ioas = ctx.allocIoas();
    const dev = ctx.bindDevice(DEVICE);
    ctx.attach(dev, ioas);
    const ranges = ctx.iovaRanges(ioas).ranges;
    const base = ranges.find((r) => r.last - r.start >= 0x4000000n)?.start ?? 0n;
    const iova = base === 0n ? 0x100000n : base;
    const buf = proc.mmap(0x40000n);
    ctx.mapDma(ioas, { iova, vaddr: buf, length: 0x40000n });
    const ep = system.device(DEVICE);
    const req = { iova, size: 4, write: false };
    ep.dma(req);
    const n = 20000;
    let t = clock.now();
    for (let i = 0; i < n; i++) ep.dma(req);
    out.push({ backend: backend.id, metric: 'dma.hit', value: Math.round(n / ((clock.now() - t) / 1000)), unit: 'ops/s' });
    const pages = 64;
    const rounds = 32;
    const big = proc.mmap(BigInt(pages * 4096 * rounds));
    t = clock.now();
    for (let r = 0; r < rounds; r++) {
      ctx.mapDma(ioas, { iova: iova + 0x1000000n + BigInt(r * pages * 4096), vaddr: big + BigInt(r * pages * 4096), length: BigInt(pages * 4096) });
    }
    out.push({ backend: backend.id, metric: 'map.4k', value: Math.round((pages * rounds) / ((clock.now() - t) / 1000)), unit: 'pages/s' });
    ctx.close();
  } catch {
    // a backend that cannot run the probe simply has no figures
  }
  return out;
}
