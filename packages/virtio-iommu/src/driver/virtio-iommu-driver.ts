/**
 * The virtio-iommu driver, written like Linux's drivers/iommu/virtio-iommu.c: it negotiates
 * features, reads the config, PROBEs every endpoint, allocates domain IDs in domain_range,
 * maps IOAS areas with MAP requests, attaches with ATTACH/DETACH, and — only when the device
 * offers the non-standard VIRTIO_IOMMU_F_X_IOASID extension — attaches PASIDs, guest tables
 * (nesting) and process page tables (SVA) with the extension's requests. It reaches the device
 * only through {@link VirtioIommuTransport}: bytes in, bytes out.
 */

import {
  IOMMU_HW_INFO_TYPE_NONE, IOMMU_PGFAULT_PERM_EXEC, IOMMU_PGFAULT_PERM_PRIV, IOMMU_PGFAULT_PERM_READ, IOMMU_PGFAULT_PERM_WRITE,
  IoasidError, PASID_BITS, U64_MAX, type DriverDomain, type EndpointDescriptor, type HwInfo, type HwptData, type IommuDriver,
  type IommuPageRequest, type IovaRange, type PagingDomainOptions, type ProcessMm, type ReservedRegion,
} from '@ioasid/uapi';
import { lpaeTcr, TCR_T0SZ_MASK } from '../spec/arm-lpae.js';
import { CONFIG_BYPASS, decodeConfig, pageSizesOf, type VirtioIommuConfig } from '../spec/config.js';
import {
  DETACH_X_FLAGS, DETACH_X_PASID, EXTENSION_FEATURE_NAMES, S1DSS_SSID0, VIRTIO_IOMMU_ATTACH_F_X_NO_DEFAULT,
  VIRTIO_IOMMU_ATTACH_F_X_IOPF, VIRTIO_IOMMU_ATTACH_F_X_PASID, VIRTIO_IOMMU_ATTACH_TABLE_F_EP_PASID, VIRTIO_IOMMU_ATTACH_TABLE_F_IOPF,
  VIRTIO_IOMMU_ATTACH_TABLE_F_PARENT, VIRTIO_IOMMU_ATTACH_TABLE_F_PASID, VIRTIO_IOMMU_DETACH_F_X_PASID,
  VIRTIO_IOMMU_FAULT_F_PRIV, VIRTIO_IOMMU_FAULT_F_X_PAGE_REQ, VIRTIO_IOMMU_FAULT_F_X_PASID, VIRTIO_IOMMU_F_X_IOASID,
  VIRTIO_IOMMU_PAGE_RESP_INVALID, VIRTIO_IOMMU_PAGE_RESP_SUCCESS, VIRTIO_IOMMU_X_FORMAT_ARM_LPAE_S1,
  VIRTIO_IOMMU_X_FORMAT_SMMUV3_CD, encodeAttachTable, encodePageResp,
} from '../spec/extension.js';
import { VIRTIO_IOMMU_FAULT_F_EXEC, VIRTIO_IOMMU_FAULT_F_READ, VIRTIO_IOMMU_FAULT_F_WRITE, decodeFault, type VirtioIommuFaultRecord } from '../spec/fault.js';
import {
  VIRTIO_F_VERSION_1, VIRTIO_IOMMU_F_BYPASS_CONFIG, VIRTIO_IOMMU_F_DOMAIN_RANGE, VIRTIO_IOMMU_F_INPUT_RANGE,
  VIRTIO_IOMMU_F_MAP_UNMAP, VIRTIO_IOMMU_F_MMIO, VIRTIO_IOMMU_F_PROBE, featureBit, featureNames, hasFeature,
} from '../spec/features.js';
import { VIRTIO_IOMMU_RESV_MEM_T_MSI, parseProperties, type ProbeProperty, type ResvMem } from '../spec/probe.js';
import { TAIL_SIZE, VIRTIO_IOMMU_ATTACH_F_BYPASS, encodeAttach, encodeDetach, encodeProbe } from '../spec/requests.js';
import { VIRTIO_IOMMU_S_OK, VIRTIO_IOMMU_S_UNSUPP } from '../spec/status.js';
import {
  VirtioBlockedDomain, VirtioDomain, VirtioIdentityDomain, VirtioNestedDomain, VirtioPagingDomain, VirtioSvaDomain,
  type DomainHost,
} from './domains.js';
import { RequestChannel, failure } from './request-channel.js';
import type { VirtioIommuTransport } from './transport.js';

