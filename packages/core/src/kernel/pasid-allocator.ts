/**
 * The system's PASID allocator (20-bit space, PASID 0 = the RID's own space). It serves both
 * ways the seeds discuss: a global PASID asked for with its property — usable on a set of
 * devices, or system-wide as ENQCMD needs (one value valid on every device and IOMMU unit) —
 * and a per-device PASID chosen at attach. Values are owned (by a context, a process's SVA
 * binding, or a mediated device) and released by their owner.
 */

import { IoasidError, PASID_MAX } from '@ioasid/uapi';

/** Who holds a PASID. */
export type PasidOwner = object;

/** The system-wide PASID space. */
export class PasidAllocator {
  /** pasid → owner, for system-wide (global) PASIDs. */
  private readonly global = new Map<number, PasidOwner>();
  /** device key → pasid → owner. */
  private readonly perDevice = new Map<string, Map<number, PasidOwner>>();
  /** pasid → number of devices using it (for choosing system-wide values). */
  private readonly anyUse = new Map<number, number>();

  /** @param max - the largest PASID value (2^bits − 1) */
  constructor(private readonly max = PASID_MAX) {}

  private deviceMap(key: string): Map<number, PasidOwner> {
    let m = this.perDevice.get(key);
    if (m === undefined) this.perDevice.set(key, (m = new Map<number, PasidOwner>()));
    return m;
  }

  private take(key: string, pasid: number, owner: PasidOwner): void {
    this.deviceMap(key).set(pasid, owner);
    this.anyUse.set(pasid, (this.anyUse.get(pasid) ?? 0) + 1);
  }

  /** A system-wide PASID, free on every device (ENQCMD); ENOSPC when the space is full. */
  allocGlobal(owner: PasidOwner): number {
    for (let p = 1; p <= this.max; p++) {
      if (!this.global.has(p) && !this.anyUse.has(p)) {
        this.global.set(p, owner);
        return p;
      }
    }
    throw new IoasidError('ENOSPC', 'pasid', 'the PASID space is exhausted');
  }

  /** A PASID free on each of the devices (and not global), reserved on them. */
  allocForDevices(owner: PasidOwner, keys: readonly string[]): number {
    for (let p = 1; p <= this.max; p++) {
      if (this.global.has(p)) continue;
      if (keys.every((k) => !this.perDevice.get(k)?.has(p))) {
        for (const k of keys) this.take(k, p, owner);
        return p;
      }
    }
    throw new IoasidError('ENOSPC', 'pasid', 'no PASID is free on every device asked for');
  }

  /** The lowest PASID free on one device (not global); reserved for `owner`. */
  allocForDevice(owner: PasidOwner, key: string): number {
    return this.allocForDevices(owner, [key]);
  }

  /** The owner of `pasid` on a device (global or per-device), if any. */
  ownerOn(key: string, pasid: number): PasidOwner | undefined {
    return this.global.get(pasid) ?? this.perDevice.get(key)?.get(pasid);
  }

  /** True when `owner` may use `pasid` on the device: it holds it there or globally, or nobody does. */
  usableBy(owner: PasidOwner, key: string, pasid: number): boolean {
    const o = this.ownerOn(key, pasid);
    return o === undefined || o === owner;
  }

  /** Marks `pasid` used by `owner` on a device, when nobody holds it (attach with an explicit PASID). */
  claim(owner: PasidOwner, key: string, pasid: number): boolean {
    if (this.ownerOn(key, pasid) !== undefined) return false;
    this.take(key, pasid, owner);
    return true;
  }

  /** Releases one device's use of `pasid`. */
  releaseOn(key: string, pasid: number): void {
    const m = this.perDevice.get(key);
    if (m?.delete(pasid) === true) {
      const n = (this.anyUse.get(pasid) ?? 1) - 1;
      if (n === 0) this.anyUse.delete(pasid);
      else this.anyUse.set(pasid, n);
    }
  }

  /** Frees a PASID the owner allocated (global or per-device); ENOENT when it holds none. */
  free(owner: PasidOwner, pasid: number): void {
    let found = false;
    if (this.global.get(pasid) === owner) {
      this.global.delete(pasid);
      found = true;
    }
    for (const [key, m] of this.perDevice) {
      if (m.get(pasid) === owner) {
        this.releaseOn(key, pasid);
        found = true;
      }
    }
    if (!found) throw new IoasidError('ENOENT', 'pasid', `PASID ${pasid} was not allocated by this owner`);
  }

  /** Frees everything an owner holds. */
  releaseAll(owner: PasidOwner): void {
    for (const [p, o] of [...this.global]) if (o === owner) this.global.delete(p);
    for (const [key, m] of this.perDevice) for (const [p, o] of [...m]) if (o === owner) this.releaseOn(key, p);
  }

  /** Is `pasid` a global PASID of `owner`? */
  isGlobalOf(owner: PasidOwner, pasid: number): boolean {
    return this.global.get(pasid) === owner;
  }
}
