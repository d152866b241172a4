import { PAPR_4K, VIRTIO, VIRTIO_PLUS_EXT } from './backends.js';
import { differentialSuite } from './differential-suite.test-util.js';

differentialSuite('differential-2', [PAPR_4K, VIRTIO, VIRTIO_PLUS_EXT]);
