/**
 * Allocation-failure injection in the style of iommufd's fail_nth: arm it with n, and the n-th
 * allocation from then on (a table frame, a pin, an object id …) fails with ENOMEM, once.
 */

import { IoasidError } from '@ioasid/uapi';

/** A fail_nth injector shared by every allocation site of one system. */
export class FailNth {
  private countdown = 0;
  private fired = false;
  /** Allocation sites passed since the injector was last armed. */
  calls = 0;

  /** Makes the n-th allocation from now (n ≥ 1) fail; 0 disarms. */
  arm(n: number): void {
    this.countdown = n;
    this.fired = false;
    this.calls = 0;
  }

  /** Disarms the injector. */
  disarm(): void {
    this.countdown = 0;
  }

  /** True once the armed failure has fired. */
  get hasFired(): boolean {
    return this.fired;
  }

  /** Called at every allocation site: throws ENOMEM when this is the armed one. */
  check(site: string): void {
    if (this.countdown === 0) return;
    this.calls++;
    if (--this.countdown === 0) {
      this.fired = true;
      throw new IoasidError('ENOMEM', undefined, `injected allocation failure at ${site}`);
    }
  }
}
