import { describe, expect, it } from 'vitest';
import { IOMMU_VEVENTQ_FLAG_LOST_EVENTS } from '@ioasid/uapi';
import { VeventQueue } from './vevent-queue.js';

describe('§2.6 vEVENTQ: depth, sequence numbers and lost events', () => {
  it('events come out oldest first with sequence numbers 0, 1, 2 …; reading empties the queue', () => {
    const q = new VeventQueue(4);
    q.push(Uint8Array.of(1));
    q.push(Uint8Array.of(2));
    expect(q.drain()).toEqual([
      { flags: 0, sequence: 0, data: Uint8Array.of(1) },
      { flags: 0, sequence: 1, data: Uint8Array.of(2) },
    ]);
    expect(q.drain()).toEqual([]);
    q.push(Uint8Array.of(3));
    expect(q.drain()[0]!.sequence).toBe(2);
  });

  it('the queued data is a copy: the reporter may reuse its buffer', () => {
    const q = new VeventQueue(2);
    const buf = Uint8Array.of(7, 7);
    q.push(buf);
    buf.fill(0);
    expect(q.drain()[0]!.data).toEqual(Uint8Array.of(7, 7));
  });

  it('beyond depth events are lost: one trailing header with LOST_EVENTS and the last lost sequence; the gap shows', () => {
    const q = new VeventQueue(2);
    for (let i = 0; i < 5; i++) q.push(Uint8Array.of(i));
    // events 0 and 1 fit; 2, 3, 4 are lost — one header with sequence 4
    expect(q.drain()).toEqual([
      { flags: 0, sequence: 0, data: Uint8Array.of(0) },
      { flags: 0, sequence: 1, data: Uint8Array.of(1) },
      { flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 4, data: new Uint8Array(0) },
    ]);
    // after the read there is room again; the sequence goes on from 5
    q.push(Uint8Array.of(9));
    expect(q.drain()).toEqual([{ flags: 0, sequence: 5, data: Uint8Array.of(9) }]);
  });

  it('the sequence wraps from 2^31 − 1 to 0', () => {
    const q = new VeventQueue(4, 0x7ffffffe);
    for (let i = 0; i < 3; i++) q.push(Uint8Array.of(i));
    expect(q.drain().map((e) => e.sequence)).toEqual([0x7ffffffe, 0x7fffffff, 0]);
  });
});
