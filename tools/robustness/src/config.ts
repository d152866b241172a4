/**
 * Run-length configuration: `npm test` runs a bounded number of fast-check cases, `npm run fuzz`
 * (`IOASID_FUZZ=long`) a long one. Every property is seeded, so a failure reproduces with the
 * seed and path fast-check prints; `IOASID_FUZZ_SEED` replaces the base seed.
 */

/** `'long'` under `IOASID_FUZZ=long`, else `'bounded'`. */
export const FUZZ_MODE: 'bounded' | 'long' = process.env['IOASID_FUZZ'] === 'long' ? 'long' : 'bounded';

/** The base seed of every property (each property mixes in its own name). */
export const FUZZ_SEED: number = Number.parseInt(process.env['IOASID_FUZZ_SEED'] ?? '', 10) || 0x10a51d;

/** `bounded` runs in `npm test`, `long` runs under `IOASID_FUZZ=long`. */
export function runs(bounded: number, long: number): number {
  return FUZZ_MODE === 'long' ? long : bounded;
}

/** A 31-bit FNV-1a hash of a name (to give each property its own seed). */
export function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 1;
}

/** fast-check parameters for a property: its seed (base seed ⊕ name) and its number of runs. */
export function fcParams(name: string, bounded: number, long: number): { seed: number; numRuns: number } {
  return { seed: (FUZZ_SEED ^ nameHash(name)) | 0, numRuns: runs(bounded, long) };
}
