import { describe, expect, it } from 'vitest';
import { ERRNO, IoasidError, fail, isIoasidError } from './errno.js';

describe('errno table', () => {
  it('uses the Linux numbers (asm-generic/errno-base.h, errno.h)', () => {
    expect(ERRNO).toMatchObject({
      EPERM: 1, ENOENT: 2, EIO: 5, ENOMEM: 12, EFAULT: 14, EBUSY: 16, EEXIST: 17, EINVAL: 22,
      ENOSPC: 28, ERANGE: 34, EDEADLK: 35, EOVERFLOW: 75, EMSGSIZE: 90, EOPNOTSUPP: 95, EADDRINUSE: 98,
    });
  });
});

describe('IoasidError', () => {
  it('carries the errno name, number and the argument at fault', () => {
    const e = new IoasidError('ENOENT', 'ioas', 'no such object');
    expect(e).toBeInstanceOf(Error);
    expect(e.errno).toBe('ENOENT');
    expect(e.code).toBe(2);
    expect(e.argument).toBe('ioas');
    expect(e.message).toContain('ENOENT');
    expect(e.message).toContain('ioas');
    expect(e.name).toBe('IoasidError');
  });
  it('a failed user invalidation carries the entries handled (entry_num); other errors leave it undefined', () => {
    expect(new IoasidError('EIO', 'entries[3]', 'refused', { handled: 3 }).handled).toBe(3);
    expect(new IoasidError('EINVAL', 'iova', 'misaligned').handled).toBeUndefined();
  });
  it('fail() throws and isIoasidError() recognises the errno', () => {
    let caught: unknown;
    try {
      fail('EBUSY', 'id', 'in use');
    } catch (e) {
      caught = e;
    }
    expect(isIoasidError(caught, 'EBUSY')).toBe(true);
    expect(isIoasidError(caught, 'EINVAL')).toBe(false);
    expect(isIoasidError(new Error('x'))).toBe(false);
  });
});
