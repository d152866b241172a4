/** Every workload, in report order. */

import type { Workload } from '../workload.js';
import { badInput } from './bad-input.js';
import { cacheCoherence } from './cache-coherence.js';
import { domainContexts } from './domain-contexts.js';
import { hardwareNesting } from './hardware-nesting.js';
import { liveMigration } from './live-migration.js';
import { multipleIoas } from './multiple-ioas.js';
import { noPassthrough } from './no-passthrough.js';
import { pasidAllocation } from './pasid-allocation.js';
import { reservedRegions } from './reserved-regions.js';
import { softwareNesting } from './software-nesting.js';
import { sva } from './sva.js';
import { userspaceDriver } from './userspace-driver.js';
import { viommu } from './viommu.js';

/** The workloads, one per flow of the seeds and the RFC. */
export const WORKLOADS: readonly Workload[] = [
  userspaceDriver,
  multipleIoas,
  softwareNesting,
  hardwareNesting,
  pasidAllocation,
  sva,
  noPassthrough,
  domainContexts,
  reservedRegions,
  badInput,
  cacheCoherence,
  liveMigration,
  viommu,
];
