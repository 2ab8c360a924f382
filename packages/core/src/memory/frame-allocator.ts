/**
 * Host physical page allocator: the role of the kernel's page allocator for drivers (queues, stream
 * tables, page tables) and for buffers a scenario hands to devices. Free memory is kept as sorted extents of
 * 4 KiB frames, so a 1 TiB RAM costs one extent, not a bitmap. Allocation is first-fit with alignment,
 * deterministic for a given sequence of calls.
 */

import { type Hpa, hpa, PAGE_SHIFT, PAGE_SIZE, toHex } from '../address/address.js';
import { token } from '../di/token.js';
import { IommufdError } from '../errors/iommufd-error.js';

interface Extent {
  start: number;
  count: number;
}

export const IFrameAllocator = token<IFrameAllocator>('iommukit.FrameAllocator');
export interface IFrameAllocator {
  /** Allocates `count` contiguous frames aligned to `alignFrames` (a power of two); `ENOMEM` if none. */
  allocFrames(count: number, alignFrames?: number): Hpa;
  /** Allocates a zeroed block of `bytes` (rounded up to whole frames) aligned to `alignBytes` (default 4 KiB). */
  allocBytes(bytes: number, alignBytes?: number): Hpa;
  /** Returns frames to the allocator; freeing frames that are not allocated throws `EINVAL`. */
  freeFrames(base: Hpa, count: number): void;
  readonly freeFrameCount: number;
  readonly allocatedFrameCount: number;
}

export class FrameAllocator implements IFrameAllocator {
  private readonly free: Extent[] = [];
  /** The frames this allocator manages, so a free of frames it never handed out is caught. */
  private readonly managed: Extent[] = [];
  private allocated = 0;

  /** `ranges` are the RAM ranges (byte base and size, frame aligned) the allocator hands out. */
  constructor(
    ranges: readonly { base: number; size: number }[],
    private readonly zero?: (base: Hpa, bytes: number) => void,
  ) {
    for (const r of ranges) {
      if (r.base % PAGE_SIZE !== 0 || r.size % PAGE_SIZE !== 0) {
        throw new IommufdError(
          'EINVAL',
          `allocator range ${toHex(r.base)}+${toHex(r.size)} is not page aligned`,
        );
      }
      this.managed.push({ start: r.base / PAGE_SIZE, count: r.size / PAGE_SIZE });
      this.release(r.base / PAGE_SIZE, r.size / PAGE_SIZE);
    }
  }

  get freeFrameCount(): number {
    return this.free.reduce((sum, e) => sum + e.count, 0);
  }

  get allocatedFrameCount(): number {
    return this.allocated;
  }

  allocFrames(count: number, alignFrames = 1): Hpa {
    if (!Number.isSafeInteger(count) || count <= 0)
      throw new IommufdError('EINVAL', `cannot allocate ${count} frames`);
    if (alignFrames <= 0 || (alignFrames & (alignFrames - 1)) !== 0) {
      throw new IommufdError('EINVAL', `frame alignment ${alignFrames} is not a power of two`);
    }
    for (let i = 0; i < this.free.length; i++) {
      const e = this.free[i]!;
      const start = Math.ceil(e.start / alignFrames) * alignFrames;
      const end = start + count;
      if (end > e.start + e.count) continue;
      const tail = e.start + e.count - end;
      const parts: Extent[] = [];
      if (start > e.start) parts.push({ start: e.start, count: start - e.start });
      if (tail > 0) parts.push({ start: end, count: tail });
      this.free.splice(i, 1, ...parts);
      this.allocated += count;
      const base = hpa(BigInt(start) << BigInt(PAGE_SHIFT));
      this.zero?.(base, count * PAGE_SIZE);
      return base;
    }
    throw new IommufdError('ENOMEM', `no ${count} contiguous free frames aligned to ${alignFrames}`, {
      count,
      alignFrames,
      free: this.freeFrameCount,
    });
  }

  allocBytes(bytes: number, alignBytes = PAGE_SIZE): Hpa {
    const frames = Math.max(1, Math.ceil(bytes / PAGE_SIZE));
    return this.allocFrames(frames, Math.max(1, Math.ceil(alignBytes / PAGE_SIZE)));
  }

  freeFrames(base: Hpa, count: number): void {
    if ((base & BigInt(PAGE_SIZE - 1)) !== 0n)
      throw new IommufdError('EINVAL', `free of unaligned address ${toHex(base)}`);
    if (!Number.isSafeInteger(count) || count <= 0)
      throw new IommufdError('EINVAL', `cannot free ${count} frames at ${toHex(base)}`);
    const start = Number(base >> BigInt(PAGE_SHIFT));
    const covered = this.managed.reduce(
      (sum, e) => sum + Math.max(0, Math.min(e.start + e.count, start + count) - Math.max(e.start, start)),
      0,
    );
    if (covered !== count)
      throw new IommufdError('EINVAL', `free of frames at ${toHex(base)} (+${count}) outside the allocator`);
    const overlapsFree = this.free.some((e) => start < e.start + e.count && e.start < start + count);
    if (overlapsFree) throw new IommufdError('EINVAL', `double free of frames at ${toHex(base)} (+${count})`);
    this.release(start, count);
    this.allocated -= count;
  }

  private release(start: number, count: number): void {
    let i = this.free.findIndex((e) => e.start > start);
    if (i < 0) i = this.free.length;
    this.free.splice(i, 0, { start, count });
    // Merge with the neighbours so the extent list stays minimal.
    const next = this.free[i + 1];
    if (next && start + count === next.start) {
      this.free[i]!.count += next.count;
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev.start + prev.count === start) {
      prev.count += this.free[i]!.count;
      this.free.splice(i, 1);
    }
  }
}
