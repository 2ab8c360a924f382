/**
 * `IOMMU_HWPT_INVALIDATE` (Linux `iommufd_hwpt_invalidate`): the user's vendor invalidation entries for a
 * nested HWPT's or a vIOMMU's caches, run in order. The kernel reports how many entries took effect even
 * when one fails; here the failing entry's error carries that count as `context.handled`.
 */
import { IommufdError } from '../errors/iommufd-error.js';
import type { InvalidationResult } from '../iommu/driver.js';
import { HwptNestedObject } from './hw-pagetable.js';
import type { IommufdObject } from './object-table.js';
import { ViommuObject } from './viommu.js';

/** The result of `IOMMU_HWPT_INVALIDATE`: every entry was handled. A failure throws, with `context.handled`. */
export interface InvalidateOutcome {
  readonly handled: number;
}

/**
 * Runs `entries` on a nested HWPT's or a vIOMMU's caches: `EINVAL` for any other object, `EOPNOTSUPP`
 * for a nested HWPT without user-managed caches.
 */
export function invalidateUserCaches(target: IommufdObject, entries: readonly unknown[]): InvalidationResult {
  if (target instanceof ViommuObject) return target.driverObject.cacheInvalidate(entries);
  if (!(target instanceof HwptNestedObject))
    throw new IommufdError(
      'EINVAL',
      `object ${target.id} is a ${target.type}: invalidate a nested HWPT or a vIOMMU`,
    );
  if (!target.domain.cacheInvalidateUser)
    throw new IommufdError('EOPNOTSUPP', `HWPT ${target.id} has no user-managed caches`);
  return target.domain.cacheInvalidateUser(entries);
}

/** The error of a failed invalidation: the failing entry's, with the entries handled before it. */
export function invalidationError(error: IommufdError, handled: number): IommufdError {
  return new IommufdError(
    error.code,
    // Stryker disable next-line Regex: every IommufdError message starts with "<errno>: ", the first match either way
    error.message.replace(/^\w+: /, ''),
    { ...error.context, handled },
    { cause: error },
  );
}
