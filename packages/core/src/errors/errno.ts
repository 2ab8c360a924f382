/**
 * Errno-like codes for API misuse, with the meaning the Linux iommufd uAPI gives them
 * (see docs/iommufd.md). Architectural outcomes (faults, bad table entries) never use these:
 * they are data returned by the models.
 */
export const ERRNO_CODES = [
  'EINVAL',
  'ENOENT',
  'EBUSY',
  'EEXIST',
  'EADDRINUSE',
  'EOPNOTSUPP',
  'ENOSPC',
  'ENOMEM',
  'EIO',
  'E2BIG',
  'EOVERFLOW',
  'EPERM',
  'ENODEV',
  /** A caller's buffer is too small or outside its memory (the kernel's failed user copy). */
  'EFAULT',
  /** A driver's wait for its hardware reached its bound (see `POLL_LIMIT`). */
  'ETIMEDOUT',
] as const;

export type Errno = (typeof ERRNO_CODES)[number];
