/**
 * Pinned pages: a run of a process's pages pinned once and shared by every area that maps them
 * (a MAP, the COPYs of it, prereg, software-nested children), like iommufd's `iopt_pages`. Each
 * page counts the areas (and the registration) that use it, and is unpinned as soon as none
 * does: a COPY of part of a MAP keeps only the pages it maps pinned once the MAP is gone.
 */

import type { Process } from '../platform/process.js';

/** A pinned run of process pages. */
export class Pages {
  /** Frame numbers of the pinned pages, in order. */
  readonly pfns: Uint32Array;
  /** Users of each page; a page is pinned while its count is non-zero. */
  private readonly refs: Uint32Array;

  /**
   * Pins `count` pages from `vaddr`, each with one user (the creator). All or nothing
   * (EFAULT/ENOMEM from the process).
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
    this.refs = new Uint32Array(count).fill(1);
  }

  /** Adds a user to pages `[offset, offset+count)` (which must still be pinned); returns the run. */
  get(offset: number, count: number): this {
    for (let i = offset; i < offset + count; i++) this.refs[i]!++;
    return this;
  }

  /** Drops a user of pages `[offset, offset+count)`; pages left without users are unpinned. */
  put(offset: number, count: number): void {
    let run = -1; // start of a run of pages to unpin
    for (let i = offset; i <= offset + count; i++) {
      const last = i === offset + count;
      const free = !last && --this.refs[i]! === 0;
      if (free && run < 0) run = i;
      if (!free && run >= 0) {
        this.process.unpin(this.pfns, run, i - run);
        run = -1;
      }
    }
  }

  /** Users of one page (for tests). */
  users(page: number): number {
    return this.refs[page]!;
  }
}

/** A slice of a {@link Pages} run used by one area: the area holds one user of each page in it. */
export interface PageSlice {
  /** The pinned run. */
  readonly pages: Pages;
  /** First page of the slice inside the run. */
  readonly offset: number;
  /** Pages in the slice. */
  readonly count: number;
}
