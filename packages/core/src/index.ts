/**
 * `@ioasid/core`: the ioasid uAPI implementation ("the kernel side") and the simulated
 * platform — physical memory, processes, PCI endpoints — that backends plug into.
 *
 * @packageDocumentation
 */
export { PhysicalMemory, type PhysicalMemoryOptions } from './platform/physical-memory.js';
export { FailNth } from './platform/fail-nth.js';
export { Process } from './platform/process.js';
export { CpuPageTable } from './platform/cpu-page-table.js';
export { X86_64_CPU_PAGE_TABLE, AARCH64_CPU_PAGE_TABLE } from './platform/cpu-formats.js';
export { ProcessGuestMemory } from './platform/guest-memory.js';
export { MAX_DMA_RESULT_BYTES, NO_DMA_DATA, dmaReadSize, dmaResultOf, dmaResultInto } from './platform/dma-buffers.js';
export { copyFrameBytes } from './platform/frame-bytes.js';
export { parsePciName, formatPciName, parseMdevName, expandDevices, type PciAddress } from './platform/pci.js';
export { System, createSystem } from './system.js';
export { Context } from './kernel/context.js';
export { AreaTree, type Range } from './kernel/area-tree.js';
export { PasidAllocator } from './kernel/pasid-allocator.js';
export { normalize, intersect, subtract, covers } from './kernel/iova-ranges.js';
