/**
 * The two shapes of a DMA outcome: the allocating `DmaResult` of `Endpoint.dma`, and the
 * non-allocating `dmaInto` form (bytes in the caller's buffer, `undefined` or the fault).
 */

import { IoasidError, type DmaFault, type DmaRequest, type DmaResult } from '@ioasid/uapi';

/** The empty buffer of a write's result (shared: a write returns no data). */
export const NO_DMA_DATA = new Uint8Array(0);

/**
 * The number of bytes a DMA read moves: `size` rounded down, never negative (a negative or
 * non-numeric size reads nothing); a write moves `data.length` bytes and reads none.
 */
export function dmaReadSize(request: DmaRequest): number {
  if (request.write) return 0;
  const n = Math.floor(request.size);
  return n > 0 ? n : 0;
}

/**
 * Checks the caller's buffer of a `dmaInto` read: shorter than the read is EINVAL, before
 * anything is issued.
 */
export function checkDmaInto(request: DmaRequest, into: Uint8Array | undefined): Uint8Array {
  if (request.write) return NO_DMA_DATA;
  const n = dmaReadSize(request);
  if (into !== undefined && into.length >= n) return into;
  if (n === 0) return NO_DMA_DATA;
  throw new IoasidError('EINVAL', 'into', `a ${n}-byte read needs a buffer of at least ${n} bytes (got ${into === undefined ? 'none' : String(into.length)})`);
}

/** The largest read `Endpoint.dma()` makes a result buffer for (1 GiB). */
export const MAX_DMA_RESULT_BYTES = 1 << 30;

/**
 * Runs a `dmaInto`-style DMA into a fresh buffer and returns the allocating `DmaResult`. A
 * read larger than {@link MAX_DMA_RESULT_BYTES} is EINVAL (argument `size`) before anything is
 * issued: no result buffer is made that large (`dmaInto` takes the caller's own).
 */
export function dmaResultOf(request: DmaRequest, run: (into: Uint8Array) => DmaFault | undefined): DmaResult {
  const n = dmaReadSize(request);
  if (n > MAX_DMA_RESULT_BYTES) {
    throw new IoasidError('EINVAL', 'size', `a ${n}-byte read does not fit a result buffer (at most ${MAX_DMA_RESULT_BYTES} bytes): use dmaInto with your own buffer`);
  }
  const out = n === 0 ? NO_DMA_DATA : new Uint8Array(n);
  const fault = run(out);
  return fault === undefined ? { ok: true, data: out } : { ok: false, fault };
}

/**
 * Adapts a model whose DMA returns a `DmaResult` to the `dmaInto` form: copies a read's bytes
 * into `into` and returns the fault, if any.
 */
export function dmaResultInto(result: DmaResult, into: Uint8Array): DmaFault | undefined {
  if (!result.ok) return result.fault;
  if (result.data.length > 0) into.set(result.data);
  return undefined;
}
