/**
 * Pinned pages: a run of a process's pages pinned once and shared by every area that maps them
 * (a MAP, the COPYs of it, prereg, software-nested children), like iommufd's `iopt_pages`. The
 * pin is dropped when the last user lets go.
 */

import type { Process } from '../platform/process.js';

/** A pinned run of process pages. */
export class Pages {
  /** Frame numbers of the pinned pages, in order. */
  readonly pfns: Uint32Array;
  private users = 1;

  /**
   * Pins `count` pages from `vaddr`. All or nothing (EFAULT/ENOMEM from the process).
   * @param process - whose memory
   * @param vaddr - first page
   * @param count - pages
   * @param writable - pinned for device writes
   */
  constructor(
    readonly process: Process,
    readonly vaddr: bigint,
    readonly count: number,
    readonly writable: boolean,
  ) {
    this.pfns = new Uint32Array(count);
    process.pin(vaddr, count, writable, this.pfns, 0);
  }

  /** Adds a user. */
  get(): this {
    this.users++;
    return this;
  }

  /** Drops a user; the last one unpins. */
  put(): void {
    if (--this.users === 0) this.process.unpin(this.pfns, 0, this.count);
  }
}

/** A slice of a {@link Pages} run used by one area. */
export interface PageSlice {
  /** The pinned run. */
  readonly pages: Pages;
  /** First page of the slice inside the run. */
  readonly offset: number;
  /** Pages in the slice. */
  readonly count: number;
}
