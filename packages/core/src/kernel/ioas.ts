/**
 * An I/O address space: the IOVA → pinned-pages map (areas), mirrored into every paging HWPT
 * attached to it. Every change is all-or-nothing: a domain that fails half way through is
 * rolled back, so the areas, the pins and every domain stay exactly as before.
 */

import type { DriverDomain, IovaRange, ObjectId } from '@ioasid/uapi';
import { AreaTree } from './area-tree.js';
import type { PageSlice } from './pages.js';

const PAGE = 4096n;

/** One mapping of an IOAS. */
export interface Area {
  /** First IOVA. */
  readonly start: bigint;
  /** Last IOVA (inclusive). */
  readonly last: bigint;
  /** Frames of the area's pages, in IOVA order. */
  readonly pfns: Uint32Array;
  /** The pinned runs behind `pfns`, in IOVA order (the area holds one user of each page in them). */
  readonly slices: readonly PageSlice[];
  /** IOMMU_READ | IOMMU_WRITE. */
  readonly prot: number;
  /** For a MAP: the process virtual address; for a software-nested child: the parent IOVA. */
  readonly source: bigint | undefined;
  /** Areas of nested children (or COPYs) that depend on this one being present. */
  users: number;
  /** The parent-IOAS areas this area (of a software-nested child) depends on. */
  readonly dependsOn: readonly Area[];
}

/** An IOAS. */
export class Ioas {
  /** The areas. */
  readonly areas = new AreaTree<Area>();
  /** Domains of paging HWPTs mirroring this IOAS. */
  readonly domains = new Set<DriverDomain>();
  /** ALLOW_IOVAS list (undefined: none set). */
  allowed: IovaRange[] | undefined;
  /** Software-nested children. */
  children = 0;

  /**
   * @param id - the object id
   * @param parent - the parent IOAS of a software-nested child
   */
  constructor(
    readonly id: ObjectId,
    readonly parent: Ioas | undefined,
  ) {}

  /** Maps `area` into `domains`; on failure unmaps what it mapped and rethrows. */
  private mapInto(area: Area, domains: Iterable<DriverDomain>): void {
    const done: DriverDomain[] = [];
    const count = Number((area.last - area.start + 1n) / PAGE);
    try {
      for (const d of domains) {
        d.map(area.start, area.pfns, count, area.prot);
        done.push(d);
      }
    } catch (e) {
      for (const d of done) d.unmap(area.start, area.last - area.start + 1n);
      throw e;
    }
  }

  /** Adds an area (mapped into every domain); the caller has checked it overlaps nothing. */
  insert(area: Area): void {
    this.mapInto(area, this.domains);
    this.areas.insert(area);
    for (const dep of area.dependsOn) dep.users++;
  }

  /** Removes an area: unmaps it from every domain and drops its pins. */
  remove(area: Area): void {
    for (const d of this.domains) d.unmap(area.start, area.last - area.start + 1n);
    this.areas.remove(area);
    for (const dep of area.dependsOn) dep.users--;
    for (const s of area.slices) s.pages.put(s.offset, s.count);
  }

  /** Starts mirroring into a new domain: maps every area (all or nothing). */
  addDomain(domain: DriverDomain): void {
    const done: Area[] = [];
    try {
      for (const a of this.areas.items()) {
        this.mapInto(a, [domain]);
        done.push(a);
      }
    } catch (e) {
      for (const a of done) domain.unmap(a.start, a.last - a.start + 1n);
      throw e;
    }
    this.domains.add(domain);
  }

  /** Stops mirroring into a domain (the domain is about to be freed). */
  removeDomain(domain: DriverDomain): void {
    this.domains.delete(domain);
  }
}
