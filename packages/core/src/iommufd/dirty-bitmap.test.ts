/**
 * GET_DIRTY_BITMAP's range arithmetic (dirty-bitmap.ts) on a stand-in paging HWPT: a real IOAS and a
 * domain that reports dirty state per block, as io-pgtable dirty walks do — a dirty 2 MiB block is one
 * record of 2 MiB, whatever part of it was asked for.
 */
import { describe, expect, it } from 'vitest';
import type { Iova } from '../address/address.js';
import { errnoOf } from '../errors/iommufd-error.js';
import { type DirtyBitmap, readDirtyBitmap } from './dirty-bitmap.js';
import type { HwptPagingObject } from './hw-pagetable.js';
import { IoasObject } from './ioas.js';
import { hostMemory } from './user-memory.js';

const PAGE = 0x1000n;
const BLOCK = 0x20_0000n;

/** A HWPT whose IOAS maps `areas` ([IOVA, length]) and whose domain holds the dirty blocks `dirty` ([IOVA, size]). */
function hwptWith(areas: [bigint, bigint][], dirty: [bigint, bigint][]) {
  const ioas = new IoasObject();
  for (const [at, length] of areas)
    ioas.iopt.map(at, hostMemory(0x8000_0000n + at, length), 0n, length, { read: true, write: true });
  const blocks = [...dirty];
  /** The ranges the domain was asked to read. */
  const reads: [bigint, bigint][] = [];
  const domain = {
    readAndClearDirty(at: Iova, size: bigint, record: (iova: bigint, size: bigint) => void, clear: boolean) {
      reads.push([at, size]);
      for (const block of [...blocks]) {
        const [start, length] = block;
        if (start >= at + size || at >= start + length) continue;
        record(start, length);
        if (clear) blocks.splice(blocks.indexOf(block), 1);
      }
    },
  };
  const hwpt = { id: 7, ioas, domain } as unknown as HwptPagingObject;
  const read = (iova: bigint, length: bigint, bitmap: DirtyBitmap, pageSize = PAGE, noClear?: boolean) => {
    readDirtyBitmap(hwpt, { iova, length, pageSize, bitmap, noClear });
    return bitmap;
  };
  return { ioas, hwpt, blocks, reads, read };
}

const bitsOf = (bitmap: DirtyBitmap): number[] => {
  const out: number[] = [];
  const width = bitmap instanceof Uint8Array ? 8 : 64;
  bitmap.forEach((word: number | bigint, i: number) => {
    for (let bit = 0; bit < width; bit++) if ((BigInt(word) >> BigInt(bit)) & 1n) out.push(i * width + bit);
  });
  return out;
};

