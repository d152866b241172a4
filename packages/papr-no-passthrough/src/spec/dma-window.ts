/**
 * DMA window arithmetic. A window is one TCE table named by a LIOBN; it filters absolute bus
 * addresses (IOBA = the PCI address, not an offset): `index = (ioba − start) >> pageShift`,
 * `real = (TCE & ~(2^pageShift − 1)) | (ioba & (2^pageShift − 1))`.
 */

/** QEMU's 32-bit default window: 1 GiB at bus address 0 (`dma_win_addr`, `dma_win_size`). */
export const QEMU_DEFAULT_WINDOW_SIZE = 0x4000_0000n;
/** The default window of the 'papr' profile: 2 GiB at 0, the hardware default the VFIO documentation describes. */
export const PAPR_DEFAULT_WINDOW_SIZE = 0x8000_0000n;
/** The default window starts at bus address 0 and lies entirely below 4 GiB (LoPAR DDW requirement). */
export const DEFAULT_WINDOW_START = 0n;
/** The default window uses 4 KiB pages. */
export const DEFAULT_WINDOW_PAGE_SHIFT = 12;
/** Where a dynamic 64-bit window is placed while another window exists (QEMU `dma64_win_addr`, 1 << 59). */
export const DDW_WINDOW_START = 1n << 59n;
/** Windows per PE (QEMU `SPAPR_PCI_DMA_MAX_WINDOWS`, Linux `IOMMU_TABLE_GROUP_MAX_TABLES`). */
export const MAX_WINDOWS_PER_PE = 2;
/** The "largest block of TCEs" QEMU reports in the 5-output query. */
export const QEMU_LARGEST_BLOCK = 0x8000_0000;

/** QEMU's PCI LIOBN: `0x80000000 | (index << 8) | window number` (index: the PHB; here the PE). */
export function pciLiobn(index: number, windowNumber: number): number {
  return (0x8000_0000 | ((index & 0xffffff) << 8) | (windowNumber & 0xff)) >>> 0;
}

/** The index of the TCE that translates `ioba` in a window, or −1 when `ioba` is outside it. */
export function tceIndex(ioba: bigint, start: bigint, size: bigint, pageShift: number): number {
  if (ioba < start || ioba >= start + size) return -1;
  return Number((ioba - start) >> BigInt(pageShift));
}

/** The real address a TCE gives for `ioba` in a window of 2^pageShift pages. */
export function translateIoba(tce: bigint, ioba: bigint, pageShift: number): bigint {
  const mask = (1n << BigInt(pageShift)) - 1n;
  return (BigInt.asUintN(64, tce) & ~0xfffn & ~mask) | (ioba & mask);
}