/** The features the driver accepts when offered (Linux's feature table, plus the extension). */
const DRIVER_FEATURES =
  featureBit(VIRTIO_F_VERSION_1) | featureBit(VIRTIO_IOMMU_F_MAP_UNMAP) | featureBit(VIRTIO_IOMMU_F_INPUT_RANGE) |
  featureBit(VIRTIO_IOMMU_F_DOMAIN_RANGE) | featureBit(VIRTIO_IOMMU_F_PROBE) | featureBit(VIRTIO_IOMMU_F_MMIO) |
  featureBit(VIRTIO_IOMMU_F_BYPASS_CONFIG) | featureBit(VIRTIO_IOMMU_F_X_IOASID);

const NO_EXTENSION = 'the virtio-iommu specification has no PASIDs, guest tables or page requests; they need the non-standard VIRTIO_IOMMU_F_X_IOASID extension, which this device does not offer';

/** Options of {@link VirtioIommuDriver}. */
export interface VirtioIommuDriverOptions {
  /** The device. */
  readonly transport: VirtioIommuTransport;
  /** The endpoints behind the device (endpoint ID = requester ID). */
  readonly endpoints: readonly EndpointDescriptor[];
  /** Where recoverable page requests go (core). */
  readonly reportPageRequest?: (request: IommuPageRequest) => void;
}

interface EndpointState {
  readonly desc: EndpointDescriptor;
  readonly probe: readonly ProbeProperty[];
  readonly resv: readonly ResvMem[];
  rid: VirtioDomain | undefined;
  readonly pasids: Map<number, VirtioDomain>;
}

/** The virtio-iommu driver. */
export class VirtioIommuDriver implements IommuDriver, DomainHost {
  /** Backend name. */
  readonly backend = 'virtio-iommu';
  /** The request queue. */
  readonly channel: RequestChannel;
  /** Negotiated features. */
  readonly features: bigint;
  /** The config as read at probe time. */
  readonly config: VirtioIommuConfig;
  /** Page sizes of page_size_mask. */
  readonly pageSizes: readonly bigint[];
  /** input_range. */
  readonly apertures: readonly IovaRange[];
  /** Unrecoverable fault records taken off the eventq (the last 64). */
  readonly faults: VirtioIommuFaultRecord[] = [];
  private readonly transport: VirtioIommuTransport;
  private readonly eps = new Map<string, EndpointState>();
  private readonly byRid = new Map<number, EndpointDescriptor>();
  private readonly usedIds = new Set<number>();
  private readonly idStart: number;
  private readonly idEnd: number;
  private readonly identity: VirtioIdentityDomain | undefined;
  private readonly blocked: VirtioBlockedDomain;
  private readonly report: ((request: IommuPageRequest) => void) | undefined;

  /** Probes the device as Linux's viommu_probe does. */
  constructor(options: VirtioIommuDriverOptions) {
    const t = options.transport;
    this.transport = t;
    this.report = options.reportPageRequest;
    const offered = t.deviceFeatures;
    // Linux refuses to bind without VIRTIO_F_VERSION_1 and VIRTIO_IOMMU_F_MAP_UNMAP.
    if (!hasFeature(offered, VIRTIO_F_VERSION_1) || !hasFeature(offered, VIRTIO_IOMMU_F_MAP_UNMAP)) {
      throw new IoasidError('ENODEV', 'transport', 'the device offers neither VIRTIO_F_VERSION_1 nor VIRTIO_IOMMU_F_MAP_UNMAP together');
    }
    this.features = offered & DRIVER_FEATURES;
    if (!t.negotiate(this.features)) throw new IoasidError('EIO', 'transport', 'the device refused FEATURES_OK');
    this.channel = new RequestChannel(t);
    const c = decodeConfig(t.readConfig());
    const inRange = this.has(VIRTIO_IOMMU_F_INPUT_RANGE);
    this.config = {
      ...c,
      inputStart: inRange ? c.inputStart : 0n,
      inputEnd: inRange ? c.inputEnd : U64_MAX,
      domainStart: this.has(VIRTIO_IOMMU_F_DOMAIN_RANGE) ? c.domainStart : 0,
      domainEnd: this.has(VIRTIO_IOMMU_F_DOMAIN_RANGE) ? c.domainEnd : 0xffffffff,
    };
    if (c.pageSizeMask === 0n) throw new IoasidError('ENODEV', 'transport', 'page_size_mask is 0');
    this.pageSizes = pageSizesOf(c.pageSizeMask);
    this.apertures = [{ start: this.config.inputStart, last: this.config.inputEnd }];
    this.idStart = this.config.domainStart;
    this.idEnd = this.config.domainEnd;
    if (this.has(VIRTIO_IOMMU_F_BYPASS_CONFIG)) {
      // Unattached endpoints must be blocked (the uAPI's "detached"), whatever bypass booted at.
      t.writeConfig(CONFIG_BYPASS, Uint8Array.of(0));
      // Linux reserves the first domain ID for the shared identity domain.
      this.identity = new VirtioIdentityDomain(this, this.allocId('identity'));
    }
    this.blocked = new VirtioBlockedDomain(this, -1);
    for (const d of options.endpoints) {
      const probe = this.probeEndpoint(d);
      const resv = probe.flatMap((p) => ('resvMem' in p ? [p.resvMem] : []));
      this.eps.set(d.name, { desc: d, probe, resv, rid: undefined, pasids: new Map() });
      this.byRid.set(d.rid, d);
    }
    t.setEventNotifier(() => {
      this.drainEvents();
    });
  }

