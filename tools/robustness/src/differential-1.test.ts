import { PAPR, SMMUV3, VTD } from './backends.js';
import { differentialSuite } from './differential-suite.test-util.js';

differentialSuite('differential-1', [VTD, SMMUV3, PAPR]);
