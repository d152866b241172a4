/**
 * The driver's view of one PE (Linux: the `iommu_table_group` of a pseries PE): its windows,
 * the functions in it, the domains allocated for it, and which domain's mappings are in the
 * TCE tables right now. One set of windows serves one domain at a time.
 */

import type { PeNode } from '../spec/firmware.js';
import type { DriverWindow } from './tce-ops.js';

/** What the DDW query answered when the driver set the PE up. */
export interface DdwQueryResult {
  /** Windows available. */
  readonly windowsAvailable: number;
  /** Largest block of TCEs. */
  readonly largestBlock: number;
  /** I/O page-size mask. */
  readonly pageSizeMask: number;
  /** Migration page-size mask. */
  readonly migrationMask: number;
}

/** A domain as the PE sees it: its mappings can be written to or cleared from the tables. */
export interface PeDomain {
  /** Writes every mapping into the TCE tables (rolls back and throws on failure). */
  program(): void;
  /** Clears every mapping from the TCE tables. */
  unprogram(): void;
}

/** The driver's state of one PE. */
export class DriverPe {
  /** The device-tree node. */
  readonly node: PeNode;
  /** The PE's windows, ascending by start. */
  readonly windows: DriverWindow[];
  /** The DDW query result (undefined: the PE has no DDW). */
  readonly ddwQuery: DdwQueryResult | undefined;
  /** Why no 64-bit window was created (undefined: one was, or none was wanted). */
  readonly ddwFailure: string | undefined;
  /** The domain whose mappings are in the tables. */
  active: PeDomain | undefined;
  /** Functions of the PE attached to `active`. */
  readonly attached = new Set<string>();

  /**
   * @param node - the device-tree node
   * @param windows - the windows
   * @param ddwQuery - what the query answered
   * @param ddwFailure - why no DDW was created
   */
  constructor(node: PeNode, windows: DriverWindow[], ddwQuery: DdwQueryResult | undefined, ddwFailure: string | undefined) {
    this.node = node;
    this.windows = windows.sort((a, b) => (a.start < b.start ? -1 : 1));
    this.ddwQuery = ddwQuery;
    this.ddwFailure = ddwFailure;
  }

  /** A short name for messages. */
  get label(): string {
    return `PE ${this.node.configAddr.toString(16).padStart(6, '0')} (${this.node.devices.join(', ')})`;
  }
}
