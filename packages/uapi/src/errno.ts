/**
 * Kernel errno names and numbers (Linux asm-generic/errno-base.h and errno.h), the ones the
 * ioasid uAPI returns, and {@link IoasidError}, the one error type every operation throws.
 */

/** errno name → number, as Linux defines them. */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  E2BIG: 7,
  EBADF: 9,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  ERANGE: 34,
  EDEADLK: 35,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EOVERFLOW: 75,
  ETIMEDOUT: 110,
} as const;

/** An errno name that the uAPI may return. */
export type ErrnoName = keyof typeof ERRNO;

/**
 * The error every ioasid operation throws. `errno` is the kernel's name (`'ENOENT'`), `code`
 * the number (2), `argument` the name of the argument at fault (`'ioas'`, `'length'` …), and the
 * message says both and why. A call that throws has changed nothing.
 */
export class IoasidError extends Error {
  /** The errno name, e.g. `'EINVAL'`. */
  readonly errno: ErrnoName;
  /** The errno number, e.g. 22. */
  readonly code: number;
  /** The argument at fault, when one is. */
  readonly argument: string | undefined;
  /**
   * For a failed user invalidation (`invalidateHwpt`): how many entries were handled before
   * the one that failed — what iommufd writes back to `entry_num`. Undefined elsewhere.
   */
  readonly handled: number | undefined;

  /**
   * @param errno - the errno name
   * @param argument - the argument at fault (or undefined when no argument is)
   * @param reason - why, in a few words
   * @param details - `handled`: entries handled before a failed user invalidation
   */
  constructor(errno: ErrnoName, argument: string | undefined, reason: string, details?: { readonly handled?: number }) {
    super(`${errno} (${ERRNO[errno]})${argument === undefined ? '' : ` [${argument}]`}: ${reason}`);
    this.name = 'IoasidError';
    this.errno = errno;
    this.code = ERRNO[errno];
    this.argument = argument;
    this.handled = details?.handled;
  }
}

/** Throws an {@link IoasidError}; handy in expressions. */
export function fail(errno: ErrnoName, argument: string | undefined, reason: string): never {
  throw new IoasidError(errno, argument, reason);
}

/** True when `e` is an {@link IoasidError}, optionally with the given errno. */
export function isIoasidError(e: unknown, errno?: ErrnoName): e is IoasidError {
  return e instanceof IoasidError && (errno === undefined || e.errno === errno);
}