  private has(bit: number): boolean {
    return hasFeature(this.features, bit);
  }

  /** The extension is negotiated. */
  get extension(): boolean {
    return this.has(VIRTIO_IOMMU_F_X_IOASID);
  }

  private probeEndpoint(d: EndpointDescriptor): ProbeProperty[] {
    if (!this.has(VIRTIO_IOMMU_F_PROBE)) return [];
    const size = this.config.probeSize;
    // Linux allocates 72 + probe_size + 4 and splits it at 72.
    const w = this.channel.exchange(encodeProbe(d.rid), size + TAIL_SIZE, 'dev', `PROBE of ${d.name}`);
    return parseProperties(w, size);
  }

  // ---------------------------------------------------------------- domain IDs

  /** Takes a free domain ID in domain_range (ENOSPC naming `argument` when there is none). */
  allocId(argument: string): number {
    for (let id = this.idStart; id <= this.idEnd; id++) {
      if (!this.usedIds.has(id)) {
        this.usedIds.add(id);
        return id;
      }
    }
    throw new IoasidError('ENOSPC', argument, `every domain ID in [${this.idStart}, ${this.idEnd}] is in use`);
  }

  /** Domain IDs the driver holds (the identity domain's included), for leak checks. */
  get domainIdsInUse(): number {
    return this.usedIds.size;
  }

  /** Returns an ID to the allocator. */
  releaseId(id: number): void {
    this.usedIds.delete(id);
  }

  private ep(dev: EndpointDescriptor): EndpointState {
    const e = this.eps.get(dev.name);
    if (e === undefined) throw new IoasidError('ENODEV', 'dev', `${dev.name} is not behind this virtio-iommu`);
    return e;
  }

  // ---------------------------------------------------------------- hw_info

