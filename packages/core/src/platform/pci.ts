/**
 * PCI endpoint names (`DDDD:BB:DD.F`, as Linux prints them), requester IDs, SR-IOV virtual
 * functions and mediated sub-devices (`DDDD:BB:DD.F/mdevN`).
 */

import { IoasidError, type DeviceSpec, type EndpointDescriptor } from '@ioasid/uapi';

const NAME = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/;
const MDEV = /^(.+)\/mdev(\d+)$/;

/** A parsed `DDDD:BB:DD.F`. */
export interface PciAddress {
  /** Segment (domain). */
  readonly segment: number;
  /** Bus. */
  readonly bus: number;
  /** Device (0–31). */
  readonly device: number;
  /** Function (0–7). */
  readonly fn: number;
}

/** Parses `DDDD:BB:DD.F`; a malformed name is EINVAL. */
export function parsePciName(name: string, argument = 'name'): PciAddress {
  const m = NAME.exec(name);
  if (m === null) {
    throw new IoasidError('EINVAL', argument, `'${name}' is not a PCI function name of the form DDDD:BB:DD.F`);
  }
  const device = parseInt(m[3]!, 16);
  if (device > 31) throw new IoasidError('EINVAL', argument, `'${name}': device number ${device} is above 31`);
  return { segment: parseInt(m[1]!, 16), bus: parseInt(m[2]!, 16), device, fn: parseInt(m[4]!, 10) };
}

/** Formats a PCI address as `DDDD:BB:DD.F`. */
export function formatPciName(segment: number, bus: number, devfn: number): string {
  const h = (v: number, w: number) => v.toString(16).padStart(w, '0');
  return `${h(segment, 4)}:${h(bus, 2)}:${h(devfn >> 3, 2)}.${devfn & 7}`;
}

/** Splits `parent/mdevN` into its parent name and index, or undefined for a plain name. */
export function parseMdevName(name: string): { readonly parent: string; readonly index: number } | undefined {
  const m = MDEV.exec(name);
  return m === null ? undefined : { parent: m[1]!, index: parseInt(m[2]!, 10) };
}

/**
 * Expands the system's device list into endpoint descriptors: each PF, its VFs (routing IDs
 * PF RID + 1 + i, VF offset 1 and stride 1 as SR-IOV allows) and its mediated sub-devices.
 * Duplicate routing IDs are EEXIST.
 */
export function expandDevices(devices: readonly (string | DeviceSpec)[]): EndpointDescriptor[] {
  const out: EndpointDescriptor[] = [];
  const seen = new Map<string, string>();
  const add = (d: EndpointDescriptor) => {
    const key = d.kind === 'mdev' ? d.name : `${d.segment}:${d.rid}`;
    const other = seen.get(key);
    if (other !== undefined) {
      throw new IoasidError('EEXIST', 'devices', `${d.name} has the same requester ID as ${other}`);
    }
    seen.set(key, d.name);
    out.push(d);
  };
  for (const entry of devices) {
    const spec: DeviceSpec = typeof entry === 'string' ? { name: entry } : entry;
    const a = parsePciName(spec.name, 'devices');
    const devfn = (a.device << 3) | a.fn;
    const rid = (a.bus << 8) | devfn;
    const pasid = spec.pasid ?? true;
    const pri = spec.pri ?? true;
    add({ name: spec.name, segment: a.segment, bus: a.bus, devfn, rid, kind: 'pf', parent: undefined, pasid, pri });
    const vfs = spec.vfs ?? 0;
    for (let i = 1; i <= vfs; i++) {
      const vrid = rid + i;
      if (vrid > 0xffff) throw new IoasidError('EINVAL', 'devices', `${spec.name}: VF ${i} is beyond bus 255`);
      const vbus = vrid >> 8;
      const vdevfn = vrid & 0xff;
      add({
        name: formatPciName(a.segment, vbus, vdevfn), segment: a.segment, bus: vbus, devfn: vdevfn, rid: vrid,
        kind: 'vf', parent: spec.name, pasid, pri,
      });
    }
    for (let i = 0; i < (spec.mdevs ?? 0); i++) {
      add({ name: `${spec.name}/mdev${i}`, segment: a.segment, bus: a.bus, devfn, rid, kind: 'mdev', parent: spec.name, pasid, pri: false });
    }
  }
  return out;
}
