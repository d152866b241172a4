/** DMA requests from endpoints and their results: a generic classification plus the record. */

/** A DMA issued by an endpoint. */
export interface DmaRequest {
  /** The I/O virtual address. */
  readonly iova: bigint;
  /** Bytes to read (ignored for writes, where `data.length` counts). */
  readonly size: number;
  /** A write (true) or a read (false). */
  readonly write: boolean;
  /** The bytes to write. */
  readonly data?: Uint8Array;
  /** The PASID the request carries (absent = no PASID prefix). */
  readonly pasid?: number;
  /** An instruction fetch (PASID execute-requested). */
  readonly exec?: boolean;
  /** A privileged (supervisor) request. */
  readonly priv?: boolean;
}

/**
 * The architecture-neutral class of a DMA fault, for comparisons across backends. The
 * architecture's own record stays in {@link DmaFault.record}.
 */
export type FaultClass =
  /** No translation exists for the address (not present / invalid entry / outside a window). */
  | 'translation'
  /** A translation exists but forbids the access. */
  | 'permission'
  /** The address is beyond the address width or aperture. */
  | 'address-size'
  /** The device or PASID is blocked: not attached, detached or aborting. */
  | 'blocked'
  /** A configuration structure is invalid (bad context/PASID entry, STE, CD, reserved bits). */
  | 'bad-config'
  /** A table fetch hit an external abort (memory that does not exist). */
  | 'external-abort'
  /** The request became a recoverable page request waiting for a response. */
  | 'page-request'
  /** The partitionable endpoint is frozen (PAPR EEH) and refuses all DMA. */
  | 'frozen';

/** A DMA fault: its class, the architecture's name and its record. */
export interface DmaFault {
  /** The neutral class. */
  readonly class: FaultClass;
  /** The architecture's own name (VT-d reason `SM: Present bit …`, SMMUv3 `F_TRANSLATION` …). */
  readonly name: string;
  /** The architecture's numeric code (VT-d fault reason, SMMUv3 event id, virtio reason …). */
  readonly code: number;
  /** The faulting IOVA. */
  readonly iova: bigint;
  /** The architecture's record, decoded field by field. */
  readonly record: Readonly<Record<string, unknown>>;
}

/** The result of a DMA: the data (for reads) or the fault. */
export type DmaResult =
  | { readonly ok: true; readonly data: Uint8Array }
  | { readonly ok: false; readonly fault: DmaFault };
