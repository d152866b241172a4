import { VIRTIO_PROFILES } from './backends.js';
import { differentialSuite } from './differential-suite.test-util.js';

// the VMM profiles of virtio-iommu: fewer runs (their differences are in the device's corner cases)
differentialSuite('differential-3', VIRTIO_PROFILES, 8, 100);
