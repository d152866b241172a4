/**
 * An ordered set of non-overlapping inclusive ranges `[start, last]` (bigint), kept in an AVL
 * tree augmented with each subtree's first start, last end and largest inner gap, so that
 * insert, remove, overlap queries and hole searches are O(log n). This is the IOAS's area
 * bookkeeping (iommufd keeps the same in an interval tree).
 */

/** What the tree stores: an inclusive range. */
export interface Range {
  /** First byte. */
  readonly start: bigint;
  /** Last byte (inclusive). */
  readonly last: bigint;
}

interface Node<T extends Range> {
  item: T;
  left: Node<T> | undefined;
  right: Node<T> | undefined;
  height: number;
  /** Smallest start in the subtree. */
  min: bigint;
  /** Largest last in the subtree. */
  max: bigint;
  /** Largest free run strictly between two consecutive ranges of the subtree (0 if none). */
  gap: bigint;
}

const h = <T extends Range>(n: Node<T> | undefined) => (n === undefined ? 0 : n.height);

function update<T extends Range>(n: Node<T>): void {
  const l = n.left;
  const r = n.right;
  n.height = Math.max(h(l), h(r)) + 1;
  n.min = l === undefined ? n.item.start : l.min;
  n.max = r === undefined ? n.item.last : r.max;
  let gap = 0n;
  if (l !== undefined) {
    gap = l.gap;
    const g = n.item.start - l.max - 1n;
    if (g > gap) gap = g;
  }
  if (r !== undefined) {
    if (r.gap > gap) gap = r.gap;
    const g = r.min - n.item.last - 1n;
    if (g > gap) gap = g;
  }
  n.gap = gap;
}

function rotateRight<T extends Range>(n: Node<T>): Node<T> {
  const l = n.left!;
  n.left = l.right;
  l.right = n;
  update(n);
  update(l);
  return l;
}

function rotateLeft<T extends Range>(n: Node<T>): Node<T> {
  const r = n.right!;
  n.right = r.left;
  r.left = n;
  update(n);
  update(r);
  return r;
}

function balance<T extends Range>(n: Node<T>): Node<T> {
  update(n);
  const bf = h(n.left) - h(n.right);
  if (bf > 1) {
    if (h(n.left!.left) < h(n.left!.right)) n.left = rotateLeft(n.left!);
    return rotateRight(n);
  }
  if (bf < -1) {
    if (h(n.right!.right) < h(n.right!.left)) n.right = rotateRight(n.right!);
    return rotateLeft(n);
  }
  return n;
}

/** The ordered range set. */
export class AreaTree<T extends Range> {
  private root: Node<T> | undefined;
  private count = 0;

  /** Number of ranges. */
  get size(): number {
    return this.count;
  }

  /** Inserts a range; the caller guarantees it overlaps none already present. */
  insert(item: T): void {
    const ins = (n: Node<T> | undefined): Node<T> => {
      if (n === undefined) {
        return { item, left: undefined, right: undefined, height: 1, min: item.start, max: item.last, gap: 0n };
      }
      if (item.start < n.item.start) n.left = ins(n.left);
      else n.right = ins(n.right);
      return balance(n);
    };
    this.root = ins(this.root);
    this.count++;
  }

  /** Removes the range that starts at `item.start`; returns whether one was removed. */
  remove(item: Range): boolean {
    let removed = false as boolean;
    const removeMin = (n: Node<T>): [Node<T> | undefined, Node<T>] => {
      if (n.left === undefined) return [n.right, n];
      const [l, min] = removeMin(n.left);
      n.left = l;
      return [balance(n), min];
    };
    const rem = (n: Node<T> | undefined): Node<T> | undefined => {
      if (n === undefined) return undefined;
      if (item.start < n.item.start) n.left = rem(n.left);
      else if (item.start > n.item.start) n.right = rem(n.right);
      else {
        removed = true;
        if (n.left === undefined) return n.right;
        if (n.right === undefined) return n.left;
        const [r, min] = removeMin(n.right);
        min.left = n.left;
        min.right = r;
        return balance(min);
      }
      return balance(n);
    };
    this.root = rem(this.root);
    if (removed) this.count--;
    return removed;
  }

  /** The range containing `addr`, if any. */
  find(addr: bigint): T | undefined {
    let n = this.root;
    while (n !== undefined) {
      if (addr < n.item.start) n = n.left;
      else if (addr > n.item.last) n = n.right;
      else return n.item;
    }
    return undefined;
  }

  /** Calls `fn` for every range overlapping `[start, last]`, in ascending order. */
  forEachOverlap(start: bigint, last: bigint, fn: (item: T) => void): void {
    const walk = (n: Node<T> | undefined): void => {
      if (n === undefined || n.max < start || n.min > last) return;
      walk(n.left);
      if (n.item.start <= last && n.item.last >= start) fn(n.item);
      walk(n.right);
    };
    walk(this.root);
  }

  /** The ranges overlapping `[start, last]`, ascending. */
  overlaps(start: bigint, last: bigint): T[] {
    const out: T[] = [];
    this.forEachOverlap(start, last, (i) => out.push(i));
    return out;
  }

  /** True when some range overlaps `[start, last]`. */
  intersects(start: bigint, last: bigint): boolean {
    let n = this.root;
    while (n !== undefined) {
      if (n.max < start || n.min > last) return false;
      if (n.item.start <= last && n.item.last >= start) return true;
      n = last < n.item.start ? n.left : n.right;
    }
    return false;
  }

  /** Every range, ascending. */
  items(): T[] {
    const out: T[] = [];
    const walk = (n: Node<T> | undefined): void => {
      if (n === undefined) return;
      walk(n.left);
      out.push(n.item);
      walk(n.right);
    };
    walk(this.root);
    return out;
  }

  /**
   * The lowest address `a` in `[lo, hi]` with `a % align === 0` such that `[a, a+length-1]`
   * lies inside `[lo, hi]` and overlaps no range; undefined when there is none.
   */
  findHole(lo: bigint, hi: bigint, length: bigint, align: bigint): bigint | undefined {
    const alignUp = (v: bigint) => ((v + align - 1n) / align) * align;
    let prevLast = lo - 1n; // the free run starts after prevLast
    let found: bigint | undefined;
    const tryGap = (gapStart: bigint, gapEnd: bigint): boolean => {
      // free run [gapStart, gapEnd] clipped to [lo, hi]
      const s = alignUp(gapStart < lo ? lo : gapStart);
      const e = gapEnd > hi ? hi : gapEnd;
      if (s <= e && e - s + 1n >= length) {
        found = s;
        return true;
      }
      return false;
    };
    const walk = (n: Node<T> | undefined): boolean => {
      if (n === undefined) return false;
      if (n.max < lo) {
        return false; // entirely before the window
      }
      if (n.min > hi) return false; // entirely after: the caller checks the tail gap
      // prune: the gap before this subtree and its inner gaps are all too small
      const before = n.min - prevLast - 1n;
      if (before < length && n.gap < length) {
        if (n.max > prevLast) prevLast = n.max;
        return false;
      }
      if (walk(n.left)) return true;
      // A range starting beyond the window ends the search: the free run from prevLast up to
      // `hi` is the tail the caller tries (prevLast must not move past it).
      if (n.item.start > hi) return false;
      if (n.item.last >= lo && tryGap(prevLast + 1n, n.item.start - 1n)) return true;
      if (n.item.last > prevLast) prevLast = n.item.last;
      return walk(n.right);
    };
    if (walk(this.root)) return found;
    if (prevLast >= hi) return undefined;
    return tryGap(prevLast + 1n, hi) ? found : undefined;
  }
}
