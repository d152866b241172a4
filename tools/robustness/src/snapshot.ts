/**
 * Snapshots of what a failed call must leave exactly as it was: the contents of every frame
 * of physical memory (page tables, TCE tables, context/PASID tables …) but the driver's
 * scratch areas (queue rings and their completion words), frames in use, pin counts, and the
 * answers of a set of DMA probes.
 */

import type { PhysicalMemory, System } from '@ioasid/core';
import type { DmaResult, Process } from '@ioasid/uapi';
import type { BackendUnderTest } from './backends.js';

/** The highest frame the allocator ever handed out (+1), read from the memory's allocator; 0 if unknown. */
export function frameLimit(memory: PhysicalMemory): number {
  const n = (memory as unknown as { readonly nextFree?: unknown }).nextFree;
  return typeof n === 'number' ? n : 0;
}

/** pfn → a hash of the frame's non-zero words, for every frame holding a non-zero word. */
export type FrameSnapshot = Map<number, number>;

/** Hashes every frame of `memory` that holds something. */
export function snapshotFrames(memory: PhysicalMemory): FrameSnapshot {
  const top = frameLimit(memory);
  const out: FrameSnapshot = new Map();
  for (let p = 1; p < top; p++) {
    const w = memory.frameWords(p);
    if (w === undefined) continue;
    let h = 0x811c9dc5;
    let nz = false;
    for (let i = 0; i < 1024; i++) {
      const v = w[i]!;
      if (v !== 0) {
        nz = true;
        h = Math.imul(h ^ v, 0x01000193) ^ i;
      }
    }
    if (nz) out.set(p, h >>> 0);
  }
  return out;
}

/** Frames whose contents differ between two snapshots, minus `ignore`. */
export function changedFrames(a: FrameSnapshot, b: FrameSnapshot, ignore: ReadonlySet<number> = new Set()): number[] {
  const out: number[] = [];
  for (const [p, h] of a) if (b.get(p) !== h && !ignore.has(p)) out.push(p);
  for (const p of b.keys()) if (!a.has(p) && !ignore.has(p)) out.push(p);
  return out.sort((x, y) => x - y);
}

/** A DMA a snapshot records the answer of. */
export interface ProbeSpec {
  /** Endpoint name. */
  readonly device: string;
  /** IOVA. */
  readonly iova: bigint;
  /** PASID (absent: none). */
  readonly pasid?: number;
}

/** A DMA answer reduced to what must not change: the bytes read, or the fault class and code. */
export function answer(r: DmaResult): string {
  return r.ok ? `data ${[...r.data].join(',')}` : `fault ${r.fault.class} ${r.fault.code}`;
}

/** Issues the probes (recovering a frozen PAPR PE after each fault) and returns their answers. */
export function probeAnswers(backend: BackendUnderTest, system: System, probes: readonly ProbeSpec[]): string[] {
  return probes.map((p) => {
    const r = system.device(p.device).dma({ iova: p.iova, size: 8, write: false, ...(p.pasid === undefined ? {} : { pasid: p.pasid }) });
    if (!r.ok && backend.recover !== undefined) backend.recover(system, p.device);
    return answer(r);
  });
}

/** Everything a failed call must leave unchanged. */
export interface StateSnapshot {
  /** Frames in use. */
  readonly frames: number;
  /** Pinned pages per process. */
  readonly pins: readonly number[];
  /** Frame contents. */
  readonly contents: FrameSnapshot;
  /** Probe answers. */
  readonly answers: readonly string[];
}

/** Takes a {@link StateSnapshot}. */
export function snapshotState(backend: BackendUnderTest, system: System, procs: readonly Process[], probes: readonly ProbeSpec[]): StateSnapshot {
  return {
    frames: system.memory.framesInUse,
    pins: procs.map((p) => p.pinCount()),
    contents: snapshotFrames(system.memory),
    answers: probeAnswers(backend, system, probes),
  };
}

/** How two snapshots differ (empty: not at all), ignoring the backend's scratch frames. */
export function stateDiff(backend: BackendUnderTest, system: System, a: StateSnapshot, b: StateSnapshot): string[] {
  const out: string[] = [];
  if (a.frames !== b.frames) out.push(`frames in use ${a.frames} → ${b.frames}`);
  a.pins.forEach((p, i) => {
    if (p !== b.pins[i]) out.push(`process ${i} pinned pages ${p} → ${b.pins[i] ?? '?'}`);
  });
  const changed = changedFrames(a.contents, b.contents, backend.scratchFrames?.(system) ?? new Set());
  if (changed.length > 0) out.push(`contents of frames ${changed.slice(0, 8).map((p) => `0x${p.toString(16)}`).join(', ')}${changed.length > 8 ? ` (+${changed.length - 8})` : ''} changed`);
  a.answers.forEach((x, i) => {
    if (x !== b.answers[i]) out.push(`probe ${i}: ${x} → ${b.answers[i] ?? '?'}`);
  });
  return out;
}