  /** Hardware information: the config, negotiated features and PROBE properties. */
  hwInfo(dev: EndpointDescriptor): HwInfo {
    const e = this.ep(dev);
    const ext = this.extension;
    const pasid = ext && dev.pasid;
    const unsupported: Record<string, string> = {
      dirtyTracking: 'no dirty tracking in the virtio spec',
      viommu: 'virtio-iommu is itself the paravirtual IOMMU: it has no hardware vIOMMU type for iommufd',
      eeh: 'virtio-iommu has no EEH: a DMA fault is reported per request (fault event) and never isolates the endpoint',
    };
    if (!ext) {
      for (const k of ['pasid', 'nesting', 'sva', 'iopf']) unsupported[k] = NO_EXTENSION;
    } else {
      if (!dev.pasid) unsupported.pasid = unsupported.sva = `${dev.name} has no PASID capability`;
      if (!dev.pri) unsupported.iopf = `${dev.name} has no PRI capability`;
    }
    if (this.identity === undefined) unsupported.passthrough = 'VIRTIO_IOMMU_F_BYPASS_CONFIG is not offered: no bypass domain';
    const reservedRegions: ReservedRegion[] = e.resv.map((r) => ({
      start: r.start, last: r.end, kind: r.subtype === VIRTIO_IOMMU_RESV_MEM_T_MSI ? 'msi' : 'reserved',
    }));
    return {
      backend: this.backend,
      pasidBits: pasid ? PASID_BITS : 0,
      nestingFormats: ext ? ['virtio_table'] : [],
      passthrough: this.identity !== undefined,
      blocked: true,
      sva: pasid,
      iopf: ext && dev.pri,
      globalPasid: pasid,
      dirtyTracking: false,
      pageSizes: this.pageSizes,
      iovaRanges: this.apertures,
      reservedRegions,
      capabilities: 0,
      dataType: IOMMU_HW_INFO_TYPE_NONE,
      unsupported,
      vendor: {
        config: { ...this.config },
        features: {
          offered: this.transport.deviceFeatures,
          negotiated: this.features,
          names: featureNames(this.features, EXTENSION_FEATURE_NAMES),
        },
        probe: e.probe.map((p) => ('resvMem' in p ? { type: 'RESV_MEM', ...p.resvMem } : p)),
        extension: ext ? 'VIRTIO_IOMMU_F_X_IOASID: non-standard ioasid extension (ATTACH_TABLE, INVALIDATE, PAGE_RESP, ATTACH F_X_PASID/F_X_NO_DEFAULT/F_X_IOPF, nested domains)' : 'none',
      },
    };
  }

  // ---------------------------------------------------------------- domain allocation

  /** A MAP/UNMAP domain. */
  allocPagingDomain(dev: EndpointDescriptor, options: PagingDomainOptions): DriverDomain {
    this.ep(dev);
    if (options.dirtyTracking) throw new IoasidError('EOPNOTSUPP', 'flags', 'no dirty tracking in the virtio spec');
    if ((options.pasid || options.nestParent) && !this.extension) throw new IoasidError('EOPNOTSUPP', 'flags', NO_EXTENSION);
    if (options.iopf) {
      // Page requests from a MAP/UNMAP domain are the extension's ATTACH flag F_X_IOPF.
      if (!this.extension) throw new IoasidError('EOPNOTSUPP', 'faultQueue', NO_EXTENSION);
      if (!dev.pri) throw new IoasidError('EOPNOTSUPP', 'faultQueue', `${dev.name} has no PRI capability`);
      if (options.nestParent) throw new IoasidError('EOPNOTSUPP', 'faultQueue', 'a nest parent does not report page requests');
    }
    // Linux: -ENODEV when the granule is larger than PAGE_SIZE (viommu_domain_finalise).
    if (this.pageSizes[0]! > 4096n) {
      throw new IoasidError('EOPNOTSUPP', 'dev', `the device granule (${this.pageSizes[0]!} bytes) is larger than the 4 KiB page`);
    }
    return new VirtioPagingDomain(this, this.allocId('hwpt'), options.nestParent, options.iopf);
  }

  /** A nested domain: a `virtio_table` over a nest-parent paging domain. */
  allocNestedDomain(dev: EndpointDescriptor, parent: DriverDomain, data: HwptData, options: { readonly iopf: boolean }): DriverDomain {
    this.ep(dev);
    if (!this.extension) throw new IoasidError('EOPNOTSUPP', 'data', NO_EXTENSION);
    if (data.type !== 'virtio_table') throw new IoasidError('EINVAL', 'data', `virtio-iommu takes 'virtio_table' data, not '${data.type}'`);
    if (!(parent instanceof VirtioPagingDomain) || !parent.nestParent || parent.freed) {
      throw new IoasidError('EINVAL', 'parent', 'the parent is not a nest-parent virtio-iommu paging domain');
    }
    if (options.iopf && !dev.pri) throw new IoasidError('EOPNOTSUPP', 'faultQueue', `${dev.name} has no PRI capability`);
    const pasid = data.pasid ?? 0;
    if (!Number.isInteger(pasid) || pasid < 0 || pasid >= 1 << PASID_BITS) throw new IoasidError('EINVAL', 'data.pasid', 'PASID out of range');
    if (data.root < 0n || data.root >= 1n << 48n) throw new IoasidError('EINVAL', 'data.root', 'the table root is beyond 48 bits');
    if (data.format === 'arm-lpae-s1') {
      if (data.root % 4096n !== 0n) throw new IoasidError('EINVAL', 'data.root', 'an LPAE table root is 4 KiB aligned');
      const tcr = BigInt(data.config?.tcr ?? lpaeTcr());
      const t0sz = Number(tcr & BigInt(TCR_T0SZ_MASK));
      if (((tcr >> 14n) & 3n) !== 0n || t0sz < 16 || t0sz > 39) throw new IoasidError('EINVAL', 'data.config', 'TCR must select the 4 KiB granule and T0SZ 16..39');
    } else {
      const log2 = data.cdMaxLog2 ?? 0;
      if (!Number.isInteger(log2) || log2 < 0 || log2 > PASID_BITS) throw new IoasidError('EINVAL', 'data.cdMaxLog2', 'cdMaxLog2 must be 0..20');
      if (data.root % (64n << BigInt(log2)) !== 0n) throw new IoasidError('EINVAL', 'data.root', 'a linear CD table is aligned to its size');
      if (data.pasid !== undefined) throw new IoasidError('EINVAL', 'data.pasid', 'a CD table serves every PASID');
    }
    return new VirtioNestedDomain(this, this.allocId('hwpt'), parent, data, options.iopf);
  }

