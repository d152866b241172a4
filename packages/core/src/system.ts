/**
 * The system factory backends plug into: physical memory, processes, PCI endpoints and the
 * uAPI, wired to one backend's hardware model and driver.
 */

import {
  IOMMUFD_PAGE_RESP_INVALID,
  IoasidError,
  type BackendDefinition,
  type BackendInstance,
  type DmaFault,
  type DmaRequest,
  type Endpoint,
  type EndpointDescriptor,
  type HwInfo,
  type IoasidSystem,
  type IommuDriver,
  type IommuPageRequest,
  type Process as ProcessApi,
  type SystemOptions,
} from '@ioasid/uapi';
import { Context } from './kernel/context.js';
import type { KernelSystem } from './kernel/kernel-system.js';
import type { DeviceObject } from './kernel/objects.js';
import { PasidAllocator } from './kernel/pasid-allocator.js';
import { checkDmaInto, dmaResultOf } from './platform/dma-buffers.js';
import { PhysicalMemory } from './platform/physical-memory.js';
import { expandDevices, parseMdevName, parsePciName } from './platform/pci.js';
import { Process } from './platform/process.js';

const BLOCKED_MDEV = (iova: bigint, why: string): DmaFault => ({ class: 'blocked', name: 'MDEV_BLOCKED', code: 0, iova, record: { reason: why } });

/** A simulated machine with one backend. */
export class System implements IoasidSystem, KernelSystem {
  /** Backend name (package name without scope). */
  readonly backend: string;
  /** Physical memory. */
  readonly memory: PhysicalMemory;
  /** The backend's driver. */
  readonly driver: IommuDriver;
  /** The backend's hardware model(s), for tests and reports. */
  readonly hardware: unknown;
  /** The fail_nth injector every allocation site consults. */
  get failNth() {
    return this.memory.failNth;
  }
  /** The PASID space. */
  readonly pasids = new PasidAllocator();
  /** Bound endpoints. */
  readonly owners = new Map<string, { readonly context: Context; readonly device: DeviceObject }>();
  /** Open contexts. */
  readonly contexts = new Set<Context>();
  private readonly descriptors = new Map<string, EndpointDescriptor>();
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly infos = new Map<string, HwInfo>();
  private readonly processes = new Set<Process>();
  private readonly svaPasids = new Map<Process, { pasid: number; refs: number }>();
  private readonly instance: BackendInstance;

  /**
   * @param definition - the backend
   * @param options - devices and memory size
   */
  constructor(private readonly definition: BackendDefinition, options: SystemOptions) {
    this.backend = definition.name;
    this.memory = new PhysicalMemory(options.memorySize === undefined ? {} : { size: options.memorySize });
    const all = expandDevices(options.devices);
    for (const d of all) this.descriptors.set(d.name, d);
    this.instance = definition.create({
      memory: this.memory,
      endpoints: all.filter((d) => d.kind !== 'mdev'),
      reportPageRequest: (r) => {
        this.routePageRequest(r);
      },
    });
    this.driver = this.instance.driver;
    this.hardware = this.instance.hardware;
    const instance = this.instance;
    for (const d of all) {
      if (d.kind === 'mdev') {
        this.endpoints.set(d.name, {
          descriptor: d,
          dma: (req) => dmaResultOf(req, (into) => this.mdevDmaInto(d, req, into)),
          dmaInto: (req, into) => this.mdevDmaInto(d, req, checkDmaInto(req, into)),
        });
        continue;
      }
      this.endpoints.set(d.name, {
        descriptor: d,
        dma: (req) => dmaResultOf(req, (into) => instance.dmaInto(d, req, into)),
        // The hot path: a buffer that is long enough goes straight to the model (a read's size
        // compared as given: `into.length >= size` implies it for the rounded-down size too);
        // anything else takes checkDmaInto, which decides or throws EINVAL.
        dmaInto: (req, into) =>
          into !== undefined && (req.write || into.length >= req.size) ? instance.dmaInto(d, req, into) : instance.dmaInto(d, req, checkDmaInto(req, into)),
      });
    }
  }

