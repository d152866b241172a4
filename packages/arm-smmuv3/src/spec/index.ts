/** The SMMUv3 specification's names: registers, structures, commands, events, descriptors. */
export * from './bits.js';
export * from './registers.js';
export * from './queue.js';
export * from './strtab.js';
export * from './ste.js';
export * from './cd.js';
export * from './commands.js';
export * from './events.js';
export * from './priq.js';
export * from './pgtable.js';
export * from './cpu-page-table.js';
