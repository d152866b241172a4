import { describe, expect, it } from 'vitest';
import { IoasidError } from '@ioasid/uapi';
import { StepRecorder, data, errno, fault, ok } from './workload.js';

describe('StepRecorder: expectation vs outcome', () => {
  it('a step that behaves as expected passes; with a reason it is a divergence', () => {
    const r = new StepRecorder();
    expect(r.step('plain', ok(), () => 42)).toBe(42);
    r.step('refused as predicted', errno('EOPNOTSUPP', 'no PASIDs'), () => {
      throw new IoasidError('EOPNOTSUPP', 'pasid', 'no');
    });
    expect(r.steps.map((s) => s.status)).toEqual(['pass', 'divergence']);
    expect(r.steps[1]!.reason).toBe('no PASIDs');
    expect(r.steps[1]!.actual).toBe('EOPNOTSUPP');
  });
  it('a step whose behaviour contradicts its expectation fails, naming both', () => {
    const r = new StepRecorder();
    const got = r.step('should work', ok(), (): number => {
      throw new IoasidError('EINVAL', 'x', 'bad');
    });
    expect(got).toBeUndefined();
    r.step('should be refused', errno('EBUSY'), () => 1);
    r.step('wrong errno', errno('EBUSY'), () => {
      throw new IoasidError('ENOENT', 'x', 'missing');
    });
    r.step('not an IoasidError', ok(), () => {
      throw new TypeError('boom');
    });
    expect(r.steps.map((s) => [s.status, s.actual])).toEqual([
      ['fail', 'EINVAL'],
      ['fail', 'ok'],
      ['fail', 'ENOENT'],
      ['fail', 'exception'],
    ]);
    expect(r.steps[0]!.reason).toBe('expected ok, got EINVAL');
  });
  it('DMA results are compared byte for byte and by fault class', () => {
    const r = new StepRecorder();
    r.dma('read', { ok: true, data: Uint8Array.of(1, 2, 3) }, data([1, 2, 3]));
    r.dma('read wrong', { ok: true, data: Uint8Array.of(1, 2, 4) }, data([1, 2, 3]));
    r.dma('write', { ok: true, data: new Uint8Array(0) }, ok());
    const f = { ok: false as const, fault: { class: 'permission' as const, name: 'F_PERMISSION', code: 0x13, iova: 0x1000n, record: {} } };
    r.dma('fault', f, fault(['translation', 'permission']));
    r.dma('fault wrong', f, fault('translation'));
    expect(r.steps.map((s) => s.status)).toEqual(['pass', 'fail', 'pass', 'pass', 'fail']);
    expect(r.steps[3]!.detail).toBe('F_PERMISSION (19) at 0x1000');
  });
});
