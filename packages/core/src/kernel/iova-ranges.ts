/** Arithmetic on sorted lists of inclusive IOVA ranges (usable ranges, reserved regions). */

import { U64_MAX, type IovaRange } from '@ioasid/uapi';

/** Sorts and merges overlapping or adjacent ranges. */
export function normalize(ranges: readonly IovaRange[]): IovaRange[] {
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: { start: bigint; last: bigint }[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev !== undefined && r.start <= prev.last + 1n) {
      if (r.last > prev.last) prev.last = r.last;
    } else out.push({ start: r.start, last: r.last });
  }
  return out;
}

/** The intersection of two range lists. */
export function intersect(a: readonly IovaRange[], b: readonly IovaRange[]): IovaRange[] {
  const out: IovaRange[] = [];
  for (const x of normalize(a)) {
    for (const y of normalize(b)) {
      const s = x.start > y.start ? x.start : y.start;
      const l = x.last < y.last ? x.last : y.last;
      if (s <= l) out.push({ start: s, last: l });
    }
  }
  return normalize(out);
}

/** `a` minus `b`. */
export function subtract(a: readonly IovaRange[], b: readonly IovaRange[]): IovaRange[] {
  let cur = normalize(a);
  for (const r of normalize(b)) {
    const next: IovaRange[] = [];
    for (const x of cur) {
      if (r.last < x.start || r.start > x.last) {
        next.push(x);
        continue;
      }
      if (x.start < r.start) next.push({ start: x.start, last: r.start - 1n });
      if (x.last > r.last) next.push({ start: r.last + 1n, last: x.last });
    }
    cur = next;
  }
  return cur;
}

/** True when `[start, last]` lies inside one range of the list. */
export function covers(ranges: readonly IovaRange[], start: bigint, last: bigint): boolean {
  return ranges.some((r) => r.start <= start && last <= r.last);
}

/** True when `[start, last]` overlaps some range of the list. */
export function overlapsAny(ranges: readonly IovaRange[], start: bigint, last: bigint): boolean {
  return ranges.some((r) => r.start <= last && start <= r.last);
}

/** The whole 64-bit IOVA space. */
export const ALL_IOVA: readonly IovaRange[] = [{ start: 0n, last: U64_MAX }];
