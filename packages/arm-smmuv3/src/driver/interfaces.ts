/**
 * What the driver reaches, and nothing more: the SMMU's MMIO registers (page 0 and page 1, as
 * Linux maps them) and the PCI configuration space bits Linux's driver sets on an endpoint
 * (the ATS and PRI capability enables).
 */

/** The SMMU register window. */
export interface SmmuRegisterWindow {
  /** Reads a 32-bit register. */
  read32(offset: number): number;
  /** Writes a 32-bit register. */
  write32(offset: number, value: number): void;
  /** Reads a 64-bit register. */
  read64(offset: number): bigint;
  /** Writes a 64-bit register. */
  write64(offset: number, value: bigint): void;
}

/** Endpoint PCI capability enables (ATS Control.Enable, PRI Control.Enable). */
export interface PciCapabilities {
  /** Sets the ATS Enable bit of the endpoint with requester ID `rid`. */
  setAts(rid: number, enable: boolean): void;
  /** Sets the PRI Enable bit of the endpoint. */
  setPri(rid: number, enable: boolean): void;
}
