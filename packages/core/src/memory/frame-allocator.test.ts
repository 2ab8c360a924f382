import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Hpa, hpa } from '../address/address.js';
import { errnoOf, IommufdError } from '../errors/iommufd-error.js';
import { FrameAllocator } from './frame-allocator.js';

const PAGE = 4096;
const BASE = 0x8000_0000;

describe('FrameAllocator', () => {
  it('rejects ranges that are not page aligned', () => {
    expect(errnoOf(() => new FrameAllocator([{ base: BASE + 1, size: PAGE }]))).toBe('EINVAL');
    expect(errnoOf(() => new FrameAllocator([{ base: BASE, size: PAGE + 1 }]))).toBe('EINVAL');
  });

  it('hands out frames first-fit from the lowest address', () => {
    const alloc = new FrameAllocator([
      { base: BASE + 16 * PAGE, size: 4 * PAGE },
      { base: BASE, size: 2 * PAGE },
    ]);
    expect(alloc.allocFrames(1)).toBe(BigInt(BASE));
    expect(alloc.allocFrames(2)).toBe(BigInt(BASE + 16 * PAGE));
    // The hole left at BASE + PAGE is found before the tail of the second range.
    expect(alloc.allocFrames(1)).toBe(BigInt(BASE + PAGE));
    expect(alloc.allocFrames(1)).toBe(BigInt(BASE + 18 * PAGE));
  });

  it('aligns allocations and keeps the skipped frames free', () => {
    const alloc = new FrameAllocator([{ base: BASE + PAGE, size: 64 * PAGE }]);
    const block = alloc.allocFrames(4, 4);
    expect(block).toBe(BigInt(BASE + 4 * PAGE));
    expect(block % BigInt(4 * PAGE)).toBe(0n);
    expect(alloc.allocFrames(3)).toBe(BigInt(BASE + PAGE));
    expect(alloc.allocFrames(1, 16)).toBe(BigInt(BASE + 16 * PAGE));
    expect(alloc.allocFrames(1)).toBe(BigInt(BASE + 8 * PAGE));
  });

  it.each([
    [0, 1],
    [-1, 1],
    [1.5, 1],
    [1, 0],
    [1, 3],
    [1, -2],
  ])('allocFrames(%s, %s) is EINVAL', (count, align) => {
    const alloc = new FrameAllocator([{ base: BASE, size: 16 * PAGE }]);
    expect(errnoOf(() => alloc.allocFrames(count, align))).toBe('EINVAL');
    expect(alloc.freeFrameCount).toBe(16);
  });

  it('allocBytes rounds up to whole frames and aligns to alignBytes', () => {
    const alloc = new FrameAllocator([{ base: BASE + PAGE, size: 64 * PAGE }]);
    expect(alloc.allocBytes(1)).toBe(BigInt(BASE + PAGE));
    expect(alloc.allocatedFrameCount).toBe(1);
    expect(alloc.allocBytes(PAGE + 1, 8 * PAGE)).toBe(BigInt(BASE + 8 * PAGE));
    expect(alloc.allocatedFrameCount).toBe(3);
    expect(alloc.allocBytes(0)).toBe(BigInt(BASE + 2 * PAGE));
    expect(alloc.allocatedFrameCount).toBe(4);
  });

  it('merges freed extents so the whole range can be allocated again', () => {
    const alloc = new FrameAllocator([{ base: BASE, size: 8 * PAGE }]);
    const blocks = [alloc.allocFrames(2), alloc.allocFrames(1), alloc.allocFrames(3), alloc.allocFrames(2)];
    expect(alloc.freeFrameCount).toBe(0);
    // Free out of order so merges happen with the previous, the next and both neighbours.
    alloc.freeFrames(blocks[1]!, 1);
    alloc.freeFrames(blocks[3]!, 2);
    alloc.freeFrames(blocks[0]!, 2);
    alloc.freeFrames(blocks[2]!, 3);
    expect(alloc.freeFrameCount).toBe(8);
    expect(alloc.allocatedFrameCount).toBe(0);
    expect(alloc.allocFrames(8, 8)).toBe(BigInt(BASE));
  });

  it('rejects a double free with EINVAL and leaves the state intact', () => {
    const alloc = new FrameAllocator([{ base: BASE, size: 8 * PAGE }]);
    const a = alloc.allocFrames(2);
    const b = alloc.allocFrames(2);
    alloc.freeFrames(a, 2);
    expect(errnoOf(() => alloc.freeFrames(a, 2))).toBe('EINVAL');
    // A range that is only partly free is also a double free.
    expect(errnoOf(() => alloc.freeFrames(hpa(BASE + PAGE), 2))).toBe('EINVAL');
    expect(alloc.freeFrameCount).toBe(6);
    expect(alloc.allocatedFrameCount).toBe(2);
    alloc.freeFrames(b, 2);
    expect(alloc.allocFrames(8)).toBe(BigInt(BASE));
  });

  it.each([
    ['an unaligned address', BASE + 8, 1],
    ['frames outside every range', 0x1000_0000, 1],
    ['a block running past the range', BASE + 7 * PAGE, 2],
    ['zero frames', BASE, 0],
    ['a negative count', BASE, -1],
  ])('rejects freeing %s with EINVAL and leaves the state intact', (_case, base, count) => {
    const alloc = new FrameAllocator([{ base: BASE, size: 8 * PAGE }]);
    alloc.allocFrames(8);
    expect(errnoOf(() => alloc.freeFrames(hpa(base), count))).toBe('EINVAL');
    expect(alloc.allocatedFrameCount).toBe(8);
    expect(alloc.freeFrameCount).toBe(0);
    // Nothing outside the managed range was slipped into the free list.
    expect(errnoOf(() => alloc.allocFrames(1))).toBe('ENOMEM');
  });

  it('frees a block that spans two adjacent ranges', () => {
    const alloc = new FrameAllocator([
      { base: BASE, size: 4 * PAGE },
      { base: BASE + 4 * PAGE, size: 4 * PAGE },
    ]);
    const block = alloc.allocFrames(8);
    alloc.freeFrames(block, 8);
    expect(alloc.freeFrameCount).toBe(8);
  });

  it('reports exhaustion as ENOMEM without changing the state', () => {
    const alloc = new FrameAllocator([{ base: BASE, size: 8 * PAGE }]);
    alloc.allocFrames(1);
    alloc.allocFrames(1, 4);
    // Free frames are [1, 4) and [5, 8): 6 frames, but no 4 contiguous ones.
    let error: unknown;
    try {
      alloc.allocFrames(4);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IommufdError);
    expect((error as IommufdError).code).toBe('ENOMEM');
    expect((error as IommufdError).context).toMatchObject({ count: 4, alignFrames: 1, free: 6 });
    expect(errnoOf(() => alloc.allocFrames(1, 8))).toBe('ENOMEM');
    expect(alloc.freeFrameCount).toBe(6);
    expect(alloc.allocatedFrameCount).toBe(2);
    expect(alloc.allocFrames(3)).toBe(BigInt(BASE + PAGE));
    expect(alloc.allocFrames(3)).toBe(BigInt(BASE + 5 * PAGE));
    expect(errnoOf(() => alloc.allocFrames(1))).toBe('ENOMEM');
  });

  it('zeroes each allocation through the callback with (base, bytes)', () => {
    const calls: [Hpa, number][] = [];
    const alloc = new FrameAllocator([{ base: BASE, size: 16 * PAGE }], (base, bytes) => {
      calls.push([base, bytes]);
    });
    alloc.allocFrames(1);
    alloc.allocFrames(4, 4);
    alloc.allocBytes(100);
    expect(() => alloc.allocFrames(16)).toThrow(IommufdError);
    expect(calls).toEqual([
      [BigInt(BASE), PAGE],
      [BigInt(BASE + 4 * PAGE), 4 * PAGE],
      [BigInt(BASE + PAGE), PAGE],
    ]);
  });

  it('keeps freeFrameCount and allocatedFrameCount in step', () => {
    const alloc = new FrameAllocator([
      { base: 0, size: 4 * PAGE },
      { base: BASE, size: 12 * PAGE },
    ]);
    expect([alloc.freeFrameCount, alloc.allocatedFrameCount]).toEqual([16, 0]);
    const a = alloc.allocFrames(3);
    expect([alloc.freeFrameCount, alloc.allocatedFrameCount]).toEqual([13, 3]);
    const b = alloc.allocFrames(8);
    expect([alloc.freeFrameCount, alloc.allocatedFrameCount]).toEqual([5, 11]);
    alloc.freeFrames(a, 3);
    expect([alloc.freeFrameCount, alloc.allocatedFrameCount]).toEqual([8, 8]);
    alloc.freeFrames(b, 8);
    expect([alloc.freeFrameCount, alloc.allocatedFrameCount]).toEqual([16, 0]);
  });

  it('never hands out overlapping frames and conserves the total under any alloc/free sequence', () => {
    const TOTAL = 64;
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('alloc' as const),
        count: fc.integer({ min: 1, max: 12 }),
        alignLog2: fc.integer({ min: 0, max: 4 }),
      }),
      fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const alloc = new FrameAllocator([
          { base: BASE, size: (TOTAL / 2) * PAGE },
          { base: BASE + TOTAL * PAGE, size: (TOTAL / 2) * PAGE },
        ]);
        const live: { start: number; count: number }[] = [];
        for (const o of ops) {
          if (o.kind === 'alloc') {
            const align = 2 ** o.alignLog2;
            let base: Hpa;
            try {
              base = alloc.allocFrames(o.count, align);
            } catch (error) {
              expect((error as IommufdError).code).toBe('ENOMEM');
              continue;
            }
            const start = Number(base) / PAGE;
            expect(start % align).toBe(0);
            const inRange =
              (start >= BASE / PAGE && start + o.count <= BASE / PAGE + TOTAL / 2) ||
              (start >= BASE / PAGE + TOTAL && start + o.count <= BASE / PAGE + TOTAL + TOTAL / 2);
            expect(inRange).toBe(true);
            for (const l of live) {
              expect(start + o.count <= l.start || l.start + l.count <= start).toBe(true);
            }
            live.push({ start, count: o.count });
          } else if (live.length > 0) {
            const [block] = live.splice(o.pick % live.length, 1);
            alloc.freeFrames(hpa(block!.start * PAGE), block!.count);
          }
          const held = live.reduce((sum, l) => sum + l.count, 0);
          expect(alloc.allocatedFrameCount).toBe(held);
          expect(alloc.allocatedFrameCount + alloc.freeFrameCount).toBe(TOTAL);
        }
        for (const l of live) alloc.freeFrames(hpa(l.start * PAGE), l.count);
        expect(alloc.allocFrames(TOTAL / 2)).toBe(BigInt(BASE));
        expect(alloc.allocFrames(TOTAL / 2)).toBe(BigInt(BASE + TOTAL * PAGE));
      }),
    );
  });
});