describe('GET_DIRTY_BITMAP ranges', () => {
  it('a query over part of an area reads only that part: its first and last pages are bits 0 and n − 1, pages outside stay dirty', () => {
    const dirty: [bigint, bigint][] = [0n, 1n, 14n, 15n].map((n) => [0x10_0000n + n * PAGE, PAGE]);
    const t = hwptWith([[0x10_0000n, 16n * PAGE]], dirty);
    expect(bitsOf(t.read(0x10_1000n, 14n * PAGE, new Uint8Array(2)))).toEqual([0, 13]);
    expect(t.reads).toEqual([[0x10_1000n, 14n * PAGE]]);
    expect(bitsOf(t.read(0x10_0000n, 16n * PAGE, new Uint8Array(2)))).toEqual([0, 15]);
  });

  it('a query over several areas and a hole reads each area’s part of it; bits count from the query’s start', () => {
    const t = hwptWith(
      [
        [0x10_0000n, 4n * PAGE],
        [0x20_0000n, 4n * PAGE],
      ],
      [
        [0x10_1000n, PAGE],
        [0x10_3000n, PAGE],
        [0x20_1000n, PAGE],
        [0x20_2000n, PAGE],
      ],
    );
    const words = t.read(0x10_2000n, 0x10_0000n, new BigUint64Array(4));
    expect(bitsOf(words)).toEqual([1, 255]);
    expect(words[3]).toBe(1n << 63n);
    expect(t.reads).toEqual([
      [0x10_2000n, 2n * PAGE],
      [0x20_0000n, 2n * PAGE],
    ]);
    expect(t.blocks).toEqual([
      [0x10_1000n, PAGE],
      [0x20_2000n, PAGE],
    ]);
  });

  it('areas that only touch the query’s ends are not read', () => {
    const t = hwptWith(
      [0n, 1n, 2n].map((n): [bigint, bigint] => [0x10_0000n + n * PAGE, PAGE]),
      [0n, 1n, 2n].map((n): [bigint, bigint] => [0x10_0000n + n * PAGE, PAGE]),
    );
    expect(bitsOf(t.read(0x10_1000n, PAGE, new Uint8Array(1)))).toEqual([0]);
    expect(t.reads).toEqual([[0x10_1000n, PAGE]]);
  });

  it('a dirty block larger than the query sets only the bits of the query’s pages', () => {
    const t = hwptWith([[BLOCK, BLOCK]], [[BLOCK, BLOCK]]);
    expect(bitsOf(t.read(BLOCK + 0x10_0000n, 2n * PAGE, new Uint8Array(2), PAGE, true))).toEqual([0, 1]);
    expect(bitsOf(t.read(BLOCK + 0x10_0000n, 2n * PAGE, new BigUint64Array(1), PAGE, true))).toEqual([0, 1]);
    // 64 KiB bits: the block covers the query's two.
    expect(bitsOf(t.read(BLOCK + 0x1f_0000n, 0x1_0000n, new Uint8Array(1), 0x1_0000n))).toEqual([0]);
  });

  it('a dirty page in a larger bitmap page sets that page’s bit', () => {
    const t = hwptWith([[0x10_0000n, 0x4_0000n]], [[0x12_f000n, PAGE]]);
    expect(bitsOf(t.read(0x10_0000n, 0x4_0000n, new Uint8Array(1), 0x1_0000n))).toEqual([2]);
  });

  it.each([
    ['an IOVA not aligned to the bitmap page', 0x10_0800n, 0x1000n, 0x1000n],
    ['a length not a multiple of the bitmap page', 0x10_0000n, 0x1800n, 0x1000n],
  ])('%s is EINVAL', (_, iova, length, pageSize) => {
    const t = hwptWith([[0x10_0000n, 0x4000n]], []);
    expect(errnoOf(() => t.read(iova, length, new Uint8Array(8), pageSize))).toBe('EINVAL');
  });

  it('the range is aligned to the IOAS’s IOVA alignment when it is larger than the bitmap page (EINVAL)', () => {
    const t = hwptWith([[0x10_0000n, 0x4000n]], [[0x10_1000n, PAGE]]);
    t.ioas.iopt.setHugePages(false); // IOVA alignment: PAGE_SIZE
    expect(errnoOf(() => t.read(0x10_0800n, 0x800n, new Uint8Array(8), 0x800n))).toBe('EINVAL');
    expect(bitsOf(t.read(0x10_1000n, 0x1000n, new Uint8Array(1), 0x800n))).toEqual([0, 1]);
  });

  it('a range ending exactly at 2^64 − 1 is accepted (EOVERFLOW only past it)', () => {
    const t = hwptWith([[0x10_0000n, 0x4000n]], []);
    const last = (1n << 64n) - PAGE;
    expect(bitsOf(t.read(last, PAGE, new Uint8Array(1)))).toEqual([]);
    expect(errnoOf(() => t.read(last, 2n * PAGE, new Uint8Array(1)))).toBe('EOVERFLOW');
  });

  it('a zero-length range is EINVAL, a domain without dirty tracking EOPNOTSUPP', () => {
    const t = hwptWith([[0x10_0000n, 0x4000n]], []);
    expect(errnoOf(() => t.read(0x10_0000n, 0n, new Uint8Array(1)))).toBe('EINVAL');
    const plain = { id: 8, ioas: t.ioas, domain: {} } as unknown as HwptPagingObject;
    expect(
      errnoOf(() =>
        readDirtyBitmap(plain, { iova: 0x10_0000n, length: PAGE, pageSize: PAGE, bitmap: new Uint8Array(1) }),
      ),
    ).toBe('EOPNOTSUPP');
  });
});
