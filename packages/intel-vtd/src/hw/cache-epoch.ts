/**
 * A change counter shared by the caches whose contents decide how a request resolves (the
 * context and PASID caches): every insertion and invalidation bumps it. The unit remembers
 * its last resolution and last translation together with the epoch they were made in; while
 * the epoch is the same, no cache they came from has changed, so the same request resolves
 * and translates the same way (and the remembered answer is exactly what the caches would
 * give). One integer compare replaces the lookups.
 */
export class CacheEpoch {
  /** Bumped by every change of a cache that shares this epoch. */
  value = 0;
}
