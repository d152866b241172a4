/**
 * VFIO_EEH_PE_OP on a PE, the way Linux's powerpc EEH core drives pseries firmware
 * (arch/powerpc/kernel/eeh.c eeh_pe_set_option / eeh_pe_get_state / eeh_pe_reset /
 * eeh_pe_configure → arch/powerpc/platforms/pseries/eeh_pseries.c): every operation is an RTAS
 * call on the PE's config address and the PHB's BUID.
 */

import {
  IoasidError,
  VFIO_EEH_PE_CONFIGURE,
  VFIO_EEH_PE_DISABLE,
  VFIO_EEH_PE_ENABLE,
  VFIO_EEH_PE_GET_STATE,
  VFIO_EEH_PE_INJECT_ERR,
  VFIO_EEH_PE_RESET_DEACTIVATE,
  VFIO_EEH_PE_RESET_FUNDAMENTAL,
  VFIO_EEH_PE_RESET_HOT,
  VFIO_EEH_PE_UNFREEZE_DMA,
  VFIO_EEH_PE_UNFREEZE_IO,
} from '@ioasid/uapi';
import type { PaprFirmware } from '../spec/firmware.js';
import {
  EEH_OPT_DISABLE,
  EEH_OPT_ENABLE,
  EEH_OPT_THAW_DMA,
  EEH_OPT_THAW_MMIO,
  EEH_RESET_DEACTIVATE,
  EEH_RESET_FUNDAMENTAL,
  EEH_RESET_HOT,
  RTAS_CONFIGURE_PE,
  RTAS_PARAMETER_ERROR,
  RTAS_READ_SLOT_RESET_STATE2,
  RTAS_SET_EEH_OPTION,
  RTAS_SET_SLOT_RESET,
  RTAS_SUCCESS,
  buidCells,
} from '../spec/rtas.js';
import type { DriverPe } from './driver-pe.js';

/** Why error injection is refused: the uAPI op carries no `vfio_eeh_pe_err` (type, func, addr, mask). */
export const EEH_INJECT_UNSUPPORTED = 'VFIO_EEH_PE_INJECT_ERR needs a struct vfio_eeh_pe_err, which eehPeOp does not take (ibm,errinjct is not modelled)';

/** RTAS status → errno: a refused argument or state is EINVAL, anything else EIO. */
function check(call: string, status: number, pe: DriverPe): void {
  if (status === RTAS_SUCCESS) return;
  throw new IoasidError(status === RTAS_PARAMETER_ERROR ? 'EINVAL' : 'EIO', 'op', `${call} on ${pe.label} answered ${status}`);
}

/** Carries one `VFIO_EEH_PE_*` op to firmware; returns the PE state for GET_STATE, else 0. */
export function eehPeOp(fw: PaprFirmware, buid: bigint, pe: DriverPe, op: number): number {
  const [hi, lo] = buidCells(buid);
  const cfg = pe.node.configAddr;
  const option = (fn: number) => {
    check(RTAS_SET_EEH_OPTION, fw.rtas(RTAS_SET_EEH_OPTION, [cfg, hi, lo, fn]).status, pe);
    return 0;
  };
  const reset = (fn: number) => {
    check(RTAS_SET_SLOT_RESET, fw.rtas(RTAS_SET_SLOT_RESET, [cfg, hi, lo, fn]).status, pe);
    return 0;
  };
  switch (op) {
    case VFIO_EEH_PE_DISABLE:
      return option(EEH_OPT_DISABLE);
    case VFIO_EEH_PE_ENABLE:
      return option(EEH_OPT_ENABLE);
    case VFIO_EEH_PE_UNFREEZE_IO:
      return option(EEH_OPT_THAW_MMIO);
    case VFIO_EEH_PE_UNFREEZE_DMA:
      return option(EEH_OPT_THAW_DMA);
    case VFIO_EEH_PE_GET_STATE: {
      const r = fw.rtas(RTAS_READ_SLOT_RESET_STATE2, [cfg, hi, lo], 4);
      check(RTAS_READ_SLOT_RESET_STATE2, r.status, pe);
      // the PE states of ibm,read-slot-reset-state2 (0 normal, 1 reset, 2 stopped, 4 DMA
      // stopped, 5 unavailable) are the VFIO_EEH_PE_STATE_* values
      return r.outputs[0] ?? 0;
    }
    case VFIO_EEH_PE_RESET_DEACTIVATE:
      return reset(EEH_RESET_DEACTIVATE);
    case VFIO_EEH_PE_RESET_HOT:
      return reset(EEH_RESET_HOT);
    case VFIO_EEH_PE_RESET_FUNDAMENTAL:
      return reset(EEH_RESET_FUNDAMENTAL);
    case VFIO_EEH_PE_CONFIGURE:
      check(RTAS_CONFIGURE_PE, fw.rtas(RTAS_CONFIGURE_PE, [cfg, hi, lo]).status, pe);
      return 0;
    case VFIO_EEH_PE_INJECT_ERR:
      throw new IoasidError('EOPNOTSUPP', 'op', EEH_INJECT_UNSUPPORTED);
    default:
      throw new IoasidError('EINVAL', 'op', `${op} is not a VFIO_EEH_PE_* operation`);
  }
}