  /** An SVA domain: the process's AArch64 page table. */
  allocSvaDomain(dev: EndpointDescriptor, mm: ProcessMm): DriverDomain {
    this.ep(dev);
    if (!this.extension) throw new IoasidError('EOPNOTSUPP', 'dev', NO_EXTENSION);
    if (!dev.pasid) throw new IoasidError('EOPNOTSUPP', 'dev', `${dev.name} has no PASID capability`);
    if (mm.format.name !== 'aarch64') {
      throw new IoasidError('EOPNOTSUPP', 'process', `the extension walks Arm LPAE tables; this process uses '${mm.format.name}'`);
    }
    return new VirtioSvaDomain(this, this.allocId('process'), mm, dev.pri);
  }

  /** The bypass domain, with BYPASS_CONFIG. */
  identityDomain(dev: EndpointDescriptor): DriverDomain | undefined {
    this.ep(dev);
    return this.identity;
  }

  /** The blocking domain (DETACH, or an empty domain when the device refuses DETACH). */
  blockedDomain(dev: EndpointDescriptor): DriverDomain | undefined {
    this.ep(dev);
    return this.blocked;
  }

  /** Why `domain` cannot serve `dev` (on `pasid`). */
  attachConflict(dev: EndpointDescriptor, domain: DriverDomain, pasid: number | undefined): string | undefined {
    if (!(domain instanceof VirtioDomain)) return 'not a virtio-iommu domain';
    if (domain.freed) return 'the domain was freed';
    if (!this.eps.has(dev.name)) return `${dev.name} is not behind this virtio-iommu`;
    if (pasid !== undefined && !this.extension) return NO_EXTENSION;
    if (domain instanceof VirtioSvaDomain && pasid === undefined) return 'an SVA domain is attached to a PASID';
    if (domain instanceof VirtioPagingDomain && domain.iopf && !dev.pri) return `the domain reports I/O page faults and ${dev.name} has no PRI capability`;
    if (domain instanceof VirtioNestedDomain && pasid !== undefined) {
      if (domain.data.format === 'smmuv3-cd-table') return 'a CD table serves every PASID of the endpoint: attach it without a PASID';
      if ((domain.data.pasid ?? 0) !== 0) return `the table serves PASID ${domain.data.pasid ?? 0} of the domain: attach it without a PASID`;
    }
    return undefined;
  }

  // ---------------------------------------------------------------- attach / detach

