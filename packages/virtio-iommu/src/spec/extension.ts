/**
 * **The ioasid extension — NOT part of the virtio specification.**
 *
 * The virtio spec (1.3 and master) has request types 1–5 and feature bits 0–6 only. This file
 * defines a clearly separate, non-standard extension following the seed discussion (a domain
 * holds an anonymous NO-PASID context managed by MAP/UNMAP plus PASID contexts with their own
 * page tables, and domains nest) and the unmerged drafts it borrows from (JPB's 2018
 * "v0.9-devel" ATTACH_TABLE/INVALIDATE, the 2021 RFC's PAGE_RESP and fault PASID fields).
 * Everything here is active only when {@link VIRTIO_IOMMU_F_X_IOASID} is negotiated; without
 * it the device treats these types as unknown and these flag bits as unrecognised.
 *
 * The model (device side):
 * ```
 *  endpoint ──RID──► domain ─┬─ NO PASID context: MAP/UNMAP mappings (absent with F_X_NO_DEFAULT;
 *                            │                    misses are page requests with F_X_IOPF)
 *  endpoint ─PASID─┘         │                    or a page table / CD table (ATTACH_TABLE)
 *                            ├─ PASID p context: page table (ATTACH_TABLE with F_PASID)
 *                            └─ parent domain: table and output addresses are IPAs translated
 *                                              by the parent's MAP/UNMAP mappings (nesting)
 * ```
 * A PASID-tagged request from an endpoint whose PASID is attached on its own (ATTACH with
 * F_X_PASID) uses that domain's NO-PASID context; otherwise it uses the PASID context of the
 * endpoint's RID domain. A domain lives while it has attachments or child domains.
 */

import { put16, put32, put64 } from './bytes.js';
import { TAIL_SIZE } from './requests.js';

/**
 * Feature bit of the extension. Bits 0–6 are taken by the spec; the drafts used 5, 6, 7 and 8
 * for their own ATTACH_TABLE flavours, which collide with MMIO/BYPASS_CONFIG or with one another,
 * so the extension takes the last device-specific bit, 23 (virtio reserves 24 and up for the
 * transport).
 */
export const VIRTIO_IOMMU_F_X_IOASID = 23;

/** Extension ATTACH flag: the domain created by this ATTACH has no anonymous NO-PASID context. */
export const VIRTIO_IOMMU_ATTACH_F_X_NO_DEFAULT = 1 << 1;
/**
 * Extension ATTACH flag: attach the endpoint's PASID given in the (otherwise reserved) le32
 * at offset 16, instead of the endpoint itself.
 */
export const VIRTIO_IOMMU_ATTACH_F_X_PASID = 1 << 2;
/**
 * Extension ATTACH flag: the domain created by this ATTACH reports I/O page faults. A DMA of one
 * of its endpoints that finds no mapping (or a mapping whose flags forbid the access) in the
 * anonymous MAP/UNMAP context is then not a fault but a recoverable page request: the device
 * writes a 24-byte record with {@link VIRTIO_IOMMU_FAULT_F_X_PAGE_REQ} on the eventq and keeps the
 * group pending until PAGE_RESP; after a SUCCESS response and a MAP the endpoint retries. The
 * driver sets it only for endpoints with a PRI capability (the device, like an SMMU taking
 * stalls, has no way to check). ATTACH to an existing domain with a different F_X_IOPF is INVAL,
 * as is F_X_IOPF with BYPASS or F_X_NO_DEFAULT (there is no anonymous context to fault in).
 */
export const VIRTIO_IOMMU_ATTACH_F_X_IOPF = 1 << 3;
/** Offset of the PASID of an ATTACH with F_X_PASID (the spec's `reserved[4]`). */
export const ATTACH_X_PASID = 16;

/** Offset of DETACH's extension `flags` (the first half of the spec's `reserved[8]`). */
export const DETACH_X_FLAGS = 12;
/** Offset of DETACH's extension `pasid`. */
export const DETACH_X_PASID = 16;
/** Extension DETACH flag: detach the endpoint's PASID `pasid` only. */
export const VIRTIO_IOMMU_DETACH_F_X_PASID = 1 << 0;

/** ATTACH_TABLE: attach a guest-managed table to a domain context (type 6, as in the drafts). */
export const VIRTIO_IOMMU_T_ATTACH_TABLE = 6;
/** INVALIDATE: invalidate cached translations and table descriptors (type 7). */
export const VIRTIO_IOMMU_T_INVALIDATE = 7;
/** PAGE_RESP: complete a page-request group (type 8, the 2021 RFC follow-up). */
export const VIRTIO_IOMMU_T_PAGE_RESP = 8;

