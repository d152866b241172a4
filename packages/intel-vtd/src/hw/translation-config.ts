/**
 * What the context and PASID caches hold: the decoded, validated configuration a request
 * translates with (PGTT, DID, stage pointers and levels, cache tag, FPD). Cache records are
 * refilled in place on a miss (no allocation per fetch), so the fields are writable; only the
 * unit that owns a record ever holds it.
 */

/** A validated translation configuration for one (source id, PASID). */
export class TranslationConfig {
  /** Generation of the cache the record was filled in (live while it equals the cache's). */
  gen = 0;
  /** PGTT (legacy mode: 2 for multi-level, 4 for pass-through). */
  pgtt = 0;
  /** Domain id. */
  did = 0;
  /** The PASID the entry was fetched for (effective PASID; 0 in legacy mode). */
  pasid = 0;
  /** The IOTLB / paging-structure cache tag. */
  tag = 0;
  /** FPD was set on the path (context, directory or PASID entry). */
  fpd = false;
  /** Second-stage root. */
  ssRoot = 0;
  /** Second-stage levels (AW + 2). */
  ssLevels = 0;
  /** Second-stage input address width (30 + 9·AW). */
  ssWidth = 0;
  /** 4 KiB pages below the second-stage input width: 2^(ssWidth − 12). */
  ssPages = 0;
  /** Second-stage accessed/dirty enable. */
  ssade = false;
  /** First-stage root. */
  fsRoot = 0;
  /** First-stage levels (4 or 5). */
  fsLevels = 0;
  /** Supervisor requests enable. */
  sre = false;
  /** Write-protect enable. */
  wpe = false;
  /** Extended accessed flag enable. */
  eafe = false;
}
