import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { LpiAllocator } from './lpi-allocator.js';

// LPI INTIDs start at 8192 (GICv3 §5.1.1); with 14 ID bits there are 8192 of them, 8192..16383.
describe('LpiAllocator', () => {
  it('hands out contiguous ranges first fit from INTID 8192 up to 2^idBits', () => {
    const a = new LpiAllocator(14);
    expect(a.alloc(32)).toBe(8192);
    expect(a.alloc(1)).toBe(8224);
    expect(a.alloc(16383 - 8224)).toBe(8225); // exactly the rest: INTID 16383 is the last
    expect(errnoOf(() => a.alloc(1))).toBe('ENOSPC');
  });

  it('refuses a range larger than what is left, and allocates the whole space in one go', () => {
    const a = new LpiAllocator(14);
    expect(errnoOf(() => a.alloc(8193))).toBe('ENOSPC');
    expect(a.alloc(8192)).toBe(8192);
  });

  it('a released range is reused; neighbours merge so a larger range fits again', () => {
    const a = new LpiAllocator(14);
    const x = a.alloc(4096);
    const y = a.alloc(4096);
    expect([x, y]).toEqual([8192, 12288]);
    a.release(y, 4096);
    a.release(x, 4096);
    expect(a.alloc(8192)).toBe(8192); // only possible if the two ranges merged
  });

  it('merges a range released between two free ones, and keeps a hole apart', () => {
    const a = new LpiAllocator(14);
    const [p, q, r, s] = [a.alloc(2), a.alloc(2), a.alloc(2), a.alloc(8186)];
    expect([p, q, r, s]).toEqual([8192, 8194, 8196, 8198]);
    a.release(p, 2);
    a.release(r, 2);
    expect(errnoOf(() => a.alloc(4))).toBe('ENOSPC'); // two separate holes of 2
    a.release(q, 2);
    expect(a.alloc(6)).toBe(8192);
  });

  it('first fit: a small request takes the lowest hole that holds it', () => {
    const a = new LpiAllocator(14);
    const [p, , r] = [a.alloc(1), a.alloc(1), a.alloc(4), a.alloc(1)];
    a.release(p, 1);
    a.release(r, 4);
    expect(a.alloc(2)).toBe(r); // the 1-LPI hole at 8192 is too small
    expect(a.alloc(1)).toBe(8192);
  });
});
