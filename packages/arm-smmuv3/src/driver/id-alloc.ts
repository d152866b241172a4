/** A lowest-free identifier allocator (ASIDs and VMIDs from 1, as Linux's xarray/ida do). */

import { IoasidError } from '@ioasid/uapi';

/** Allocates identifiers in `[min, max]`. */
export class IdAllocator {
  private readonly used = new Set<number>();
  private hint: number;

  /**
   * @param min - first identifier
   * @param max - last identifier
   * @param what - name for the error message
   */
  constructor(private readonly min: number, private readonly max: number, private readonly what: string) {
    this.hint = min;
  }

  /** The lowest free identifier (ENOSPC when none). */
  alloc(): number {
    for (let n = 0, id = this.hint; n <= this.max - this.min; n++, id = id >= this.max ? this.min : id + 1) {
      if (!this.used.has(id)) {
        this.used.add(id);
        this.hint = id;
        return id;
      }
    }
    throw new IoasidError('ENOSPC', undefined, `no free ${this.what}`);
  }

  /** Frees an identifier. */
  free(id: number): void {
    this.used.delete(id);
    if (id < this.hint) this.hint = id;
  }
}
