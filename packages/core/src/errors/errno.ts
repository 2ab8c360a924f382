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
] as const;

export type Errno = (typeof ERRNO_CODES)[number];
