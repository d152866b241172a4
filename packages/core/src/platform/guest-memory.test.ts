import { describe, expect, it } from 'vitest';
import { PhysicalMemory } from './physical-memory.js';
import { Process } from './process.js';
import { ProcessGuestMemory } from './guest-memory.js';

describe('ProcessGuestMemory', () => {
  it('reads and writes little-endian words at guest-physical addresses of a process buffer', () => {
    const proc = new Process(new PhysicalMemory({ size: 1n << 30n }), undefined);
    const buf = proc.mmap(0x20000n);
    const mem = new ProcessGuestMemory(proc, buf, 0x4000_0000n, 0x20000n);
    mem.write64(0x4000_0008n, 0x1122334455667788n);
    expect([...proc.read(buf + 8n, 8)]).toEqual([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    expect(mem.read64(0x4000_0008n)).toBe(0x1122334455667788n);
    expect(() => mem.read64(0x4002_0000n)).toThrow(/EFAULT/);
  });
  it('allocates zeroed, naturally aligned blocks after the reserved data area, until memory runs out', () => {
    const proc = new Process(new PhysicalMemory({ size: 1n << 30n }), undefined);
    const buf = proc.mmap(0x20000n);
    proc.write(buf + 0x10000n, Uint8Array.of(0xff));
    const mem = new ProcessGuestMemory(proc, buf, 0x4000_0000n, 0x20000n);
    const a = mem.alloc();
    expect(a).toBe(0x4001_0000n);
    expect(mem.read64(a)).toBe(0n); // zeroed
    const b = mem.alloc(0x2000);
    expect(b).toBe(0x4001_2000n); // 8 KiB aligned
    expect(() => mem.alloc(0x10000)).toThrow(/ENOMEM/);
  });
});
