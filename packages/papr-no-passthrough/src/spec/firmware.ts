/**
 * What partition firmware gives the OS: the hcall and RTAS entry points and the device tree
 * properties a pseries kernel reads (`ibm,dma-window`, `ibm,ddw-applicable`,
 * `ibm,ddw-extensions`, the PHB's BUID and each PE's config address). The driver programs
 * the IOMMU only through this.
 */

import type { HcallResult } from './hcall.js';
import type { RtasResult } from './rtas.js';

/** The hypervisor call and RTAS entry points. */
export interface PaprFirmware {
  /** `hcall(opcode, args…)`: unsigned 64-bit register arguments → R3 and R4…. */
  hcall(opcode: number, ...args: bigint[]): HcallResult;
  /** `rtas(name, input cells, number of outputs incl. Status?)` → Status and the outputs after it. */
  rtas(name: string, args: readonly (number | bigint)[], nret?: number): RtasResult;
}

/** The `ibm,dma-window` property of a PE node: the default window. */
export interface DmaWindowProperty {
  /** The window's LIOBN. */
  readonly liobn: number;
  /** Bus address of the window. */
  readonly busAddress: bigint;
  /** Size in bytes. */
  readonly size: bigint;
  /** log2 of the IOMMU page size (12). */
  readonly pageShift: number;
}

/** A PE as the device tree describes it to the OS. */
export interface PeNode {
  /** The PE's config address `(bus << 16) | (devfn << 8)` (of its first function). */
  readonly configAddr: number;
  /** The PCI functions in the PE. */
  readonly devices: readonly string[];
  /** The default window (`ibm,dma-window`); absent once firmware removed it. */
  readonly dmaWindow: DmaWindowProperty | undefined;
  /** `ibm,ddw-applicable` present: the DDW RTAS calls work for this PE. */
  readonly ddwApplicable: boolean;
  /** `ibm,ddw-extensions`: [count, reset token present (1/0), 6-output query (1/0)]. */
  readonly ddwExtensions: readonly number[];
}

/** The PHB node: its BUID and its PEs. */
export interface PhbNode {
  /** The PHB's bus unit ID. */
  readonly buid: bigint;
  /** The PEs under the PHB. */
  readonly pes: readonly PeNode[];
}
