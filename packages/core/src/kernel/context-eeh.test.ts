import { describe, expect, it } from 'vitest';
import {
  VFIO_EEH_PE_GET_STATE,
  VFIO_EEH_PE_INJECT_ERR,
  VFIO_EEH_PE_STATE_STOPPED,
  VFIO_EEH_PE_UNFREEZE_DMA,
  type EndpointDescriptor,
} from '@ioasid/uapi';
import { DEV_A, DEV_B, expectNoChange, world } from '../test/harness.js';

describe('VFIO_EEH_PE_OP (PAPR partitionable endpoints)', () => {
  function eehWorld() {
    const calls: [string, number][] = [];
    const eeh = (ep: EndpointDescriptor, op: number) => {
      calls.push([ep.name, op]);
      return op === VFIO_EEH_PE_GET_STATE ? VFIO_EEH_PE_STATE_STOPPED : 0;
    };
    return { ...world([{ name: DEV_A, mdevs: 1 }, DEV_B], { eeh }), calls };
  }

  it('carries the op to the driver with the device\'s RID and returns what the platform says', () => {
    const w = eehWorld();
    const d = w.ctx.bindDevice(DEV_A);
    expect(w.ctx.eehPeOp(d, VFIO_EEH_PE_GET_STATE)).toBe(VFIO_EEH_PE_STATE_STOPPED);
    expect(w.ctx.eehPeOp(d, VFIO_EEH_PE_UNFREEZE_DMA)).toBe(0);
    expect(w.calls).toEqual([[DEV_A, 4], [DEV_A, 3]]);
  });

  it('an op outside 0..9 is EINVAL (op); an unknown device ENOENT (dev); neither reaches the driver', () => {
    const w = eehWorld();
    const d = w.ctx.bindDevice(DEV_A);
    for (const op of [-1, VFIO_EEH_PE_INJECT_ERR + 1, 2.5, Number.NaN]) expectNoChange(w, () => w.ctx.eehPeOp(d, op), 'EINVAL', { argument: 'op' });
    expectNoChange(w, () => w.ctx.eehPeOp(999, VFIO_EEH_PE_GET_STATE), 'ENOENT', { argument: 'dev' });
    expect(w.calls).toEqual([]);
  });

  it('a mediated device has no PE of its own (EINVAL); a platform without EEH is EOPNOTSUPP', () => {
    const w = eehWorld();
    const m = w.ctx.bindDevice(`${DEV_A}/mdev0`);
    expectNoChange(w, () => w.ctx.eehPeOp(m, VFIO_EEH_PE_GET_STATE), 'EINVAL', { argument: 'dev' });
    const plain = world();
    const d = plain.ctx.bindDevice(DEV_A);
    expectNoChange(plain, () => plain.ctx.eehPeOp(d, VFIO_EEH_PE_GET_STATE), 'EOPNOTSUPP', { argument: 'dev' });
    expect(w.calls).toEqual([]);
  });
});
