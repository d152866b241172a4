import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { GuestMemory, InvalidateEntry } from '@ioasid/uapi';
import { GUEST_MAX_TLBI_OPS, smmuV3NestingGuest, smmuV3NestingGuestWith } from './nesting-guest.js';

/** A sparse guest memory: pages handed out upwards from `base`. */
function sparseMemory(base: bigint) {
  const words = new Map<bigint, bigint>();
  let next = base;
  const mem: GuestMemory = {
    read64: (gpa) => words.get(gpa) ?? 0n,
    write64: (gpa, v) => {
      expect(gpa % 8n).toBe(0n);
      words.set(gpa, v);
    },
    alloc: (bytes = 4096) => {
      const at = next;
      next += BigInt(Math.max(4096, bytes));
      return at;
    },
  };
  return { mem, words };
}

const cmds = (entries: InvalidateEntry[]) => entries.map((e) => (e.type === 'arm_smmuv3' ? e.cmd : undefined));

describe('smmuV3NestingGuest (guest-side CD table, stage-1 table, raw commands)', () => {
  const G = 0x4000_0000n;

  it('builds a vSTE with only the upstream-accepted fields, pointing at a one-CD linear table', () => {
    const { mem, words } = sparseMemory(G);
    const s1 = smmuV3NestingGuest.create(mem);
    expect(smmuV3NestingGuest.format).toBe('arm_smmuv3');
    // Pages: G = stage-1 root (level 0), G + 0x1000 = the CD table.
    const cdTable = G + 0x1000n;
    // qword 0: V [0] | Config [3:1] = 0b101 (S1 translate) | S1Fmt [5:4] = 0 (linear) |
    // S1ContextPtr [51:6] | S1CDMax [63:59] = 0 (one CD).
    // qword 1: S1DSS [1:0] = 0 | S1CIR [3:2] = 1 (WBWA) | S1COR [5:4] = 1 | S1CSH [7:6] = 3 (ISH).
    expect(s1.data).toEqual({ type: 'arm_smmuv3', ste: [1n | (5n << 1n) | cdTable, (1n << 2n) | (1n << 4n) | (3n << 6n)] });
    // Inside upstream's STRTAB_STE_0/1_NESTING_ALLOWED masks.
    const ste = s1.data.type === 'arm_smmuv3' ? s1.data.ste : [0n, 0n];
    expect(ste[0] & ~0xf80fffffffffffffn).toBe(0n);
    expect(ste[1] & ~0x380000ffn).toBe(0n);
    // CD qword 0: T0SZ 16 | TG0 4K (0) | IR0 1 [9:8] | OR0 1 [11:10] | SH0 3 [13:12] | EPD1 [30] |
    // V [31] | IPS 5 (48 bits) [34:32] | AA64 [41] | R [45] | A [46] | ASET [47] | ASID 1 [63:48].
    expect(words.get(cdTable)).toBe(
      16n | (1n << 8n) | (1n << 10n) | (3n << 12n) | (1n << 30n) | (1n << 31n) | (5n << 32n) | (1n << 41n) | (1n << 45n) | (1n << 46n) | (1n << 47n) | (1n << 48n),
    );
    expect(words.get(cdTable + 8n)).toBe(G); // TTB0 = the level-0 table
    expect(words.get(cdTable + 24n)).toBe(0xf404ff44n); // MAIR0: io-pgtable's MAIR
  });

  it('map writes 4-level table descriptors and a stage-1 page descriptor; unmap clears it', () => {
    const { mem, words } = sparseMemory(G);
    const s1 = smmuV3NestingGuest.create(mem);
    const page = 0x4010_5000n;
    s1.map(0x8040_3000n, page, true);
    // IOVA 0x8040_3000: [47:39] = 0, [38:30] = 2, [29:21] = 0x402 & 0x1ff = 2, [20:12] = 0x80403 & 0x1ff = 3.
    const l1 = G + 0x2000n; // tables come after the root and the CD table
    const l2 = G + 0x3000n;
    const l3 = G + 0x4000n;
    expect(words.get(G + 0n * 8n)).toBe(l1 | 3n);
    expect(words.get(l1 + 2n * 8n)).toBe(l2 | 3n);
    expect(words.get(l2 + 2n * 8n)).toBe(l3 | 3n);
    // Page: OA | 0b11 | AttrIndx 1 [4:2] | AP[1] (EL0) [6] | SH 3 [9:8] | AF [10] | nG [11].
    expect(words.get(l3 + 3n * 8n)).toBe(page | 3n | (1n << 2n) | (1n << 6n) | (3n << 8n) | (1n << 10n) | (1n << 11n));
    // Read-only: AP[2] [7] as well. The same tables are reused.
    s1.map(0x8040_4000n, page + 0x1000n, false);
    expect(words.get(l3 + 4n * 8n)).toBe((page + 0x1000n) | 3n | (1n << 2n) | (3n << 6n) | (3n << 8n) | (1n << 10n) | (1n << 11n));
    expect(mem.alloc()).toBe(G + 0x5000n);
    s1.unmap(0x8040_3000n);
    expect(words.get(l3 + 3n * 8n)).toBe(0n);
    s1.unmap(0x7000_0000_0000n); // nothing mapped there: no table is allocated
    expect(mem.alloc()).toBe(G + 0x6000n);
    expect(() => {
      s1.map(1n << 48n, page, true);
    }).toThrow(RangeError);
    expect(() => {
      s1.map(0x1001n, page, true);
    }).toThrow(RangeError);
  });

  it('invalidateRange: CMD_TLBI_NH_VA per page with the ASID and Leaf; ASID-wide beyond 512 pages', () => {
    const s1 = smmuV3NestingGuest.create(sparseMemory(G).mem);
    // TLBI_NH_VA (0x12), ASID [63:48] = 1, VMID 0 (the host forces its own); qword 1 = Address | Leaf.
    expect(cmds(s1.invalidateRange(0x10800n, 0x1000n))).toEqual([
      [0x12n | (1n << 48n), 0x10000n | 1n],
      [0x12n | (1n << 48n), 0x11000n | 1n],
    ]);
    expect(cmds(s1.invalidateRange(0n, BigInt(GUEST_MAX_TLBI_OPS) * 0x1000n))).toHaveLength(GUEST_MAX_TLBI_OPS);
    expect(cmds(s1.invalidateRange(0n, BigInt(GUEST_MAX_TLBI_OPS + 1) * 0x1000n))).toEqual([[0x11n | (1n << 48n), 0n]]);
    expect(cmds(s1.invalidateRange(0n, 2n ** 64n - 1n))).toEqual([[0x11n | (1n << 48n), 0n]]);
    // invalidateAll: TLBI_NH_ASID (0x11).
    expect(cmds(s1.invalidateAll())).toEqual([[0x11n | (1n << 48n), 0n]]);
  });

  it('with RIL, range TLBIs (TG 4K, NUM/SCALE); with a StreamID, invalidateAll adds CMD_CFGI_CD_ALL', () => {
    const guest = smmuV3NestingGuestWith({ asid: 7, rangeInvalidation: true, streamId: 0x10 });
    const s1 = guest.create(sparseMemory(G).mem);
    // 3 pages: NUM [16:12] = 2, SCALE [24:20] = 0 → (2 + 1) << 0 pages; TG [11:10] = 1 (4K), Leaf.
    expect(cmds(s1.invalidateRange(0x20000n, 0x3000n))).toEqual([[0x12n | (2n << 12n) | (7n << 48n), 0x20000n | (1n << 10n) | 1n]]);
    // 1 page with TTL 0: NUM = SCALE = 0 is reserved, so two pages: NUM 0, SCALE 1.
    expect(cmds(s1.invalidateRange(0x20000n, 0x1000n))).toEqual([[0x12n | (1n << 20n) | (7n << 48n), 0x20000n | (1n << 10n) | 1n]]);
    // CMD_CFGI_CD_ALL (0x06) with StreamID [63:32], then TLBI_NH_ASID.
    expect(cmds(s1.invalidateAll())).toEqual([
      [0x06n | (0x10n << 32n), 0n],
      [0x11n | (7n << 48n), 0n],
    ]);
  });

  it('src/guest imports only the spec layer and @ioasid/uapi (no hw, no driver)', () => {
    const dir = dirname(fileURLToPath(import.meta.url));
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const src = readFileSync(join(dir, f), 'utf8');
      const specs = [...src.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]!);
      expect(specs.length).toBeGreaterThan(0);
      for (const s of specs) expect(s.startsWith('../spec/') || s === '@ioasid/uapi' || s.startsWith('./'), `${f} imports ${s}`).toBe(true);
    }
  });
});
