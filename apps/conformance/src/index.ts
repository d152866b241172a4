/**
 * `@ioasid/conformance`: the same uAPI workloads on every backend, and reports that compare them.
 *
 * @packageDocumentation
 */
export { WORKLOADS } from './workloads/index.js';
export { runConformance, runOne, type RunOptions } from './runner.js';
export { loadBackends, defaultBackendModules, type BackendEntry, type BackendManifest, type BackendVariant } from './registry.js';
export { writeReports, type WrittenReports } from './write.js';
export { renderHtml } from './report/html.js';
export { renderMarkdown } from './report/markdown.js';
export { renderJunit } from './report/junit.js';
export { compareReports, renderChanges, type Change } from './report/compare.js';
export { mergeReports, asReport } from './report/merge.js';
export * from './report/schema.js';
export { ok, errno, data, fault, StepRecorder, probeInfo, describeExpectation } from './workload.js';
export type { Expectation, StepResult, StepStatus, Workload, WorkloadRun } from './workload.js';
export { main } from './main.js';
