/**
 * What the driver sees of the device: the virtio transport (feature negotiation, the config
 * space) and the two virtqueues as bytes. Nothing else crosses from driver to device — the
 * same surface a guest's virtio-iommu driver has.
 */

/** The virtio transport and virtqueues of a virtio-iommu device. */
export interface VirtioIommuTransport {
  /** The device feature bits (VIRTIO_F_VERSION_1 is bit 32). */
  readonly deviceFeatures: bigint;
  /** Writes the driver features and sets FEATURES_OK; false when the device clears it. */
  negotiate(driverFeatures: bigint): boolean;
  /** Reads the device-specific config space. */
  readConfig(): Uint8Array;
  /** Writes bytes of the config space. */
  writeConfig(offset: number, data: Uint8Array): void;
  /**
   * Queues one request on the requestq: the device-readable part, and the size of the
   * device-writable buffer. Returns the bytes the device wrote (used length 0: empty).
   */
  request(readable: Uint8Array, writableLength?: number): Uint8Array;
  /** Takes the eventq buffers the device filled since the last call. */
  takeEvents(): Uint8Array[];
  /** Registers the eventq interrupt handler. */
  setEventNotifier(notify: (() => void) | undefined): void;
}
