import { describe, expect, it } from 'vitest';
import { TableWalkCache } from './table-walk-cache.js';

describe('TableWalkCache', () => {
  it('finds a table for any input in the range its descriptor covers, in its own context only', () => {
    const cache = new TableWalkCache({ sets: 4, ways: 2, policy: 'lru' }, 'w');
    cache.select(0, 0, 1).fill(3, 21, 0x20_1000, 0x5000, 4);
    expect(cache.select(0, 0, 1).find(0x3f_ffff)).toBe(3);
    expect([cache.table, cache.limits]).toEqual([0x5000, 4]);
    expect(cache.select(0, 0, 1).find(0x40_0000)).toBe(-1);
    expect(cache.select(0, 0, 2).find(0x20_1000)).toBe(-1);
    expect(cache.select(0, 1, 1).find(0x20_1000)).toBe(-1);
    expect(cache.select(2, 0, 1).find(0x20_1000)).toBe(-1);
    expect(cache.entries.entries()).toEqual([
      {
        kind: 0,
        domain: 0,
        space: 1,
        inputBase: 0x20_0000,
        pageShift: 21,
        level: 3,
        table: 0x5000,
        limits: 4,
      },
    ]);
  });

  it('a later fill of the same range replaces the table; invalidations reach it through its tags', () => {
    const cache = new TableWalkCache({ sets: 4, ways: 2, policy: 'lru' }, 'w');
    cache.select(1, 3, -1).fill(2, 30, 0x4000_0000, 0x7000, 0);
    cache.select(1, 3, -1).fill(2, 30, 0x4000_1000, 0x8000, 0);
    expect(cache.select(1, 3, -1).find(0x7fff_ffff)).toBe(2);
    expect(cache.table).toBe(0x8000);
    expect(cache.entries.invalidateDomain(1 << 1, 3)).toBe(1);
    expect(cache.select(1, 3, -1).find(0x4000_0000)).toBe(-1);
  });
});
