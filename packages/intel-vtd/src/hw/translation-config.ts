/**
 * What the context and PASID caches hold: the decoded, validated configuration a request
 * translates with (PGTT, DID, stage pointers and levels, cache tag, FPD).
 */

/** A validated translation configuration for one (source id, PASID). */
export interface TranslationConfig {
  /** PGTT (legacy mode: 2 for multi-level, 4 for pass-through). */
  readonly pgtt: number;
  /** Domain id. */
  readonly did: number;
  /** The PASID the entry was fetched for (effective PASID; 0 in legacy mode). */
  readonly pasid: number;
  /** The IOTLB / paging-structure cache tag. */
  readonly tag: number;
  /** FPD was set on the path (context, directory or PASID entry). */
  readonly fpd: boolean;
  /** Second-stage root, levels and input width in bits. */
  readonly ssRoot: number;
  /** Second-stage levels (AW + 2). */
  readonly ssLevels: number;
  /** Second-stage input address width (30 + 9·AW). */
  readonly ssWidth: number;
  /** 4 KiB pages below the second-stage input width: 2^(ssWidth − 12). */
  readonly ssPages: number;
  /** Second-stage accessed/dirty enable. */
  readonly ssade: boolean;
  /** First-stage root. */
  readonly fsRoot: number;
  /** First-stage levels (4 or 5). */
  readonly fsLevels: number;
  /** Supervisor requests enable. */
  readonly sre: boolean;
  /** Write-protect enable. */
  readonly wpe: boolean;
  /** Extended accessed flag enable. */
  readonly eafe: boolean;
}
