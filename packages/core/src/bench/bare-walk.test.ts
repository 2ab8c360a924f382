import { describe, expect, it } from 'vitest';
import { bareFourLevelWalks } from './bare-walk.js';

describe('bareFourLevelWalks', () => {
  it('walks the next page each call, wrapping after `pages`, ending at the last level’s index', () => {
    const walk = bareFourLevelWalks(3, 0x4000_0000);
    // Page 1, 2, then 0 again: the last level's entry is its index << 12.
    expect([walk(), walk(), walk(), walk()]).toEqual([0x1000, 0x2000, 0, 0x1000]);
  });
});
