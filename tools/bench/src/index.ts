/**
 * `@ioasid/bench`: the benchmark suite behind `npm run bench`.
 *
 * @packageDocumentation
 */
export { ReferenceWalker } from './reference.js';
export { benchBackend, benchReference, type Result } from './suite.js';
export { BACKEND_LOADERS, type BenchBackend } from './backends.js';
export { timeBatch, timeOnce, type Figure } from './measure.js';
