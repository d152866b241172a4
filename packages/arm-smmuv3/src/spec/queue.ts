/**
 * Queue pointer arithmetic common to the command, event and PRI queues (IHI0070 §3.5):
 * index in bits [QS-1:0], wrap flag at bit QS; empty when index and wrap are equal, full when
 * the indexes are equal and the wraps differ.
 */

/** Entry sizes in bytes. */
export const CMDQ_ENT_SIZE = 16;
/** Event record size. */
export const EVTQ_ENT_SIZE = 32;
/** PRI queue record size. */
export const PRIQ_ENT_SIZE = 16;

/** The index part of a PROD/CONS value. */
export function qIndex(ptr: number, log2: number): number {
  return ptr & ((1 << log2) - 1);
}

/** The wrap flag of a PROD/CONS value. */
export function qWrap(ptr: number, log2: number): number {
  return (ptr >>> log2) & 1;
}

/** Index plus wrap (bits [QS:0]). */
export function qPtr(ptr: number, log2: number): number {
  return ptr & ((2 << log2) - 1);
}

/** True when the queue is empty. */
export function qEmpty(prod: number, cons: number, log2: number): boolean {
  return qPtr(prod, log2) === qPtr(cons, log2);
}

/** True when the queue is full. */
export function qFull(prod: number, cons: number, log2: number): boolean {
  return qIndex(prod, log2) === qIndex(cons, log2) && qWrap(prod, log2) !== qWrap(cons, log2);
}

/** The pointer after `ptr` (wrap toggled when the index passes the end); other bits dropped. */
export function qInc(ptr: number, log2: number): number {
  return (qPtr(ptr, log2) + 1) & ((2 << log2) - 1);
}
