/** The objects of a context's object table (one id space, ids from 1). */

import type { DriverDomain, DriverViommu, EndpointDescriptor, HwInfo, HwptData, ObjectId } from '@ioasid/uapi';
import type { Process } from '../platform/process.js';
import type { FaultQueue } from './fault-queue.js';
import type { Ioas } from './ioas.js';
import type { VeventQueue } from './vevent-queue.js';

/** A HWPT: a domain with its kind, flags and users. */
export interface HwptObject {
  /** Discriminant. */
  readonly kind: 'hwpt';
  /** Object id. */
  readonly id: ObjectId;
  /** Paging (kernel-managed, mirrors an IOAS), nested (user stage 1) or SVA. */
  readonly type: 'paging' | 'nested' | 'sva';
  /** The driver's domain. */
  readonly domain: DriverDomain;
  /** The IOAS a paging HWPT mirrors. */
  readonly ioas: Ioas | undefined;
  /** The nest parent of a nested HWPT. */
  readonly parent: HwptObject | undefined;
  /** Created by attach-to-IOAS (destroyed with its last device). */
  readonly auto: boolean;
  /** IOMMU_HWPT_ALLOC_NEST_PARENT. */
  readonly nestParent: boolean;
  /** IOMMU_HWPT_ALLOC_DIRTY_TRACKING. */
  readonly dirtyTracking: boolean;
  /** IOMMU_HWPT_ALLOC_PASID. */
  readonly pasidFlag: boolean;
  /** The vendor data of a nested HWPT. */
  readonly data: HwptData | undefined;
  /** The process an SVA HWPT binds. */
  readonly process: Process | undefined;
  /** The fault queue (IOMMU_HWPT_FAULT_ID_VALID). */
  readonly faultQueue: FaultQueue | undefined;
  /** Attachments (device RIDs and PASIDs) using it. */
  attachments: number;
  /** Nested HWPTs and vIOMMUs using it as parent. */
  children: number;
  /** The vIOMMU a nested HWPT was allocated from. */
  readonly viommu?: ViommuObject;
}

/** A bound device. */
export interface DeviceObject {
  /** Discriminant. */
  readonly kind: 'device';
  /** Object id. */
  readonly id: ObjectId;
  /** The endpoint bound. */
  readonly endpoint: EndpointDescriptor;
  /** The function whose RID carries its DMA (itself, or an mdev's parent). */
  readonly rid: EndpointDescriptor;
  /** Hardware information (from the driver, for `rid`). */
  readonly info: HwInfo;
  /** RID attachment (key -1) and PASID attachments (key = the user-visible PASID). */
  readonly attached: Map<number, HwptObject>;
  /** For an mdev: the kernel-chosen PASID of its default space on the parent. */
  readonly mdevPasid: number | undefined;
  /** For an mdev: user (virtual) PASID → kernel PASID on the parent. */
  readonly vpasids: Map<number, number>;
}

/** An IOAS entry of the object table. */
export interface IoasObject {
  /** Discriminant. */
  readonly kind: 'ioas';
  /** Object id. */
  readonly id: ObjectId;
  /** The address space. */
  readonly ioas: Ioas;
}

/** A fault-queue entry of the object table. */
export interface FaultObject {
  /** Discriminant. */
  readonly kind: 'fault';
  /** Object id. */
  readonly id: ObjectId;
  /** The queue. */
  readonly queue: FaultQueue;
}

/** A vIOMMU: the driver's part, its nest parent, and what hangs off it. */
export interface ViommuObject {
  /** Discriminant. */
  readonly kind: 'viommu';
  /** Object id. */
  readonly id: ObjectId;
  /** IOMMU_VIOMMU_TYPE_*. */
  readonly type: number;
  /** The nest-parent HWPT (referenced: it cannot be destroyed first). */
  readonly parent: HwptObject;
  /** The driver's vIOMMU. */
  readonly driver: DriverViommu;
  /** vDEVICEs by device. */
  readonly vdevices: Map<DeviceObject, VdeviceObject>;
  /** vDEVICEs by virtual ID. */
  readonly virtIds: Map<bigint, VdeviceObject>;
  /** vEVENTQs by type. */
  readonly veventqs: Map<number, VeventqObject>;
  /** Nested HWPTs allocated from it. */
  nested: number;
}

/** A vDEVICE: a device's virtual ID on a vIOMMU. */
export interface VdeviceObject {
  /** Discriminant. */
  readonly kind: 'vdevice';
  /** Object id. */
  readonly id: ObjectId;
  /** The vIOMMU. */
  readonly viommu: ViommuObject;
  /** The device. */
  readonly device: DeviceObject;
  /** Its virtual ID (vSID, vRID). */
  readonly virtId: bigint;
}

/** A vEVENTQ: a vIOMMU's queue of events of one type. */
export interface VeventqObject {
  /** Discriminant. */
  readonly kind: 'veventq';
  /** Object id. */
  readonly id: ObjectId;
  /** The vIOMMU. */
  readonly viommu: ViommuObject;
  /** IOMMU_VEVENTQ_TYPE_*. */
  readonly type: number;
  /** The waiting events. */
  readonly queue: VeventQueue;
}

/** Any object. */
export type KernelObject = HwptObject | DeviceObject | IoasObject | FaultObject | ViommuObject | VdeviceObject | VeventqObject;
