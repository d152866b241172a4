/**
 * `@ioasid/uapi`: the interface of the ioasid uAPI — types, constants, errno codes, hw_info and
 * DMA result shapes, and the backend driver interface. No runtime dependencies.
 *
 * @packageDocumentation
 */
export * from './errno.js';
export * from './constants.js';
export * from './hw-info.js';
export * from './dma.js';
export * from './platform.js';
export * from './context.js';
export * from './driver.js';
export * from './guest.js';
