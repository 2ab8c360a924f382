/**
 * The io-pgtable selftest (Linux arm_lpae_run_tests; the map/unmap cases of generic_pt's KUnit tests) on one
 * format: an empty table translates nothing; each page size maps, refuses an overlap with EEXIST without
 * writing, and translates through iova_to_phys and the hardware walker alike; a partial unmap splits a large
 * leaf and the hole maps again; a full unmap gives every table back, and free the root.
 */
import { errnoOf } from '@iommukit/core';
import { expect } from 'vitest';
import type { PageTableFormat } from '../src/format.js';
import { IoPageTable } from '../src/io-page-table.js';
import { walk } from '../src/walk.js';
import { machine } from './fixtures.js';

const GiB = 1n << 30n;
/** Output addresses differ from IOVAs, aligned for every block size. */
const OUT_BASE = 1n << 40n;
const RW = { read: true, write: true } as const;

function sizesOf(bitmap: bigint): bigint[] {
  const sizes: bigint[] = [];
  for (let bit = 0n; bit < 64n; bit++) if ((bitmap >> bit) & 1n) sizes.push(1n << bit);
  return sizes;
}

export function runSelftestMatrix(format: PageTableFormat): void {
  const m = machine();
  const before = m.memory.allocatedFrameCount;
  const table = new IoPageTable(format, m);
  const afterConstruction = m.memory.allocatedFrameCount;
  const walker = m.bus.counter('walker');
  const hw = (iova: bigint) => walk(format, table.rootPa, Number(iova), { bus: m.bus, counter: walker });
  expect(table.tablePages).toBe(format.rootTables);

  // An empty table translates nothing.
  for (const probe of [0n, 42n, GiB, (1n << BigInt(format.ias)) - 1n]) {
    expect(table.iovaToPhys(probe)).toBeUndefined();
    const r = hw(probe);
    expect(r.ok ? 'ok' : r.fault.kind).toBe('translation');
  }

  // Map each page size at 1 GiB strides, where the input range holds it.
  const g = 1n << BigInt(format.granuleShift);
  const mapped: [bigint, bigint, bigint][] = [];
  sizesOf(format.pgsizeBitmap).forEach((size, i) => {
    const iova = BigInt(i) * GiB;
    if (iova + size > 1n << BigInt(format.ias)) return;
    const pa = OUT_BASE + iova;
    table.map(iova, pa, size, { read: true, write: true, exec: true });
    mapped.push([iova, pa, size]);

    // An overlapping map fails with EEXIST and changes nothing.
    const writes = m.counter.writes;
    const pages = table.tablePages;
    expect(errnoOf(() => table.map(iova, pa, size, RW))).toBe('EEXIST');
    expect(errnoOf(() => table.map(iova + size - g, pa, 2n * g, RW))).toBe('EEXIST');
    if (iova >= g) {
      expect(errnoOf(() => table.map(iova - g, pa, 2n * g, RW))).toBe('EEXIST');
      expect(table.iovaToPhys(iova - g)).toBeUndefined();
    }
    expect(m.counter.writes).toBe(writes);
    expect(table.tablePages).toBe(pages);

    // iova_to_phys(iova + 42), and the hardware walk agrees, leaf size included.
    expect(table.iovaToPhys(iova + 42n)).toBe(pa + 42n);
    const r = hw(iova + 42n);
    expect(r.ok && [BigInt(r.pa), 1n << BigInt(r.pageShift)]).toEqual([pa + 42n, size]);
  });
  expect(mapped.length).toBeGreaterThan(0);

  // Partially unmapping a block splits it: the rest still translates; then remap the hole.
  for (const [iova, pa, size] of mapped) {
    if (size === g) continue;
    expect(table.unmap(iova + g, g)).toBe(g);
    expect(table.iovaToPhys(iova + g + 42n)).toBeUndefined();
    expect(hw(iova + g).ok).toBe(false);
    expect(table.iovaToPhys(iova + 42n)).toBe(pa + 42n);
    expect(table.iovaToPhys(iova + 2n * g + 42n)).toBe(pa + 2n * g + 42n);
    expect(table.iovaToPhys(iova + size - g)).toBe(pa + size - g);
    const r = hw(iova + size - 1n);
    expect(r.ok && 1n << BigInt(r.pageShift) < size).toBe(true); // the rest is smaller leaves now
    table.map(iova + g, pa + g, g, RW);
    expect(table.iovaToPhys(iova + g + 42n)).toBe(pa + g + 42n);
  }

  // Full unmap leaves only the root and gives every table back.
  for (const [iova, , size] of mapped) {
    expect(table.unmap(iova, size)).toBe(size);
    expect(table.iovaToPhys(iova + 42n)).toBeUndefined();
  }
  expect(table.tablePages).toBe(format.rootTables);
  expect(m.memory.allocatedFrameCount).toBe(afterConstruction);
  table.free();
  expect(m.memory.allocatedFrameCount).toBe(before);
}