/**
 * `struct virtio_iommu_req_attach_table` (extension), 80 bytes: domain @4, endpoint @8,
 * flags @12, pasid @16, parent @20, ep_pasid @24, format le16 @28, reserved[2] @30,
 * descriptor[44] @32, tail @76. The request creates `domain` if needed (with no anonymous
 * context, and nested in `parent` with F_PARENT), attaches `endpoint` (or its PASID `ep_pasid`
 * with F_EP_PASID) as ATTACH would, and installs the table in the NO-PASID context, or in the
 * context of PASID `pasid` with F_PASID.
 */
export const ATTACH_TABLE_SIZE = 80;
/** Offset of ATTACH_TABLE `endpoint`. */
export const AT_ENDPOINT = 8;
/** Offset of ATTACH_TABLE `flags`. */
export const AT_FLAGS = 12;
/** Offset of ATTACH_TABLE `pasid`. */
export const AT_PASID = 16;
/** Offset of ATTACH_TABLE `parent`. */
export const AT_PARENT = 20;
/** Offset of ATTACH_TABLE `ep_pasid`. */
export const AT_EP_PASID = 24;
/** Offset of ATTACH_TABLE `format`. */
export const AT_FORMAT = 28;
/** Offset of ATTACH_TABLE `reserved[2]`. */
export const AT_RESERVED = 30;
/** Offset of the format-specific descriptor. */
export const AT_DESC = 32;
/** The table serves PASID `pasid` (else the NO-PASID context). */
export const VIRTIO_IOMMU_ATTACH_TABLE_F_PASID = 1 << 0;
/** The domain is nested in `parent`. */
export const VIRTIO_IOMMU_ATTACH_TABLE_F_PARENT = 1 << 1;
/** Stage-1 translation faults in this table become page requests (I/O page faults). */
export const VIRTIO_IOMMU_ATTACH_TABLE_F_IOPF = 1 << 2;
/** Attach the endpoint's PASID `ep_pasid` rather than the endpoint. */
export const VIRTIO_IOMMU_ATTACH_TABLE_F_EP_PASID = 1 << 3;
/** Every ATTACH_TABLE flag the extension defines. */
export const ATTACH_TABLE_FLAGS =
  VIRTIO_IOMMU_ATTACH_TABLE_F_PASID | VIRTIO_IOMMU_ATTACH_TABLE_F_PARENT | VIRTIO_IOMMU_ATTACH_TABLE_F_IOPF | VIRTIO_IOMMU_ATTACH_TABLE_F_EP_PASID;

/** Format: an Arm LPAE (VMSAv8-64) stage-1 page table (the drafts' `PGTF_ARM_LPAE`). */
export const VIRTIO_IOMMU_X_FORMAT_ARM_LPAE_S1 = 1;
/** Format: an SMMUv3-style PASID table of Context Descriptors (the drafts' `PSTF_ARM_SV3`). */
export const VIRTIO_IOMMU_X_FORMAT_SMMUV3_CD = 2;

/** LPAE descriptor: asid le16 @32, reserved[6] @34, tcr le64 @40 (TCR_EL1 layout), ttbr0 le64 @48, mair le64 @56, reserved @64. */
export const LPAE_ASID = 32;
/** Offset of the LPAE `tcr`. */
export const LPAE_TCR = 40;
/** Offset of the LPAE `ttbr0`. */
export const LPAE_TTBR0 = 48;
/** Offset of the LPAE `mair`. */
export const LPAE_MAIR = 56;

/** CD-table descriptor: s1fmt u8 @32, s1dss u8 @33, reserved[2] @34, s1cdmax le32 @36, s1contextptr le64 @40, reserved @48. */
export const CDT_S1FMT = 32;
/** Offset of `s1dss`. */
export const CDT_S1DSS = 33;
/** Offset of `s1cdmax` (log2 of the number of CDs). */
export const CDT_S1CDMAX = 36;
/** Offset of `s1contextptr`. */
export const CDT_S1CONTEXTPTR = 40;
/** S1DSS: a request without PASID is terminated. */
export const S1DSS_TERMINATE = 0;
/** S1DSS: a request without PASID bypasses stage 1. */
export const S1DSS_BYPASS = 1;
/** S1DSS: a request without PASID uses CD 0. */
export const S1DSS_SSID0 = 2;

/**
 * `struct virtio_iommu_req_invalidate` (extension, the 2018 draft's layout), 64 bytes:
 * scope le16 @4, flags le16 @6, domain le32 @8, pasid le32 @12, id le64 @16, virt_start le64 @24,
 * nr_pages le64 @32, granule u8 @40, reserved[19] @41, tail @60.
 */