  /** Attaches the RID or a PASID. */
  attach(dev: EndpointDescriptor, domain: DriverDomain, pasid: number | undefined): void {
    const e = this.ep(dev);
    const why = this.attachConflict(dev, domain, pasid);
    if (why !== undefined) throw new IoasidError(pasid !== undefined && !this.extension ? 'EOPNOTSUPP' : 'EINVAL', 'domain', why);
    if (!(domain instanceof VirtioDomain)) throw new IoasidError('EINVAL', 'domain', 'not a virtio-iommu domain');
    const d = domain;
    const key = pasid === undefined ? `${dev.rid}` : `${dev.rid}:${pasid}`;
    if (d instanceof VirtioBlockedDomain) {
      this.block(e, pasid, key);
      return;
    }
    const current = pasid === undefined ? e.rid : e.pasids.get(pasid);
    if (current === d) return;
    if (d instanceof VirtioNestedDomain || d instanceof VirtioSvaDomain) this.attachTable(e, pasid, key, d);
    else if (d instanceof VirtioPagingDomain && d.perEndpoint) this.attachOwn(e, pasid, key, d, current);
    else {
      const flags = (d instanceof VirtioIdentityDomain ? VIRTIO_IOMMU_ATTACH_F_BYPASS : 0) | (pasid === undefined ? 0 : VIRTIO_IOMMU_ATTACH_F_X_PASID);
      const wasLive = d.live;
      this.channel.send(encodeAttach(d.id, dev.rid, flags, pasid ?? 0), 'domain', `ATTACH of ${dev.name} to domain ${d.id}`);
      this.moved(e, pasid, key, d);
      if (!wasLive) {
        try {
          d.replay();
        } catch (err) {
          this.restore(e, pasid, key, current);
          throw err;
        }
      }
    }
  }

  /**
   * ATTACH of a per-endpoint paging domain: the attachment gets a device domain of its own
   * (created empty by the ATTACH), into which the domain's mappings are replayed.
   */
  private attachOwn(e: EndpointState, pasid: number | undefined, key: string, d: VirtioPagingDomain, previous: VirtioDomain | undefined): void {
    const id = d.acquireId('domain');
    const flags = (pasid === undefined ? 0 : VIRTIO_IOMMU_ATTACH_F_X_PASID) | (d.iopf ? VIRTIO_IOMMU_ATTACH_F_X_IOPF : 0);
    const s = this.channel.status(encodeAttach(id, e.desc.rid, flags, pasid ?? 0));
    if (s !== VIRTIO_IOMMU_S_OK) {
      d.releaseAcquired(id);
      throw failure(s, 'domain', `ATTACH of ${e.desc.name} to domain ${id}`);
    }
    this.moved(e, pasid, key, d, id);
    try {
      d.replayInto(id);
    } catch (err) {
      this.restore(e, pasid, key, previous);
      throw err;
    }
  }

  /**
   * After a failed replay: puts the attachment back where it was (the device dropped the
   * previous domain when the endpoint left it, so that is a new ATTACH and replay), or blocks it.
   */
  private restore(e: EndpointState, pasid: number | undefined, key: string, previous: VirtioDomain | undefined): void {
    try {
      if (previous !== undefined && !previous.freed && !(previous instanceof VirtioBlockedDomain)) this.attach(e.desc, previous, pasid);
      else this.block(e, pasid, key);
    } catch {
      try {
        this.block(e, pasid, key);
      } catch {
        // The device refuses every way out: the attachment stays where the device has it.
      }
    }
  }

  private attachTable(e: EndpointState, pasid: number | undefined, key: string, d: VirtioNestedDomain | VirtioSvaDomain): void {
    const rid = e.desc.rid;
    const what = `attach of ${e.desc.name} to domain ${d.id}`;
    if (d.live) {
      const flags = VIRTIO_IOMMU_ATTACH_F_X_NO_DEFAULT | (pasid === undefined ? 0 : VIRTIO_IOMMU_ATTACH_F_X_PASID);
      this.channel.send(encodeAttach(d.id, rid, flags, pasid ?? 0), 'domain', what);
      this.moved(e, pasid, key, d);
      return;
    }
    let flags = pasid === undefined ? 0 : VIRTIO_IOMMU_ATTACH_TABLE_F_EP_PASID;
    if (d instanceof VirtioNestedDomain) {
      const parent = d.parent;
      if (!parent.live) {
        // The device creates domains on attach: bring the parent to life through this endpoint
        // first, so that it exists (with its mappings) when the child names it.
        const previous = pasid === undefined ? e.rid : e.pasids.get(pasid);
        this.attach(e.desc, parent, pasid);
        try {
          this.sendAttachTable(e, pasid, d, flags);
        } catch (err) {
          this.restore(e, pasid, key, previous);
          throw err;
        }
        this.moved(e, pasid, key, d);
        return;
      }
      this.sendAttachTable(e, pasid, d, flags);
    } else {
      if (d.iopf) flags |= VIRTIO_IOMMU_ATTACH_TABLE_F_IOPF;
      this.channel.send(encodeAttachTable({
        domain: d.id, endpoint: rid, flags, ...(pasid === undefined ? {} : { epPasid: pasid }),
        format: VIRTIO_IOMMU_X_FORMAT_ARM_LPAE_S1,
        lpae: { tcr: lpaeTcr(48), ttbr0: d.mm.pageTableRoot },
      }), 'domain', what);
    }
    this.moved(e, pasid, key, d);
  }

