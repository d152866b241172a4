/**
 * Sends requests and turns their status into errnos the way Linux's virtio-iommu driver does
 * (`viommu_get_req_errno`; a used length of 0 is IOERR → EIO).
 */

import { IoasidError } from '@ioasid/uapi';
import { STATUS_NAMES, VIRTIO_IOMMU_S_IOERR, VIRTIO_IOMMU_S_OK, statusErrno } from '../spec/status.js';
import { TAIL_SIZE } from '../spec/requests.js';
import type { VirtioIommuTransport } from './transport.js';

/** Requests sent, by type (for reports and tests). */
export type RequestLog = Map<number, number>;

/** The request queue of one device. */
export class RequestChannel {
  /** Requests sent, by type. */
  readonly sent: RequestLog = new Map();

  /** @param transport - the device */
  constructor(private readonly transport: VirtioIommuTransport) {}

  /** Sends a request; returns the status (IOERR when the device wrote nothing). */
  status(readable: Uint8Array, writableLength = TAIL_SIZE): number {
    const type = readable[0]!;
    this.sent.set(type, (this.sent.get(type) ?? 0) + 1);
    const w = this.transport.request(readable, writableLength);
    return w.length < TAIL_SIZE ? VIRTIO_IOMMU_S_IOERR : w[w.length - TAIL_SIZE]!;
  }

  /** Sends a request; throws an IoasidError naming `argument` unless the status is OK. */
  send(readable: Uint8Array, argument: string, what: string): void {
    const s = this.status(readable);
    if (s !== VIRTIO_IOMMU_S_OK) throw failure(s, argument, what);
  }

  /** Sends a request with a larger writable part; returns it (or throws as `send`). */
  exchange(readable: Uint8Array, writableLength: number, argument: string, what: string): Uint8Array {
    const type = readable[0]!;
    this.sent.set(type, (this.sent.get(type) ?? 0) + 1);
    const w = this.transport.request(readable, writableLength);
    const s = w.length < TAIL_SIZE ? VIRTIO_IOMMU_S_IOERR : w[w.length - TAIL_SIZE]!;
    if (s !== VIRTIO_IOMMU_S_OK) throw failure(s, argument, what);
    return w;
  }
}

/** The IoasidError for a failed request. */
export function failure(status: number, argument: string, what: string): IoasidError {
  return new IoasidError(statusErrno(status), argument, `${what}: the device answered ${STATUS_NAMES[status] ?? `status ${status}`}`);
}
