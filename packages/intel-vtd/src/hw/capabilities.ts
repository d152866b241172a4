/** CAP_REG / ECAP_REG decoded once into plain numbers and booleans for the hot paths. */

import { CAP, ECAP } from '../spec/registers.js';
import { getField } from '../spec/fields.js';

/** Decoded capabilities of a unit. */
export class Capabilities {
  /** SAGAW bitmask. */
  readonly sagaw: number;
  /** MGAW + 1. */
  readonly mgaw: number;
  /** Host address width (this model uses MGAW + 1). */
  readonly haw: number;
  /** Second-stage large pages (bit 0 = 2 MiB, bit 1 = 1 GiB). */
  readonly sllps: number;
  /** First-stage 1 GiB pages. */
  readonly fl1gp: boolean;
  /** First-stage 5-level paging. */
  readonly fl5lp: boolean;
  /** Fault recording register offset in bytes. */
  readonly froBytes: number;
  /** Number of fault recording registers. */
  readonly nfr: number;
  /** Page-selective invalidation. */
  readonly psi: boolean;
  /** Max address mask. */
  readonly mamv: number;
  /** Caching mode. */
  readonly cm: boolean;
  /** Required write-buffer flushing. */
  readonly rwbf: boolean;
  /** IOTLB registers' offset in bytes. */
  readonly iroBytes: number;
  /** ECAP bits by name. */
  readonly qi: boolean;
  /** Device-TLB. */
  readonly dt: boolean;
  /** Pass-through. */
  readonly pt: boolean;
  /** Snoop control. */
  readonly sc: boolean;
  /** Memory type support. */
  readonly mts: boolean;
  /** Nested translation. */
  readonly nest: boolean;
  /** Page requests. */
  readonly prs: boolean;
  /** Execute requests. */
  readonly ers: boolean;
  /** Supervisor requests. */
  readonly srs: boolean;
  /** Extended accessed flag. */
  readonly eafs: boolean;
  /** PASID width in bits (PSS + 1). */
  readonly pasidBits: number;
  /** PASID support. */
  readonly pasid: boolean;
  /** Page-request drain. */
  readonly pds: boolean;
  /** Scalable mode. */
  readonly smts: boolean;
  /** Second-stage A/D. */
  readonly ssads: boolean;
  /** Second-stage translation in scalable mode. */
  readonly ssts: boolean;
  /** First-stage translation. */
  readonly fsts: boolean;
  /** Scalable-mode page-walk coherency. */
  readonly smpwcs: boolean;
  /** RID_PASID support. */
  readonly rps: boolean;
  /** Abort-DMA mode. */
  readonly adms: boolean;
  /** RID_PRIV support. */
  readonly rprivs: boolean;

  /**
   * @param cap - CAP_REG
   * @param ecap - ECAP_REG
   */
  constructor(
    readonly cap: bigint,
    readonly ecap: bigint,
  ) {
    const c = (f: readonly [number, number]) => getField(cap, f);
    const e = (f: readonly [number, number]) => getField(ecap, f) !== 0;
    this.sagaw = c(CAP.SAGAW);
    this.mgaw = c(CAP.MGAW) + 1;
    this.haw = Math.min(52, Math.max(33, this.mgaw));
    this.sllps = c(CAP.SLLPS);
    this.fl1gp = c(CAP.FL1GP) !== 0;
    this.fl5lp = c(CAP.FL5LP) !== 0;
    this.froBytes = c(CAP.FRO) * 16;
    this.nfr = c(CAP.NFR) + 1;
    this.psi = c(CAP.PSI) !== 0;
    this.mamv = c(CAP.MAMV);
    this.cm = c(CAP.CM) !== 0;
    this.rwbf = c(CAP.RWBF) !== 0;
    this.iroBytes = getField(ecap, ECAP.IRO) * 16;
    this.qi = e(ECAP.QI);
    this.dt = e(ECAP.DT);
    this.pt = e(ECAP.PT);
    this.sc = e(ECAP.SC);
    this.mts = e(ECAP.MTS);
    this.nest = e(ECAP.NEST);
    this.prs = e(ECAP.PRS);
    this.ers = e(ECAP.ERS);
    this.srs = e(ECAP.SRS);
    this.eafs = e(ECAP.EAFS);
    this.pasidBits = getField(ecap, ECAP.PSS) + 1;
    this.pasid = e(ECAP.PASID);
    this.pds = e(ECAP.PDS);
    this.smts = e(ECAP.SMTS);
    this.ssads = e(ECAP.SSADS);
    this.ssts = e(ECAP.SSTS);
    this.fsts = e(ECAP.FSTS);
    this.smpwcs = e(ECAP.SMPWCS);
    this.rps = e(ECAP.RPS);
    this.adms = e(ECAP.ADMS);
    this.rprivs = e(ECAP.RPRIVS);
  }

  /** True when SAGAW supports the adjusted width AW (1/2/3). */
  supportsAw(aw: number): boolean {
    return aw >= 1 && aw <= 3 && ((this.sagaw >> aw) & 1) === 1;
  }
}
