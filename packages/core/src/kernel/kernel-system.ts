/** What a context needs of the system it was opened on. */

import type { EndpointDescriptor, HwInfo, IommuDriver, Process as ProcessApi } from '@ioasid/uapi';
import type { PhysicalMemory } from '../platform/physical-memory.js';
import type { Process } from '../platform/process.js';
import type { Context } from './context.js';
import type { DeviceObject } from './objects.js';
import type { PasidAllocator } from './pasid-allocator.js';

/** The system-wide state contexts share. */
export interface KernelSystem {
  /** Backend name. */
  readonly backend: string;
  /** Physical memory (with the fail_nth injector). */
  readonly memory: PhysicalMemory;
  /** The backend's driver. */
  readonly driver: IommuDriver;
  /** The PASID space. */
  readonly pasids: PasidAllocator;
  /** Bound endpoints: name → owner. */
  readonly owners: Map<string, { readonly context: Context; readonly device: DeviceObject }>;
  /** Open contexts. */
  readonly contexts: Set<Context>;
  /** An endpoint by name (EINVAL malformed, ENOENT unknown). */
  endpoint(name: string, argument: string): EndpointDescriptor;
  /** Hardware information of an endpoint (cached). */
  info(endpoint: EndpointDescriptor): HwInfo;
  /** True when some endpoint can use a system-wide PASID. */
  hasGlobalPasid(): boolean;
  /** The platform process behind a process handle (EINVAL if foreign). */
  processOf(process: ProcessApi): Process;
  /** The process's SVA PASID (allocated system-wide on first use), with a reference taken. */
  getSvaPasid(process: Process): number;
  /** Drops a reference taken by getSvaPasid. */
  putSvaPasid(process: Process): void;
}
