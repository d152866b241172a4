/**
 * A vEVENTQ's queue (iommufd `iommufd_viommu_report_event` and the read path): at most `depth`
 * events wait; every reported event takes the next sequence number (0 … 2^31 − 1, then 0), and
 * one that does not fit is lost. Lost events leave a single header with
 * `IOMMU_VEVENTQ_FLAG_LOST_EVENTS` at the tail, carrying the sequence number of the latest lost
 * event, so that a reader sees the gap and where it ended.
 */

import { IOMMU_VEVENTQ_FLAG_LOST_EVENTS, type Vevent } from '@ioasid/uapi';

const INT_MAX = 0x7fffffff;
const NO_DATA = new Uint8Array(0);

interface Entry {
  flags: number;
  sequence: number;
  readonly data: Uint8Array;
}

/** The events waiting in one vEVENTQ. */
export class VeventQueue {
  private readonly entries: Entry[] = [];
  private lost: Entry | undefined;
  private events = 0;
  private sequence: number;

  /**
   * @param depth - the most events that wait at once (`veventq_depth`)
   * @param sequence - the first event's sequence number (0, as iommufd starts; tests start near the wrap)
   */
  constructor(
    readonly depth: number,
    sequence = 0,
  ) {
    this.sequence = sequence;
  }

  /** Reports an event (a copy of `data` is queued). */
  push(data: Uint8Array): void {
    const sequence = this.sequence;
    this.sequence = (this.sequence + 1) & INT_MAX;
    if (this.events >= this.depth) {
      if (this.lost === undefined) {
        this.lost = { flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence, data: NO_DATA };
        this.entries.push(this.lost);
      } else {
        this.lost.sequence = sequence;
      }
      return;
    }
    this.entries.push({ flags: 0, sequence, data: data.slice() });
    this.events++;
  }

  /** Takes every waiting entry, oldest first. */
  drain(): Vevent[] {
    const out = this.entries.splice(0).map((e) => ({ flags: e.flags, sequence: e.sequence, data: e.data }));
    this.lost = undefined;
    this.events = 0;
    return out;
  }

  /** Entries waiting (events and a lost-events header). */
  get length(): number {
    return this.entries.length;
  }
}
