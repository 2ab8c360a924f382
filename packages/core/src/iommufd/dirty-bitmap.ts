/**
 * `IOMMU_HWPT_GET_DIRTY_BITMAP` into the caller's bitmap (the kernel's `data` pointer): bit n stands for
 * page n of the range, in u64 words with little-endian bit order (`data[n / 64] & 1 << n % 64`), which
 * is also byte `n / 8`, bit `n % 8` of a byte view. Bits are only ever set, as the kernel's iova_bitmap
 * does: the caller passes a zeroed bitmap. Its size bounds the request, so nothing is allocated per page
 * of the range.
 */
import { iova as makeIova, toHex, U64_MAX } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import { boolArg, objectArg, u64Arg } from './arguments.js';
import type { HwptPagingObject } from './hw-pagetable.js';

export type DirtyBitmap = Uint8Array | BigUint64Array;

/** `IOMMU_HWPT_GET_DIRTY_BITMAP`'s arguments. */
export interface DirtyBitmapRequest {
  readonly iova: bigint;
  readonly length: bigint;
  /** Bytes each bit stands for: a power of two, at least the IOAS's IOVA alignment. */
  readonly pageSize: bigint;
  /** Where the bits go (zeroed by the caller); it must hold `length / pageSize` bits (`EFAULT`). */
  readonly bitmap: DirtyBitmap;
  /** `IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR`: read without clearing. */
  readonly noClear?: boolean;
}

/**
 * Reads (and, unless `noClear`, clears) the dirty state of `[iova, +length)` of a paging HWPT into the
 * request's bitmap. Unmapped holes read as clean. The range is checked as Linux
 * `iommufd_check_iova_range` does, and the bitmap's size before anything is read.
 */
export function readDirtyBitmap(hwpt: HwptPagingObject, request: DirtyBitmapRequest): void {
  const r = objectArg<DirtyBitmapRequest>(request, 'dirty bitmap request');
  const iova = u64Arg(r.iova, 'IOVA');
  const length = u64Arg(r.length, 'length');
  const pageSize = u64Arg(r.pageSize, 'page size');
  const clear = r.noClear === undefined ? true : !boolArg(r.noClear, 'noClear');
  const domain = hwpt.domain;
  if (!domain.readAndClearDirty)
    throw new IommufdError('EOPNOTSUPP', `HWPT ${hwpt.id} has no dirty tracking`);
  if (length === 0n) throw new IommufdError('EINVAL', 'dirty range of zero length');
  const end = iova + length;
  if (end - 1n > U64_MAX) throw new IommufdError('EOVERFLOW', 'dirty range overflows 64 bits');
  if (pageSize === 0n || (pageSize & (pageSize - 1n)) !== 0n)
    throw new IommufdError('EINVAL', `page size ${pageSize} is not a power of two`);
  const iovaAlignment = hwpt.ioas.iopt.iovaAlignment;
  // Stryker disable next-line EqualityOperator: when the two are equal either one is the alignment
  const align = iovaAlignment > pageSize ? iovaAlignment : pageSize;
  if (iova % align !== 0n || end % align !== 0n)
    throw new IommufdError(
      'EINVAL',
      `dirty range ${toHex(iova)}+${toHex(length)} is not aligned to ${toHex(align)}`,
    );
  const bitmap = dirtyBitmapArg(r.bitmap, length / pageSize);
  const record = (dirtyIova: bigint, size: bigint) => {
    // Stryker disable next-line EqualityOperator: at equality both choices are the same bound
    const from = dirtyIova > iova ? dirtyIova : iova;
    // Stryker disable next-line EqualityOperator: at equality both choices are the same bound
    const to = dirtyIova + size < end ? dirtyIova + size : end;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a domain records only entries overlapping the part of [iova, end) it is asked for, so from < to always holds
    if (from < to)
      setDirtyBits(bitmap, Number((from - iova) / pageSize), Number((to - 1n - iova) / pageSize));
  };
  for (const area of hwpt.ioas.iopt.listAreas()) {
    // Stryker disable next-line EqualityOperator: at equality both choices are the same bound
    const from = area.iova > iova ? area.iova : iova;
    // Stryker disable next-line EqualityOperator: at equality both choices are the same bound
    const to = area.iova + area.length < end ? area.iova + area.length : end;
    if (from < to) domain.readAndClearDirty(makeIova(from), to - from, record, clear);
  }
}

/** Checks that `value` is a bitmap and holds `bits` bits; `EFAULT` when the range needs more. */
function dirtyBitmapArg(value: unknown, bits: bigint): DirtyBitmap {
  if (!(value instanceof Uint8Array) && !(value instanceof BigUint64Array))
    throw new IommufdError('EINVAL', 'the dirty bitmap must be a Uint8Array or a BigUint64Array');
  // The kernel would fault writing past the end of the user's buffer.
  if (BigInt(value.byteLength) * 8n < bits)
    throw new IommufdError(
      'EFAULT',
      `the dirty bitmap holds ${value.byteLength * 8} bits; the range needs ${bits}`,
    );
  return value;
}

/** Sets bits `first..last` (inclusive). */
function setDirtyBits(bitmap: DirtyBitmap, first: number, last: number): void {
  if (bitmap instanceof Uint8Array) {
    for (let bit = first; bit <= last; bit++) bitmap[bit >> 3]! |= 1 << (bit & 7);
    return;
  }
  for (let bit = first; bit <= last; bit++) bitmap[bit >> 6]! |= 1n << BigInt(bit & 63);
}
