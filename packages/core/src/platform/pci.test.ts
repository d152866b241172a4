import { describe, expect, it } from 'vitest';
import { expectErrno, world } from '../test/harness.js';
import { expandDevices, formatPciName, parseMdevName, parsePciName } from './pci.js';

describe('contract: PCI endpoint names DDDD:BB:DD.F', () => {
  it('contract: parsePciName reads segment, bus, device and function in hex (function 0-7)', () => {
    expect(parsePciName('0000:00:02.0')).toEqual({ segment: 0, bus: 0, device: 2, fn: 0 });
    expect(parsePciName('abcd:ef:1f.7')).toEqual({ segment: 0xabcd, bus: 0xef, device: 0x1f, fn: 7 });
  });

  it('contract: a malformed name is EINVAL, naming the argument', () => {
    for (const bad of [
      '', '0000:00:02', '0000:00:02.', '000:00:02.0', '00000:00:02.0', '0000:0:02.0', '0000:00:2.0', '0000:00:02.8',
      '0000:00:20.0', // device 32
      'g000:00:02.0', '0000-00-02.0', ' 0000:00:02.0', '0000:00:02.0 ', '0000:00:02.0/mdev0', '0000:00:02.01',
    ]) {
      expectErrno(() => parsePciName(bad, 'devname'), 'EINVAL', 'devname');
    }
  });

  it('contract: formatPciName prints what parsePciName reads, lower-case and zero-padded', () => {
    expect(formatPciName(0x1f, 0x3, (0x1e << 3) | 5)).toBe('001f:03:1e.5');
    const a = parsePciName(formatPciName(0xabcd, 0xef, 0xff));
    expect(a).toEqual({ segment: 0xabcd, bus: 0xef, device: 31, fn: 7 });
  });

  it('contract: SR-IOV VFs take the requester IDs after their PF (offset 1, stride 1), crossing devices and buses', () => {
    const eps = expandDevices([{ name: '0000:00:1f.6', vfs: 3 }]);
    expect(eps.map((e) => [e.name, e.rid, e.kind, e.parent])).toEqual([
      ['0000:00:1f.6', 0xfe, 'pf', undefined],
      ['0000:00:1f.7', 0xff, 'vf', '0000:00:1f.6'],
      ['0000:01:00.0', 0x100, 'vf', '0000:00:1f.6'],
      ['0000:01:00.1', 0x101, 'vf', '0000:00:1f.6'],
    ]);
    expect(eps[2]).toMatchObject({ bus: 1, devfn: 0 });
  });

  it('contract: a VF beyond bus 255 is EINVAL; two functions with one requester ID are EEXIST', () => {
    expectErrno(() => expandDevices([{ name: '0000:ff:1f.7', vfs: 1 }]), 'EINVAL', 'devices');
    expectErrno(() => expandDevices([{ name: '0000:00:02.0', vfs: 1 }, '0000:00:02.1']), 'EEXIST', 'devices');
    // the same RID in another segment is another function
    expect(expandDevices(['0000:00:02.0', '0001:00:02.0'])).toHaveLength(2);
  });

  it('contract: mediated sub-devices are named parent/mdevN, share the parent RID, and carry no PRI of their own', () => {
    const eps = expandDevices([{ name: '0000:00:04.0', mdevs: 2, pri: true }]);
    expect(eps.map((e) => [e.name, e.rid, e.kind, e.parent, e.pri])).toEqual([
      ['0000:00:04.0', 0x20, 'pf', undefined, true],
      ['0000:00:04.0/mdev0', 0x20, 'mdev', '0000:00:04.0', false],
      ['0000:00:04.0/mdev1', 0x20, 'mdev', '0000:00:04.0', false],
    ]);
    expect(parseMdevName('0000:00:04.0/mdev1')).toEqual({ parent: '0000:00:04.0', index: 1 });
    expect(parseMdevName('0000:00:04.0')).toBeUndefined();
  });

  it('contract: the PASID and PRI capabilities default to present and can be switched off per function', () => {
    const [pf, vf] = expandDevices([{ name: '0000:00:02.0', vfs: 1, pasid: false, pri: false }]);
    expect([pf!.pasid, pf!.pri, vf!.pasid, vf!.pri]).toEqual([false, false, false, false]);
    const [d] = expandDevices(['0000:00:02.0']);
    expect([d!.pasid, d!.pri]).toEqual([true, true]);
  });

  it('contract: the system lists every endpoint and finds each by name; a malformed name is EINVAL, an absent one ENOENT', () => {
    const w = world([{ name: '0000:00:02.0', vfs: 1, mdevs: 1 }]);
    expect(w.system.deviceNames()).toEqual(['0000:00:02.0', '0000:00:02.1', '0000:00:02.0/mdev0']);
    expect(w.system.device('0000:00:02.1').descriptor.kind).toBe('vf');
    expectErrno(() => w.system.device('0000:00:02'), 'EINVAL', 'name');
    expectErrno(() => w.system.device('0000:00:03.0'), 'ENOENT', 'name');
    expectErrno(() => world(['00:02.0']), 'EINVAL', 'devices'); // a system with a malformed device
  });
});
