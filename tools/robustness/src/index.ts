/**
 * `@ioasid/robustness`: isolation and robustness of every ioasid backend — the reference model
 * of what each device × PASID may reach, the differential harness that drives a backend and the
 * model in lockstep, fail_nth loops, state snapshots, and the run counters.
 *
 * @packageDocumentation
 */
export * from './config.js';
export * from './stats.js';
export * from './backends.js';
export * from './model.js';
export * from './differential.js';
export * from './snapshot.js';
export * from './fail-nth.js';
export * from './watched-memory.js';
