/**
 * EEH (LoPAR ch_rtas.xml): `ibm,set-eeh-option`, `ibm,set-slot-reset`,
 * `ibm,read-slot-reset-state2`, `ibm,configure-pe`. A DMA error takes a PE to state 2 (MMIO and DMA stopped);
 * thaw MMIO takes 2 → 4, thaw DMA 4 → 0; a reset (activate → 1, deactivate → 0) clears it.
 */

import {
  EEH_CAPABILITY_SUPPORTED,
  EEH_OPT_DISABLE,
  EEH_OPT_ENABLE,
  EEH_OPT_THAW_DMA,
  EEH_OPT_THAW_MMIO,
  EEH_PE_STATE_NORMAL,
  EEH_PE_STATE_RESET,
  EEH_PE_STATE_STOPPED_DMA,
  EEH_PE_STATE_STOPPED_IO_DMA,
  EEH_RESET_DEACTIVATE,
  EEH_RESET_FUNDAMENTAL,
  EEH_RESET_HOT,
  RTAS_PARAMETER_ERROR,
  RTAS_SUCCESS,
  type RtasResult,
} from '../spec/rtas.js';
import { cell, type RtasContext } from './rtas-context.js';

const status = (s: number, outputs: readonly number[] = []): RtasResult => ({ status: s, outputs });

/**
 * `ibm,set-eeh-option` (config_addr, BUID hi, BUID lo, function). Disabling is recorded, but
 * under LPAR the platform keeps isolating the PE on errors (LoPAR R1 of the I/O sub-system
 * requirements: errors must be isolated "with the EEH option programming model"). Thaw DMA
 * while MMIO is still stopped (state 2) has no LoPAR state to go to: parameter error.
 */
export function setEehOption(ctx: RtasContext, args: readonly (number | bigint)[]): RtasResult {
  const pe = ctx.peAt(cell(args, 0), cell(args, 1), cell(args, 2));
  if (pe === undefined || args.length !== 4) return status(RTAS_PARAMETER_ERROR);
  switch (cell(args, 3)) {
    case EEH_OPT_DISABLE:
      pe.eehEnabled = false;
      return status(RTAS_SUCCESS);
    case EEH_OPT_ENABLE:
      pe.eehEnabled = true;
      return status(RTAS_SUCCESS);
    case EEH_OPT_THAW_MMIO:
      if (pe.state === EEH_PE_STATE_STOPPED_IO_DMA) pe.state = EEH_PE_STATE_STOPPED_DMA;
      else if (pe.state !== EEH_PE_STATE_NORMAL && pe.state !== EEH_PE_STATE_STOPPED_DMA) return status(RTAS_PARAMETER_ERROR);
      return status(RTAS_SUCCESS);
    case EEH_OPT_THAW_DMA:
      if (pe.state === EEH_PE_STATE_STOPPED_DMA) pe.state = EEH_PE_STATE_NORMAL;
      else if (pe.state !== EEH_PE_STATE_NORMAL) return status(RTAS_PARAMETER_ERROR);
      return status(RTAS_SUCCESS);
    default:
      return status(RTAS_PARAMETER_ERROR);
  }
}

/**
 * `ibm,set-slot-reset` (config_addr, BUID hi, BUID lo, function): 1 (hot) and 3 (fundamental)
 * assert reset (state 1), 0 deasserts it (state 0, the freeze cleared). The TCE tables are the
 * partition's and survive the reset.
 */
export function setSlotReset(ctx: RtasContext, args: readonly (number | bigint)[]): RtasResult {
  const pe = ctx.peAt(cell(args, 0), cell(args, 1), cell(args, 2));
  if (pe === undefined || args.length !== 4) return status(RTAS_PARAMETER_ERROR);
  switch (cell(args, 3)) {
    case EEH_RESET_HOT:
    case EEH_RESET_FUNDAMENTAL:
      pe.state = EEH_PE_STATE_RESET;
      return status(RTAS_SUCCESS);
    case EEH_RESET_DEACTIVATE:
      if (pe.state === EEH_PE_STATE_RESET) pe.state = EEH_PE_STATE_NORMAL;
      return status(RTAS_SUCCESS);
    default:
      return status(RTAS_PARAMETER_ERROR);
  }
}

/**
 * `ibm,read-slot-reset-state2` (config_addr, BUID hi, BUID lo) → PE state, EEH capability (1)
 * and PE unavailable info (0: the PE is never unavailable in this model).
 */
export function readSlotResetState2(ctx: RtasContext, args: readonly (number | bigint)[]): RtasResult {
  const pe = ctx.peAt(cell(args, 0), cell(args, 1), cell(args, 2));
  if (pe === undefined || args.length !== 3) return status(RTAS_PARAMETER_ERROR);
  return status(RTAS_SUCCESS, [pe.state, EEH_CAPABILITY_SUPPORTED, 0]);
}

/**
 * `ibm,configure-pe` (config_addr, BUID hi, BUID lo): after a reset the OS asks firmware to
 * configure the PE's bridges and devices again (Linux pseries_eeh_configure_bridge). The model
 * has no bridges and no configuration space to restore, so a known PE is configured at once.
 */
export function configurePe(ctx: RtasContext, args: readonly (number | bigint)[]): RtasResult {
  const pe = ctx.peAt(cell(args, 0), cell(args, 1), cell(args, 2));
  if (pe === undefined || args.length !== 3) return status(RTAS_PARAMETER_ERROR);
  return status(RTAS_SUCCESS);
}
