import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errnoOf } from '../errors/iommufd-error.js';
import { IovaAllocator, roundUpPow2 } from './iova-allocator.js';

const PAGE = 0x1000n;
const TOP = 0xffff_ffffn;

describe('IovaAllocator', () => {
  it('alloc_iova allocates top-down from the end of the space, filling the highest hole that fits first', () => {
    const iovas = new IovaAllocator(PAGE, TOP);
    expect(iovas.alloc(0x1000n)).toBe(0xffff_f000n);
    expect(iovas.alloc(0x1000n)).toBe(0xffff_e000n);
    // 12 KiB is aligned to 16 KiB, which leaves a 12 KiB hole above it.
    expect(iovas.alloc(0x3000n)).toBe(0xffff_8000n);
    expect(iovas.alloc(0x1000n)).toBe(0xffff_d000n);
    // The 8 KiB hole left at 0xffff_b000 is not 8 KiB aligned: the next 8 KiB goes below.
    expect(iovas.alloc(0x2000n)).toBe(0xffff_6000n);
  });

  it.each([
    ['4 KiB', 0x1000n, 0xffff_f000n],
    ['6 KiB', 0x1800n, 0xffff_e000n],
    ['20 KiB', 0x5000n, 0xffff_8000n],
    ['1 MiB', 0x10_0000n, 0xfff0_0000n],
  ])('size-aligned IOVAs: %s is aligned to roundup_pow_of_two(size)', (_, size, expected) => {
    const got = new IovaAllocator(PAGE, TOP).alloc(size);
    expect(got).toBe(expected);
    expect(got % roundUpPow2(size)).toBe(0n);
  });

  it('an explicit alignment replaces the size alignment', () => {
    const iovas = new IovaAllocator(PAGE, TOP);
    expect(iovas.alloc(0x3000n, PAGE)).toBe(0xffff_d000n);
  });

  it('roundUpPow2 rounds up to a power of two', () => {
    expect([1n, 2n, 3n, 0x1000n, 0x1001n, 0x3000n].map(roundUpPow2)).toEqual([
      1n,
      2n,
      4n,
      0x1000n,
      0x2000n,
      0x4000n,
    ]);
  });

  it('reserved ranges (reserve_iova) are never handed out: an allocation that does not fit above one goes below it', () => {
    const iovas = new IovaAllocator(0n, TOP, [{ start: 0xfee0_0000n, length: 0x10_0000n }]);
    const a = iovas.alloc(0x100_0000n);
    expect(a).toBe(0xff00_0000n);
    const b = iovas.alloc(0x100_0000n);
    expect(b).toBe(0xfd00_0000n);
    expect(b + 0x100_0000n <= 0xfee0_0000n).toBe(true);
  });

  it('a reserved range at the very top pushes the first allocation below it', () => {
    const iovas = new IovaAllocator(PAGE, TOP, [{ start: 0xffff_f000n, length: PAGE }]);
    expect(iovas.alloc(PAGE)).toBe(0xffff_e000n);
  });

  it('never below the start of the space', () => {
    const iovas = new IovaAllocator(0x10_0000n, 0x10_3fffn);
    expect([iovas.alloc(PAGE), iovas.alloc(PAGE), iovas.alloc(PAGE), iovas.alloc(PAGE)]).toEqual([
      0x10_3000n,
      0x10_2000n,
      0x10_1000n,
      0x10_0000n,
    ]);
    expect(errnoOf(() => iovas.alloc(PAGE))).toBe('ENOSPC');
  });

  it('never below the start of the space, even when a reserved range lies below it', () => {
    // Without the floor at `start`, the 16 KiB-aligned slot at 0x4000 (below 0x5000) would be taken.
    const iovas = new IovaAllocator(0x5000n, 0x8fffn, [{ start: 0n, length: 0x1000n }]);
    expect(errnoOf(() => iovas.alloc(0x4000n))).toBe('ENOSPC');
    expect(iovas.alloc(0x4000n, PAGE)).toBe(0x5000n);
  });

  it.each([
    ['the range is larger than the space', 0x8000n],
    ['only a misaligned hole is large enough', 0x4000n],
  ])('ENOSPC when %s', (_, size) => {
    // 16 KiB from 0x1000: a 16 KiB allocation would need a 16 KiB-aligned start.
    expect(errnoOf(() => new IovaAllocator(PAGE, 0x4fffn).alloc(size))).toBe('ENOSPC');
  });

  it('a size of 0 is EINVAL', () => {
    expect(errnoOf(() => new IovaAllocator(PAGE, TOP).alloc(0n))).toBe('EINVAL');
  });

  it('free_iova: a freed range is handed out again', () => {
    const iovas = new IovaAllocator(PAGE, TOP);
    const a = iovas.alloc(0x2000n);
    const b = iovas.alloc(0x2000n);
    iovas.free(a, 0x2000n);
    expect(iovas.alloc(0x2000n)).toBe(a);
    expect(iovas.alloc(0x2000n)).toBe(b - 0x2000n);
  });

  it.each([
    ['never allocated', (_a: bigint) => [0x1000_0000n, 0x1000n] as const],
    ['a part of an allocation', (a: bigint) => [a, 0x1000n] as const],
    ['an allocation at the wrong address', (a: bigint) => [a + 0x1000n, 0x2000n] as const],
    ['the tail of an allocation', (a: bigint) => [a + 0x1000n, 0x1000n] as const],
    ['a reserved range', (_a: bigint) => [0x8000_0000n, 0x10_0000n] as const],
  ])('free_iova: freeing a range that was %s is EINVAL', (_, pick) => {
    const iovas = new IovaAllocator(PAGE, TOP, [{ start: 0x8000_0000n, length: 0x10_0000n }]);
    const a = iovas.alloc(0x2000n);
    const [at, size] = pick(a);
    expect(errnoOf(() => iovas.free(at, size))).toBe('EINVAL');
    // Nothing was freed: the next allocation does not reuse `a`.
    expect(iovas.alloc(0x2000n)).not.toBe(a);
  });

  it('free_iova: freeing twice is EINVAL', () => {
    const iovas = new IovaAllocator(PAGE, TOP);
    const a = iovas.alloc(PAGE);
    iovas.free(a, PAGE);
    expect(errnoOf(() => iovas.free(a, PAGE))).toBe('EINVAL');
  });

  it('reserved ranges that overlap each other are all honoured', () => {
    // [0, 0xafff] contains [0x5000, 0x7fff]; only [0xb000, 0xffff] is free.
    const iovas = new IovaAllocator(0n, 0xffffn, [
      { start: 0n, length: 0xb000n },
      { start: 0x5000n, length: 0x3000n },
    ]);
    const got = [1, 2, 3, 4, 5].map(() => iovas.alloc(PAGE));
    expect(got).toEqual([0xf000n, 0xe000n, 0xd000n, 0xc000n, 0xb000n]);
    expect(errnoOf(() => iovas.alloc(PAGE))).toBe('ENOSPC');
  });

  it('a freed reserved range would be handed out; refusing to free it keeps it reserved', () => {
    const iovas = new IovaAllocator(PAGE, 0x4fffn, [{ start: 0x4000n, length: PAGE }]);
    expect(errnoOf(() => iovas.free(0x4000n, PAGE))).toBe('EINVAL');
    expect(iovas.alloc(PAGE)).toBe(0x3000n);
  });

  it('a reserved range of length 0 reserves nothing and does not split the space', () => {
    const iovas = new IovaAllocator(0x1000n, 0x4fffn, [{ start: 0x3000n, length: 0n }]);
    expect(iovas.alloc(0x3000n, PAGE)).toBe(0x2000n);
  });

  it('reserved ranges given out of order are all honoured', () => {
    const iovas = new IovaAllocator(0n, 0x7fffn, [
      { start: 0x6000n, length: PAGE },
      { start: 0x4000n, length: PAGE },
      { start: 0x2000n, length: PAGE },
    ]);
    const got = [1, 2, 3, 4, 5].map(() => iovas.alloc(PAGE));
    expect(got).toEqual([0x7000n, 0x5000n, 0x3000n, 0x1000n, 0x0n]);
    expect(errnoOf(() => iovas.alloc(PAGE))).toBe('ENOSPC');
  });

  it('the gap above a reserved range that ends on the start of the space begins after it', () => {
    // The reserved range ends at byte 0x1000, the first byte of the space: 0x1000 is not free.
    const iovas = new IovaAllocator(0x1000n, 0x2fffn, [{ start: 0x800n, length: 0x801n }]);
    expect(iovas.alloc(PAGE, PAGE)).toBe(0x2000n);
    expect(errnoOf(() => iovas.alloc(PAGE, PAGE))).toBe('ENOSPC');
  });

  it('a gap smaller than the size at the bottom of the space is not used', () => {
    const iovas = new IovaAllocator(0n, 0x2fffn, [{ start: 0x800n, length: 0x2800n }]);
    expect(errnoOf(() => iovas.alloc(PAGE, PAGE))).toBe('ENOSPC');
    expect(iovas.alloc(0x800n, 1n)).toBe(0n);
  });

  it('a byte-aligned allocation ends right below the allocation above it', () => {
    const iovas = new IovaAllocator(0n, 0x3fffn);
    expect(iovas.alloc(0x1000n, 1n)).toBe(0x3000n);
    expect(iovas.alloc(0x1001n, 1n)).toBe(0x1fffn);
  });

  it('a one-byte gap at the very start of the space is used', () => {
    const iovas = new IovaAllocator(0x1000n, 0x3fffn, [{ start: 0x1001n, length: 0x2fffn }]);
    expect(iovas.alloc(1n, 1n)).toBe(0x1000n);
    expect(errnoOf(() => iovas.alloc(1n, 1n))).toBe('ENOSPC');
  });

  it('ENOSPC says which size did not fit', () => {
    const iovas = new IovaAllocator(0x1000n, 0x1fffn);
    let error: unknown;
    try {
      iovas.alloc(0x2000n);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ENOSPC', context: { size: 0x2000n } });
  });

  it('property: each allocation is the highest free, aligned fit (ENOSPC exactly when none exists)', () => {
    const pages = 64;
    const step = fc.oneof(
      fc.record({ kind: fc.constant('alloc' as const), size: fc.integer({ min: 1, max: 9 }) }),
      fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
    );
    const reserved = fc.array(
      fc.record({ start: fc.integer({ min: 0, max: pages - 1 }), length: fc.integer({ min: 1, max: 16 }) }),
      { maxLength: 4 },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        reserved,
        fc.array(step, { maxLength: 40 }),
        (first, res, steps) => {
          const start = BigInt(first) * PAGE;
          const end = BigInt(pages) * PAGE - 1n;
          const iovas = new IovaAllocator(
            start,
            end,
            res.map((r) => ({ start: BigInt(r.start) * PAGE, length: BigInt(r.length) * PAGE })),
          );
          const busy = new Set<number>(); // pages
          for (const r of res) for (let p = r.start; p < r.start + r.length; p++) busy.add(p);
          // Pages past the end do not exist; reserved ranges may run past it.
          const live: { at: bigint; size: bigint }[] = [];
          for (const s of steps) {
            if (s.kind === 'alloc') {
              const size = BigInt(s.size) * PAGE;
              const align = roundUpPow2(size);
              let expected: bigint | undefined;
              for (let at = ((end - size + 1n) / align) * align; at >= start && at >= 0n; at -= align) {
                const p0 = Number(at / PAGE);
                let free = true;
                for (let p = p0; p < p0 + s.size; p++) if (busy.has(p)) free = false;
                if (free) {
                  expected = at;
                  break;
                }
              }
              if (expected === undefined) {
                expect(errnoOf(() => iovas.alloc(size))).toBe('ENOSPC');
              } else {
                expect(iovas.alloc(size)).toBe(expected);
                live.push({ at: expected, size });
                const p0 = Number(expected / PAGE);
                for (let p = p0; p < p0 + s.size; p++) busy.add(p);
              }
            } else if (live.length > 0) {
              const [r] = live.splice(s.pick % live.length, 1);
              iovas.free(r!.at, r!.size);
              const p0 = Number(r!.at / PAGE);
              for (let p = p0; p < p0 + Number(r!.size / PAGE); p++) busy.delete(p);
            }
          }
        },
      ),
    );
  });
});
