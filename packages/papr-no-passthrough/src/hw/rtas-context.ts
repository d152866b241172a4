/** What the RTAS handlers need from the hypervisor: memory, the BUID, PE and LIOBN lookups. */

import type { PhysicalMemoryLike } from '@ioasid/uapi';
import type { PartitionableEndpoint } from './pe.js';
import type { TceTable } from './tce-table.js';

/** The hypervisor state the RTAS handlers work on. */
export interface RtasContext {
  /** Partition memory (TCE tables are allocated from it). */
  readonly memory: PhysicalMemoryLike;
  /** The PHB's BUID. */
  readonly buid: bigint;
  /** TCE cache entries of a new window. */
  readonly tceCacheEntries: number;
  /** The PE a (config_addr, BUID hi, BUID lo) triple names. */
  peAt(configAddr: number, buidHi: number, buidLo: number): PartitionableEndpoint | undefined;
  /** The PE and window slot a LIOBN names. */
  windowOf(liobn: number): { readonly pe: PartitionableEndpoint; readonly slot: number; readonly table: TceTable } | undefined;
  /** Allocates a PE's default window (the `ibm,dma-window` one) into slot 0; throws ENOMEM. */
  newDefaultWindow(pe: PartitionableEndpoint): TceTable;
  /** True when `table` is the PE's default window. */
  isDefault(pe: PartitionableEndpoint, table: TceTable): boolean;
}

/** Reads an RTAS input cell as an unsigned 32-bit number. */
export function cell(args: readonly (number | bigint)[], i: number): number {
  const v = args[i] ?? 0;
  return Number(BigInt.asUintN(32, typeof v === 'bigint' ? v : BigInt(Math.trunc(v))));
}
