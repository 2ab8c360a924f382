import { FrameAllocator, MemoryBus } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { amdV1Format } from './amd/v1-format.js';
import { IoPageTable } from './io-page-table.js';
import { forEachLeaf } from './leaf-scan.js';
import { vtdSsFormat } from './vtd/ss-format.js';
import { x86Format } from './x86/x86-format.js';

const RW = { read: true, write: true };

function tables(format: ConstructorParameters<typeof IoPageTable>[0]) {
  const bus = new MemoryBus();
  bus.addRam('r', 0x1000_0000, 16 * 2 ** 20);
  const memory = new FrameAllocator([{ base: 0x1000_0000, size: 16 * 2 ** 20 }], (a, b) =>
    bus.discardRam(a, b),
  );
  const counter = bus.counter('scan');
  const table = new IoPageTable(format, { bus, memory, counter: bus.counter('t') });
  const read = (address: number, out: Uint32Array) => bus.readWords(address, out, 2, counter);
  const scan = (start: number, end: number) => {
    const found: [number, number, number][] = [];
    forEachLeaf(format, table.rootPa, start, end, read, (iova, shift, lo, hi, level) =>
      found.push([iova, shift, format.outputAddress(lo, hi, level)]),
    );
    return found;
  };
  return { table, scan, counter };
}

describe('forEachLeaf', () => {
  it('reports each leaf overlapping the range once, large leaves whole, and nothing else', () => {
    const { table, scan } = tables(vtdSsFormat({ levels: 4, oas: 48, sllps: 1 }));
    table.map(0x20_0000n, 0x4000_0000n, 0x20_0000n, RW); // a 2 MiB leaf
    table.map(0x40_1000n, 0x5000_0000n, 0x2000n, RW);
    table.map(0x80_0000_0000n, 0x6000_0000n, 0x1000n, RW);
    expect(scan(0, 2 ** 48)).toEqual([
      [0x20_0000, 21, 0x4000_0000],
      [0x40_1000, 12, 0x5000_0000],
      [0x40_2000, 12, 0x5000_1000],
      [0x80_0000_0000, 12, 0x6000_0000],
    ]);
    // A range inside the large leaf reports it; a range between leaves reports nothing.
    expect(scan(0x21_0000, 0x21_1000)).toEqual([[0x20_0000, 21, 0x4000_0000]]);
    expect(scan(0x40_2000, 0x40_3000)).toEqual([[0x40_2000, 12, 0x5000_1000]]);
    expect(scan(0x50_0000, 0x60_0000)).toEqual([]);
    expect(scan(0x1000, 0x1000)).toEqual([]);
  });

  it('reaches the top of a 5-level space (above 2^53) and reads only the tables present', () => {
    const { table, scan, counter } = tables(x86Format({ levels: 5, oas: 52 }));
    const top = 2n ** 56n - 0x1000n;
    table.map(top, 0x4000_6000n, 0x1000n, RW);
    const before = counter.reads;
    expect(scan(0, 2 ** 56)).toEqual([[Number(top), 12, 0x4000_6000]]);
    // The root's 256 entries of the lower canonical half, then the 512 of each table on the one path: the
    // absent subtrees cost one read each.
    expect(counter.reads - before).toBe(256 + 4 * 512);
  });

  it('a table that skips levels (AMD v1 NextLevel) reaches only inputs whose skipped index bits are 0', () => {
    const format = amdV1Format({ levels: 3, oas: 48 });
    // Root (level 3) entry 0 → a level-1 table (level 2 skipped), whose entry 1 is a 4 KiB leaf.
    const memory = new Map<number, [number, number]>([
      [0x1000, [0x2000 | (1 << 9) | 1, 0]],
      [0x2008, [0x7000_0000 | 1, 0]],
    ]);
    const scan = (start: number, end: number) => {
      const found: number[] = [];
      forEachLeaf(
        format,
        0x1000,
        start,
        end,
        (address, out) => {
          const [lo, hi] = memory.get(address) ?? [0, 0];
          out[0] = lo;
          out[1] = hi;
          return true;
        },
        (iova) => found.push(iova),
      );
      return found;
    };
    // Only the first 2 MiB (level-2 index 0) goes through the skipping entry: the leaf at 0x1000, once.
    expect(scan(0, 2 ** 39)).toEqual([0x1000]);
    expect(scan(0x20_0000, 0x40_0000)).toEqual([]);
    expect(scan(0x1000, 0x1000)).toEqual([]);
  });
});