export const INVALIDATE_SIZE = 64;
/** Offset of `scope`. */
export const INV_SCOPE = 4;
/** Offset of `flags`. */
export const INV_FLAGS = 6;
/** Offset of `domain`. */
export const INV_DOMAIN = 8;
/** Offset of `pasid`. */
export const INV_PASID = 12;
/** Offset of `id` (ASID/tag; informational). */
export const INV_ID = 16;
/** Offset of `virt_start`. */
export const INV_VIRT_START = 24;
/** Offset of `nr_pages`. */
export const INV_NR_PAGES = 32;
/** Offset of `granule` (log2 of the page size). */
export const INV_GRANULE = 40;
/** Offset of `reserved[19]`. */
export const INV_RESERVED = 41;
/** Scope: every context of the domain. */
export const VIRTIO_IOMMU_INVAL_S_DOMAIN = 1;
/** Scope: one context. */
export const VIRTIO_IOMMU_INVAL_S_PASID = 2;
/** Scope: a VA range of one context. */
export const VIRTIO_IOMMU_INVAL_S_VA = 4;
/** Also drop cached table descriptors (CDs, table configuration). */
export const VIRTIO_IOMMU_INVAL_F_CONFIG = 1 << 0;
/** Only leaf entries changed (a hint; the model drops whole walks anyway). */
export const VIRTIO_IOMMU_INVAL_F_LEAF = 1 << 1;
/** `pasid` is valid (else the NO-PASID context). */
export const VIRTIO_IOMMU_INVAL_F_X_PASID = 1 << 2;

/**
 * `struct virtio_iommu_req_page_resp` (extension), 32 bytes: endpoint @4, flags @8 (bit 0
 * PASID_VALID), pasid @12, grpid @16, code le16 @20, reserved[6] @22, tail @28. Unlike the 2021
 * RFC it has no `domain` field (JPB's review: the endpoint identifies the group).
 */
export const PAGE_RESP_SIZE = 32;
/** Offset of `endpoint`. */
export const PR_ENDPOINT = 4;
/** Offset of `flags`. */
export const PR_FLAGS = 8;
/** Offset of `pasid`. */
export const PR_PASID = 12;
/** Offset of `grpid`. */
export const PR_GRPID = 16;
/** Offset of `code`. */
export const PR_CODE = 20;
/** `pasid` is valid. */
export const VIRTIO_IOMMU_PAGE_RESP_PASID_VALID = 1 << 0;
/** The page is now mapped: retry. */
export const VIRTIO_IOMMU_PAGE_RESP_SUCCESS = 0;
/** The request is invalid: do not retry. */
export const VIRTIO_IOMMU_PAGE_RESP_INVALID = 1;
/** The request failed: the function should stop issuing requests. */
export const VIRTIO_IOMMU_PAGE_RESP_FAILURE = 2;

/** Fault flag (2021 draft): a privileged access. */
export const VIRTIO_IOMMU_FAULT_F_PRIV = 1 << 3;
/** Fault flag (drafts' `FAULT_F_PASID`): `reserved1` holds the PASID. */
export const VIRTIO_IOMMU_FAULT_F_X_PASID = 1 << 9;
/**
 * Fault flag (extension): a recoverable page request. `address` then carries the PCIe Page
 * Request Message's low bits (PCIe Base spec, "Page Request Message"): bit 0 R, bit 1 W,
 * bit 2 L (last of its group), bits 11:3 the Page Request Group Index, bits 63:12 the page.
 */
export const VIRTIO_IOMMU_FAULT_F_X_PAGE_REQ = 1 << 10;

/** Feature-name extension for {@link featureNames}. */
export const EXTENSION_FEATURE_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_IOMMU_F_X_IOASID]: 'VIRTIO_IOMMU_F_X_IOASID (non-standard ioasid extension)',
};

/** Readable size of an extension request. */
export function extensionReadableSize(type: number): number | undefined {
  switch (type) {
    case VIRTIO_IOMMU_T_ATTACH_TABLE:
      return ATTACH_TABLE_SIZE - TAIL_SIZE;
    case VIRTIO_IOMMU_T_INVALIDATE:
      return INVALIDATE_SIZE - TAIL_SIZE;
    case VIRTIO_IOMMU_T_PAGE_RESP:
      return PAGE_RESP_SIZE - TAIL_SIZE;
    default:
      return undefined;
  }
}

