/**
 * A fault queue (iommufd FAULT object): recoverable I/O page faults of the HWPTs that use it,
 * read as `iommu_hwpt_pgfault` records and answered per group by cookie.
 */

import {
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IoasidError,
  type EndpointDescriptor,
  type IommuPageRequest,
  type ObjectId,
  type PageFault,
} from '@ioasid/uapi';

/** A group waiting for its response. */
export interface PendingGroup {
  /** The endpoint the driver must answer. */
  readonly endpoint: EndpointDescriptor;
  /** PASID of the group. */
  readonly pasid: number | undefined;
  /** Group index. */
  readonly grpid: number;
}

/** One fault queue. */
export class FaultQueue {
  /** Object id. */
  readonly id: ObjectId;
  private readonly unread: PageFault[] = [];
  private readonly groups = new Map<number, PendingGroup>();
  private nextCookie = 1;
  /** HWPTs using the queue. */
  users = 0;

  /** @param id - the object id */
  constructor(id: ObjectId) {
    this.id = id;
  }

  /**
   * Queues a page request of a device.
   * @param devId - the device id the record names
   * @param request - the request as the driver reported it (wire PASID)
   * @param pasid - the PASID the record names (the user's; differs from the wire for an mdev)
   */
  push(devId: ObjectId, request: IommuPageRequest, pasid: number | undefined): void {
    let cookie = 0;
    // A group is identified as the hardware identifies it: requester, wire PASID, group index
    // (an mdev's user-visible PASID differs from the wire PASID its group is answered on).
    for (const [c, g] of this.groups) {
      if (g.endpoint === request.endpoint && g.pasid === request.pasid && g.grpid === request.grpid) cookie = c;
    }
    if (cookie === 0) {
      cookie = this.nextCookie++;
      this.groups.set(cookie, { endpoint: request.endpoint, pasid: request.pasid, grpid: request.grpid });
    }
    this.unread.push({
      flags: (pasid === undefined ? 0 : IOMMU_PGFAULT_FLAGS_PASID_VALID) | (request.last ? IOMMU_PGFAULT_FLAGS_LAST_PAGE : 0),
      devId,
      pasid: pasid ?? 0,
      grpid: request.grpid,
      perm: request.perm,
      addr: request.addr,
      length: 4096,
      cookie,
    });
  }

  /** Takes the unread records. */
  read(): PageFault[] {
    return this.unread.splice(0, this.unread.length);
  }

  /** Removes and returns the group of a cookie (EINVAL when unknown). */
  take(cookie: number): PendingGroup {
    const g = this.groups.get(cookie);
    if (g === undefined) throw new IoasidError('EINVAL', 'cookie', `no fault group with cookie ${cookie} is pending`);
    this.groups.delete(cookie);
    return g;
  }

  /** Groups still waiting for a response. */
  pending(): PendingGroup[] {
    return [...this.groups.values()];
  }
}
