/**
 * The mock's user invalidation entries (its "uAPI" for `IOMMU_HWPT_INVALIDATE`, in the role of the
 * selftest mock's `iommu_hwpt_invalidate_selftest`). On a nested HWPT an entry names a range of that
 * domain's stage-1 tag; on a vIOMMU it names the tag itself, or a vDEVICE whose cached configuration to
 * drop. Entries run in order and the batch stops at the first bad one, as the kernel requires.
 */
import { type InvalidationResult, IommufdError, isIommufdError } from '@iommukit/core';

/** On a nested HWPT. */
export type MockHwptInvalidation =
  | { readonly op: 'all' }
  | { readonly op: 'range'; readonly iova: bigint; readonly size: bigint };

/** On a vIOMMU. */
export type MockViommuInvalidation =
  | { readonly op: 'all'; readonly tag: number }
  | { readonly op: 'range'; readonly tag: number; readonly iova: bigint; readonly size: bigint }
  | { readonly op: 'device'; readonly virtId: bigint };

/** Runs `execute` on each entry in order; stops at the first that throws an IommufdError. */
export function runEntries<T>(
  entries: readonly unknown[],
  parse: (raw: unknown) => T,
  execute: (entry: T) => void,
): InvalidationResult {
  for (const [index, raw] of entries.entries()) {
    try {
      execute(parse(raw));
    } catch (error) {
      if (!isIommufdError(error)) throw error;
      return { handled: index, error };
    }
  }
  return { handled: entries.length };
}

export function parseHwptEntry(raw: unknown): MockHwptInvalidation {
  const entry = asObject(raw);
  if (entry.op === 'all') return { op: 'all' };
  if (entry.op === 'range') return { op: 'range', ...range(entry) };
  throw new IommufdError('EOPNOTSUPP', `unknown invalidation op ${JSON.stringify(entry.op)}`);
}

export function parseViommuEntry(raw: unknown): MockViommuInvalidation {
  const entry = asObject(raw);
  if (entry.op === 'device') {
    if (typeof entry.virtId !== 'bigint')
      throw new IommufdError('EINVAL', 'a device invalidation needs a bigint virtId');
    return { op: 'device', virtId: entry.virtId };
  }
  const tag = entry.tag;
  if (typeof tag !== 'number' || !Number.isInteger(tag) || tag < 1 || tag > 0xffff) {
    throw new IommufdError('EINVAL', `stage-1 tag ${String(tag)} is not in 1..65535`);
  }
  if (entry.op === 'all') return { op: 'all', tag };
  if (entry.op === 'range') return { op: 'range', tag, ...range(entry) };
  throw new IommufdError('EOPNOTSUPP', `unknown invalidation op ${JSON.stringify(entry.op)}`);
}

function asObject(raw: unknown): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null)
    throw new IommufdError('EINVAL', 'an invalidation entry must be an object');
  return raw as Record<string, unknown>;
}

function range(entry: Record<string, unknown>): { iova: bigint; size: bigint } {
  const { iova, size } = entry;
  if (typeof iova !== 'bigint' || typeof size !== 'bigint' || size <= 0n || iova % 4096n !== 0n) {
    throw new IommufdError(
      'EINVAL',
      'a range invalidation needs a 4 KiB aligned bigint iova and a positive bigint size',
    );
  }
  return { iova, size };
}
