/**
 * The driver's GCR3 tables (gcr3-table.ts): the levels Linux's `get_gcr3_levels` gives a PASID count, the
 * entries `update_gcr3` writes at three levels, clearing, and `free_gcr3_table` returning every level.
 */
import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { driverRig } from '../../test/driver-rig.js';
import { Gcr3Table, gcr3Glx } from './gcr3-table.js';
import { probeUnit } from './probe.js';

describe('gcr3Glx', () => {
  it('one level to 512 PASIDs, two to 2^18, three beyond; EINVAL above EFR.GLXSup', () => {
    expect([1, 2, 512, 513, 65_535, 2 ** 18, 2 ** 18 + 1, 2 ** 20].map((n) => gcr3Glx(n, 2))).toEqual([
      0, 0, 0, 1, 1, 1, 2, 2,
    ]);
    expect(errnoOf(() => gcr3Glx(513, 0))).toBe('EINVAL');
    expect(errnoOf(() => gcr3Glx(2 ** 20, 1))).toBe('EINVAL');
  });
});

describe('Gcr3Table', () => {
  it('writes a three-level entry (intermediates linked valid), clears the leaf, and frees every level', () => {
    const r = driverRig();
    const unit = probeUnit(r.context, () => undefined);
    const before = r.memory.allocatedFrameCount;
    const table = new Gcr3Table(unit, 2, 77);
    expect(table).toMatchObject({ glx: 2, domainId: 77 });
    const pasid = (3 << 18) | (4 << 9) | 5;
    table.update(pasid, 0x1_2345_6000);
    const pointer = (at: number) => {
      const [lo, hi] = r.words(at, 2);
      expect(lo! & 0xfff).toBe(1);
      return lo! - 1 + hi! * 2 ** 32;
    };
    const level1 = pointer(table.root + 3 * 8);
    const level0 = pointer(level1 + 4 * 8);
    expect([...r.words(level0 + 5 * 8, 2)]).toEqual([0x2345_6001, 1]);
    expect(r.memory.allocatedFrameCount).toBe(before + 3);
    // Another PASID under the same intermediates allocates nothing more.
    table.update(pasid + 1, 0x7000);
    expect(r.memory.allocatedFrameCount).toBe(before + 3);
    table.update(pasid, undefined);
    expect([...r.words(level0 + 5 * 8, 2)]).toEqual([0, 0]);
    expect([...r.words(level0 + 6 * 8, 2)]).toEqual([0x7001, 0]);
    table.free();
    expect(r.memory.allocatedFrameCount).toBe(before);
  });
});
