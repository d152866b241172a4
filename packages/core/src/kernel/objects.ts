/** The objects of a context's object table (one id space, ids from 1). */

import type { DriverDomain, EndpointDescriptor, HwInfo, HwptData, ObjectId } from '@ioasid/uapi';
import type { Process } from '../platform/process.js';
import type { FaultQueue } from './fault-queue.js';
import type { Ioas } from './ioas.js';

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
  /** Nested HWPTs using it as parent. */
  children: number;
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

/** Any object. */
export type KernelObject = HwptObject | DeviceObject | IoasObject | FaultObject;
