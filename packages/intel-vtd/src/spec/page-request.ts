/**
 * Page request descriptors (VT-d spec §7.5.1; Linux prq.c `struct page_req_dsc`): 32 bytes in
 * the page request queue.
 */

/** Bytes per page request descriptor. */
export const PRQ_DESC_SIZE = 32;
/** Descriptor type of a page request. */
export const PRQ_TYPE_PAGE_REQUEST = 1;

/** A decoded page request descriptor. */
export interface PageRequestDescriptor {
  /** qw0 [7:0]: descriptor type (1). */
  readonly type: number;
  /** qw0 bit 8: PASID present. */
  readonly pasidPresent: boolean;
  /** qw0 [31:16]: requester id. */
  readonly rid: number;
  /** qw0 [51:32]: PASID. */
  readonly pasid: number;
  /** qw0 bit 52: execute requested. */
  readonly exeReq: boolean;
  /** qw0 bit 53: privileged mode requested. */
  readonly pmReq: boolean;
  /** qw1 bit 0: read requested. */
  readonly rdReq: boolean;
  /** qw1 bit 1: write requested. */
  readonly wrReq: boolean;
  /** qw1 bit 2: last page in group. */
  readonly lpig: boolean;
  /** qw1 [11:3]: page request group index. */
  readonly prgIndex: number;
  /** qw1 [63:12]: page address. */
  readonly addr: bigint;
}

/** Encodes a page request descriptor's qw0/qw1 (qw2/qw3, private data, are zero). */
export function encodePageRequest(d: Omit<PageRequestDescriptor, 'type'> & { type?: number }): [bigint, bigint] {
  const qw0 =
    BigInt((d.type ?? PRQ_TYPE_PAGE_REQUEST) & 0xff) |
    (d.pasidPresent ? 1n << 8n : 0n) |
    (BigInt(d.rid & 0xffff) << 16n) |
    (BigInt(d.pasid & 0xfffff) << 32n) |
    (d.exeReq ? 1n << 52n : 0n) |
    (d.pmReq ? 1n << 53n : 0n);
  const qw1 =
    (d.addr & ~0xfffn) | (BigInt(d.prgIndex & 0x1ff) << 3n) | (d.lpig ? 4n : 0n) | (d.wrReq ? 2n : 0n) | (d.rdReq ? 1n : 0n);
  return [qw0, qw1];
}

/** Decodes a page request descriptor from its first four dwords. */
export function decodePageRequest(dw: ArrayLike<number>): PageRequestDescriptor {
  const d0 = dw[0]!;
  const d1 = dw[1]!;
  const d2 = dw[2]!;
  return {
    type: d0 & 0xff,
    pasidPresent: (d0 & 0x100) !== 0,
    rid: (d0 >>> 16) & 0xffff,
    pasid: d1 & 0xfffff,
    exeReq: (d1 & (1 << 20)) !== 0,
    pmReq: (d1 & (1 << 21)) !== 0,
    rdReq: (d2 & 1) !== 0,
    wrReq: (d2 & 2) !== 0,
    lpig: (d2 & 4) !== 0,
    prgIndex: (d2 >>> 3) & 0x1ff,
    addr: (BigInt(dw[3]!) << 32n) | BigInt((d2 & 0xfffff000) >>> 0),
  };
}