  /** Creates a process (no locked-memory limit unless one is given). */
  createProcess(options: { readonly lockedMemoryLimit?: bigint } = {}): Process {
    const p = new Process(this.memory, this.definition.cpuPageTable, options);
    this.processes.add(p);
    return p;
  }

  /** Opens /dev/ioasid for a process. */
  open(process: ProcessApi): Context {
    const ctx = new Context(this, this.processOf(process));
    this.contexts.add(ctx);
    return ctx;
  }

  /** An endpoint by name. */
  device(name: string): Endpoint {
    this.endpoint(name, 'name');
    return this.endpoints.get(name)!;
  }

  /** Every endpoint name. */
  deviceNames(): string[] {
    return [...this.descriptors.keys()];
  }

  /** An endpoint descriptor by name (EINVAL malformed, ENOENT unknown). */
  endpoint(name: string, argument: string): EndpointDescriptor {
    const d = this.descriptors.get(name);
    if (d !== undefined) return d;
    const m = parseMdevName(name);
    parsePciName(m === undefined ? name : m.parent, argument);
    throw new IoasidError('ENOENT', argument, `no device ${name} on this system`);
  }

  /** Hardware information of an endpoint (cached). */
  info(endpoint: EndpointDescriptor): HwInfo {
    let i = this.infos.get(endpoint.name);
    if (i === undefined) this.infos.set(endpoint.name, (i = this.driver.hwInfo(endpoint)));
    return i;
  }

  /** True when some endpoint supports system-wide PASIDs. */
  hasGlobalPasid(): boolean {
    for (const d of this.descriptors.values()) if (d.kind !== 'mdev' && this.info(d).globalPasid) return true;
    return false;
  }

  /** The platform process behind a handle. */
  processOf(process: ProcessApi): Process {
    if (!(process instanceof Process) || !this.processes.has(process)) {
      throw new IoasidError('EINVAL', 'process', 'the process does not belong to this system');
    }
    return process;
  }

  /** The process's SVA PASID, allocated system-wide on first use (Linux: mm->pasid). */
  getSvaPasid(process: Process): number {
    let e = this.svaPasids.get(process);
    if (e === undefined) {
      e = { pasid: this.pasids.allocGlobal(process), refs: 0 };
      this.svaPasids.set(process, e);
    }
    e.refs++;
    return e.pasid;
  }

  /** Drops a reference to the process's SVA PASID. */
  putSvaPasid(process: Process): void {
    const e = this.svaPasids.get(process);
    if (e !== undefined && --e.refs === 0) {
      this.svaPasids.delete(process);
      this.pasids.free(process, e.pasid);
    }
  }

  private mdevDmaInto(d: EndpointDescriptor, req: DmaRequest, into: Uint8Array): DmaFault | undefined {
    const owner = this.owners.get(d.name);
    if (owner === undefined) return BLOCKED_MDEV(req.iova, `${d.name} is not bound`);
    const dev = owner.device;
    const wire = req.pasid === undefined ? dev.mdevPasid : dev.vpasids.get(req.pasid);
    if (wire === undefined) return BLOCKED_MDEV(req.iova, `PASID ${req.pasid ?? '-'} is not attached on ${d.name}`);
    const parent = this.descriptors.get(d.parent!)!;
    return this.instance.dmaInto(parent, { ...req, pasid: wire }, into);
  }

  private routePageRequest(r: IommuPageRequest): void {
    for (const { context, device } of this.owners.values()) {
      if (device.rid.name !== r.endpoint.name) continue;
      if (device.endpoint.kind === 'mdev') {
        if (r.pasid === undefined) continue;
        if (r.pasid !== device.mdevPasid && ![...device.vpasids.values()].includes(r.pasid)) continue;
      }
      if (context.routePageRequest(device, r)) return;
    }
    // Nobody listens: the kernel answers the group as failed (iommu_report_device_fault).
    if (r.last) this.driver.pageResponse(r.endpoint, r.pasid, r.grpid, IOMMUFD_PAGE_RESP_INVALID);
  }
}

/**
 * Creates a system with one backend: `createSystem(vtdBackend(), { devices: ['0000:00:02.0'] })`.
 * Backend packages wrap it as createVtdSystem, createSmmuV3System, …
 */
export function createSystem(definition: BackendDefinition, options: SystemOptions): System {
  return new System(definition, options);
}