  /** ATTACH_TABLE for a nested domain whose parent is live. */
  private sendAttachTable(e: EndpointState, pasid: number | undefined, d: VirtioNestedDomain, epFlags: number): void {
    const rid = e.desc.rid;
    const what = `attach of ${e.desc.name} to domain ${d.id}`;
    let flags = epFlags;
    const parent = d.parent;
    const parentId = parent.id;
    {
      flags |= VIRTIO_IOMMU_ATTACH_TABLE_F_PARENT;
      if (d.iopf) flags |= VIRTIO_IOMMU_ATTACH_TABLE_F_IOPF;
      const data = d.data;
      const ctxPasid = data.pasid ?? 0;
      if (data.format === 'arm-lpae-s1') {
        if (ctxPasid !== 0) flags |= VIRTIO_IOMMU_ATTACH_TABLE_F_PASID;
        const cfg = data.config ?? {};
        this.channel.send(encodeAttachTable({
          domain: d.id, endpoint: rid, flags, pasid: ctxPasid, parent: parentId, ...(pasid === undefined ? {} : { epPasid: pasid }),
          format: VIRTIO_IOMMU_X_FORMAT_ARM_LPAE_S1,
          lpae: { asid: Number(cfg.asid ?? 0), tcr: BigInt(cfg.tcr ?? lpaeTcr()), ttbr0: data.root, mair: BigInt(cfg.mair ?? 0) },
        }), 'domain', what);
      } else {
        const cfg = data.config ?? {};
        this.channel.send(encodeAttachTable({
          domain: d.id, endpoint: rid, flags, parent: parentId, ...(pasid === undefined ? {} : { epPasid: pasid }),
          format: VIRTIO_IOMMU_X_FORMAT_SMMUV3_CD,
          cd: { s1dss: Number(cfg.s1dss ?? S1DSS_SSID0), s1cdmax: data.cdMaxLog2 ?? 0, s1contextptr: data.root },
        }), 'domain', what);
      }
      parent.liveChildren++;
    }
  }

  /**
   * Bookkeeping after the device moved (ep, pasid) to `d` (device domain `id` of a per-endpoint
   * domain): mirrors the device's domain lifetimes.
   */
  private moved(e: EndpointState, pasid: number | undefined, key: string, d: VirtioDomain | undefined, id?: number): void {
    const old = pasid === undefined ? e.rid : e.pasids.get(pasid);
    if (d !== undefined) d.attachments.add(key);
    if (pasid === undefined) e.rid = d;
    else if (d === undefined) e.pasids.delete(pasid);
    else e.pasids.set(pasid, d);
    if (old !== undefined && old !== d) {
      old.attachments.delete(key);
      old.dropInstance(key);
      this.settle(old);
    }
    if (d !== undefined && id !== undefined) d.instances.set(key, id);
  }

  /** A domain whose last attachment left is gone from the device, and so may be its parent. */
  private settle(d: VirtioDomain): void {
    if (d.live) return;
    if (d instanceof VirtioNestedDomain && d.parent.liveChildren > 0) {
      d.parent.liveChildren--;
      this.settle(d.parent);
    }
  }

  /** Detaches the RID or a PASID: its DMA then faults. */
  detach(dev: EndpointDescriptor, pasid: number | undefined): void {
    const e = this.ep(dev);
    if (pasid !== undefined && !this.extension) throw new IoasidError('EOPNOTSUPP', 'pasid', NO_EXTENSION);
    const key = pasid === undefined ? `${dev.rid}` : `${dev.rid}:${pasid}`;
    this.block(e, pasid, key);
  }