/** Fields of an ATTACH_TABLE request. */
export interface AttachTableFields {
  /** Domain ID. */
  readonly domain: number;
  /** Endpoint ID. */
  readonly endpoint: number;
  /** VIRTIO_IOMMU_ATTACH_TABLE_F_*. */
  readonly flags: number;
  /** Context PASID (F_PASID). */
  readonly pasid?: number;
  /** Parent domain (F_PARENT). */
  readonly parent?: number;
  /** Endpoint PASID to attach (F_EP_PASID). */
  readonly epPasid?: number;
  /** VIRTIO_IOMMU_X_FORMAT_*. */
  readonly format: number;
  /** LPAE: ASID, TCR (TCR_EL1 layout), TTBR0, MAIR. */
  readonly lpae?: { readonly asid?: number; readonly tcr: bigint; readonly ttbr0: bigint; readonly mair?: bigint };
  /** CD table: S1Fmt, S1DSS, S1CDMax, S1ContextPtr. */
  readonly cd?: { readonly s1fmt?: number; readonly s1dss: number; readonly s1cdmax: number; readonly s1contextptr: bigint };
}

/** The readable part of an ATTACH_TABLE request. */
export function encodeAttachTable(f: AttachTableFields): Uint8Array {
  const b = new Uint8Array(ATTACH_TABLE_SIZE - TAIL_SIZE);
  b[0] = VIRTIO_IOMMU_T_ATTACH_TABLE;
  put32(b, 4, f.domain);
  put32(b, AT_ENDPOINT, f.endpoint);
  put32(b, AT_FLAGS, f.flags);
  put32(b, AT_PASID, f.pasid ?? 0);
  put32(b, AT_PARENT, f.parent ?? 0);
  put32(b, AT_EP_PASID, f.epPasid ?? 0);
  put16(b, AT_FORMAT, f.format);
  if (f.lpae) {
    put16(b, LPAE_ASID, f.lpae.asid ?? 0);
    put64(b, LPAE_TCR, f.lpae.tcr);
    put64(b, LPAE_TTBR0, f.lpae.ttbr0);
    put64(b, LPAE_MAIR, f.lpae.mair ?? 0n);
  }
  if (f.cd) {
    b[CDT_S1FMT] = f.cd.s1fmt ?? 0;
    b[CDT_S1DSS] = f.cd.s1dss;
    put32(b, CDT_S1CDMAX, f.cd.s1cdmax);
    put64(b, CDT_S1CONTEXTPTR, f.cd.s1contextptr);
  }
  return b;
}

/** Fields of an INVALIDATE request. */
export interface InvalidateFields {
  /** VIRTIO_IOMMU_INVAL_S_*. */
  readonly scope: number;
  /** VIRTIO_IOMMU_INVAL_F_*. */
  readonly flags: number;
  /** Domain ID. */
  readonly domain: number;
  /** PASID (with F_X_PASID). */
  readonly pasid?: number;
  /** First address (VA scope). */
  readonly virtStart?: bigint;
  /** Number of pages (VA scope). */
  readonly nrPages?: bigint;
  /** log2 of the page size (VA scope; 12 = 4 KiB). */
  readonly granule?: number;
}

/** The readable part of an INVALIDATE request. */
export function encodeInvalidate(f: InvalidateFields): Uint8Array {
  const b = new Uint8Array(INVALIDATE_SIZE - TAIL_SIZE);
  b[0] = VIRTIO_IOMMU_T_INVALIDATE;
  put16(b, INV_SCOPE, f.scope);
  put16(b, INV_FLAGS, f.flags);
  put32(b, INV_DOMAIN, f.domain);
  put32(b, INV_PASID, f.pasid ?? 0);
  put64(b, INV_VIRT_START, f.virtStart ?? 0n);
  put64(b, INV_NR_PAGES, f.nrPages ?? 0n);
  b[INV_GRANULE] = f.granule ?? 12;
  return b;
}

/** The readable part of a PAGE_RESP request. */
export function encodePageResp(endpoint: number, pasid: number | undefined, grpid: number, code: number): Uint8Array {
  const b = new Uint8Array(PAGE_RESP_SIZE - TAIL_SIZE);
  b[0] = VIRTIO_IOMMU_T_PAGE_RESP;
  put32(b, PR_ENDPOINT, endpoint);
  put32(b, PR_FLAGS, pasid === undefined ? 0 : VIRTIO_IOMMU_PAGE_RESP_PASID_VALID);
  put32(b, PR_PASID, pasid ?? 0);
  put32(b, PR_GRPID, grpid);
  put16(b, PR_CODE, code);
  return b;
}
