/**
 * The caller's dirty bitmap of `IOMMU_HWPT_GET_DIRTY_BITMAP` (the kernel's `data` pointer): bit n stands
 * for page n of the range, in u64 words with little-endian bit order (`data[n / 64] & 1 << n % 64`),
 * which is also byte `n / 8`, bit `n % 8` of a byte view. Bits are only ever set, as the kernel's
 * iova_bitmap does: the caller passes a zeroed bitmap. Its size bounds the request, so nothing is
 * allocated per page of the range.
 */
import { IommufdError } from '../errors/iommufd-error.js';

export type DirtyBitmap = Uint8Array | BigUint64Array;

/** Checks that `value` is a bitmap and holds `bits` bits; `EFAULT` when the range needs more. */
export function dirtyBitmapArg(value: unknown, bits: bigint): DirtyBitmap {
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
export function setDirtyBits(bitmap: DirtyBitmap, first: number, last: number): void {
  if (bitmap instanceof Uint8Array) {
    for (let bit = first; bit <= last; bit++) bitmap[bit >> 3]! |= 1 << (bit & 7);
    return;
  }
  for (let bit = first; bit <= last; bit++) bitmap[bit >> 6]! |= 1n << BigInt(bit & 63);
}