  /**
   * Blocks the RID or a PASID. DETACH when the device takes it (an unattached endpoint faults:
   * bypass was cleared at probe). A device may answer DETACH with UNSUPP (crosvm does when it
   * cannot detach); the endpoint is then attached to an empty domain of its own, where every DMA
   * faults — what Linux does: drivers/iommu/virtio-iommu.c registers no blocked domain
   * (`viommu_ops` has only `domain_alloc_identity`/`domain_alloc_paging`, and `viommu_detach_dev`
   * serves `release_device` only), so drivers/iommu/iommu.c `__iommu_group_alloc_blocking_domain`
   * falls back to "For drivers that do not yet understand IOMMU_DOMAIN_BLOCKED create an empty
   * domain instead" and blocking is an ATTACH to a domain without mappings.
   */
  private block(e: EndpointState, pasid: number | undefined, key: string): void {
    const d = pasid === undefined ? e.rid : e.pasids.get(pasid);
    if (d === undefined || d === this.blocked) return; // already blocked
    const id = d.idFor(key);
    const req = encodeDetach(id, e.desc.rid);
    if (pasid !== undefined) {
      req[DETACH_X_FLAGS] = VIRTIO_IOMMU_DETACH_F_X_PASID;
      new DataView(req.buffer).setUint32(DETACH_X_PASID, pasid, true);
    }
    const s = this.channel.status(req);
    if (s === VIRTIO_IOMMU_S_OK) {
      this.moved(e, pasid, key, undefined);
      return;
    }
    if (s !== VIRTIO_IOMMU_S_UNSUPP) throw failure(s, 'dev', `DETACH of ${e.desc.name} from domain ${id}`);
    const empty = this.blocked.acquireId('dev');
    const s2 = this.channel.status(encodeAttach(empty, e.desc.rid, pasid === undefined ? 0 : VIRTIO_IOMMU_ATTACH_F_X_PASID, pasid ?? 0));
    if (s2 !== VIRTIO_IOMMU_S_OK) {
      this.blocked.releaseAcquired(empty);
      throw failure(s2, 'dev', `DETACH of ${e.desc.name} from domain ${id} was refused, and so was its ATTACH to the empty domain ${empty}`);
    }
    this.moved(e, pasid, key, this.blocked, empty);
  }

  // ---------------------------------------------------------------- faults and page requests

  /** Completes a page-request group with PAGE_RESP. */
  pageResponse(dev: EndpointDescriptor, pasid: number | undefined, grpid: number, code: number): void {
    this.ep(dev);
    if (!this.extension) throw new IoasidError('EOPNOTSUPP', 'dev', NO_EXTENSION);
    const c = code === 0 ? VIRTIO_IOMMU_PAGE_RESP_SUCCESS : VIRTIO_IOMMU_PAGE_RESP_INVALID;
    this.channel.send(encodePageResp(dev.rid, pasid, grpid, c), 'cookie', `PAGE_RESP for group ${grpid} of ${dev.name}`);
  }

  /** The eventq handler: page requests go to core; other records are kept for reports. */
  drainEvents(): void {
    for (const bytes of this.transport.takeEvents()) {
      const r = decodeFault(bytes);
      if (r.reserved !== 0) continue; // spec: the driver MUST ignore such a report
      if ((r.flags & VIRTIO_IOMMU_FAULT_F_X_PAGE_REQ) !== 0 && this.extension) {
        const desc = this.byRid.get(r.endpoint);
        if (desc === undefined || this.report === undefined) continue;
        let perm = 0;
        if ((r.flags & VIRTIO_IOMMU_FAULT_F_READ) !== 0) perm |= IOMMU_PGFAULT_PERM_READ;
        if ((r.flags & VIRTIO_IOMMU_FAULT_F_WRITE) !== 0) perm |= IOMMU_PGFAULT_PERM_WRITE;
        if ((r.flags & VIRTIO_IOMMU_FAULT_F_EXEC) !== 0) perm |= IOMMU_PGFAULT_PERM_EXEC;
        if ((r.flags & VIRTIO_IOMMU_FAULT_F_PRIV) !== 0) perm |= IOMMU_PGFAULT_PERM_PRIV;
        const low = Number(r.address & 0xfffn);
        this.report({
          endpoint: desc,
          pasid: (r.flags & VIRTIO_IOMMU_FAULT_F_X_PASID) !== 0 ? r.reserved1 : undefined,
          addr: r.address & ~0xfffn,
          perm,
          grpid: (low >>> 3) & 0x1ff,
          last: (low & 4) !== 0,
        });
        continue;
      }
      if (this.faults.length >= 64) this.faults.shift();
      this.faults.push(r);
    }
  }
}
