/** Request status codes (virtio spec "Device operations", `VIRTIO_IOMMU_S_*`). */

/** All good. */
export const VIRTIO_IOMMU_S_OK = 0;
/** Virtio communication error. */
export const VIRTIO_IOMMU_S_IOERR = 1;
/** Unsupported request. */
export const VIRTIO_IOMMU_S_UNSUPP = 2;
/** Internal device error. */
export const VIRTIO_IOMMU_S_DEVERR = 3;
/** Invalid parameters. */
export const VIRTIO_IOMMU_S_INVAL = 4;
/** Out-of-range parameters. */
export const VIRTIO_IOMMU_S_RANGE = 5;
/** Entry not found. */
export const VIRTIO_IOMMU_S_NOENT = 6;
/** Bad address. */
export const VIRTIO_IOMMU_S_FAULT = 7;
/** Insufficient resources. */
export const VIRTIO_IOMMU_S_NOMEM = 8;

/** Status names by value. */
export const STATUS_NAMES: readonly string[] = [
  'VIRTIO_IOMMU_S_OK',
  'VIRTIO_IOMMU_S_IOERR',
  'VIRTIO_IOMMU_S_UNSUPP',
  'VIRTIO_IOMMU_S_DEVERR',
  'VIRTIO_IOMMU_S_INVAL',
  'VIRTIO_IOMMU_S_RANGE',
  'VIRTIO_IOMMU_S_NOENT',
  'VIRTIO_IOMMU_S_FAULT',
  'VIRTIO_IOMMU_S_NOMEM',
];

/**
 * The errno Linux's driver turns a status into (`viommu_get_req_errno`): UNSUPP → ENOSYS is
 * reported as EOPNOTSUPP here (the uAPI has no ENOSYS); IOERR, DEVERR and unknown → EIO.
 */
export function statusErrno(status: number): 'EIO' | 'EOPNOTSUPP' | 'EINVAL' | 'ERANGE' | 'ENOENT' | 'EFAULT' | 'ENOMEM' {
  switch (status) {
    case VIRTIO_IOMMU_S_UNSUPP:
      return 'EOPNOTSUPP';
    case VIRTIO_IOMMU_S_INVAL:
      return 'EINVAL';
    case VIRTIO_IOMMU_S_RANGE:
      return 'ERANGE';
    case VIRTIO_IOMMU_S_NOENT:
      return 'ENOENT';
    case VIRTIO_IOMMU_S_FAULT:
      return 'EFAULT';
    case VIRTIO_IOMMU_S_NOMEM:
      return 'ENOMEM';
    default:
      return 'EIO';
  }
}
