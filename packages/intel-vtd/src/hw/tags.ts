/**
 * Cache tags shared by the IOTLB and the paging-structure cache: a DID plus a PASID tag. In
 * scalable mode, second-stage-only (PGTT 010b) and legacy translations are tagged by DID
 * alone (PASID tag 0); first-stage, nested and pass-through translations by DID and PASID
 * (PASID tag = PASID + 1).
 */

/** 2^21: room for PASID tags 0 … 2^20. */
const PASID_TAG_SPAN = 2097152;

/** Composes a cache tag from a DID and a PASID tag (exact as a number). */
export function cacheTag(did: number, pasidTag: number): number {
  return did * PASID_TAG_SPAN + pasidTag;
}

/** The DID of a cache tag. */
export function tagDid(tag: number): number {
  return Math.floor(tag / PASID_TAG_SPAN);
}

/** The PASID tag of a cache tag (0: DID-tagged). */
export function tagPasid(tag: number): number {
  return tag % PASID_TAG_SPAN;
}

/** Page-size index 0/1/2 → 4 KiB, 2 MiB, 1 GiB: pages of 4 KiB per entry. */
export const PAGES_PER_SIZE = [1, 512, 262144] as const;
