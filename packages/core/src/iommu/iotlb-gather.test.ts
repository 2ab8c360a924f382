import { describe, expect, it } from 'vitest';
import { IotlbGather, mergeRanges } from './iotlb-gather.js';

describe('IotlbGather', () => {
  it('is empty until a leaf or a walk range is gathered', () => {
    const leaves = new IotlbGather();
    expect(leaves.empty).toBe(true);
    leaves.leaves.push([0x1000, 0x2000]);
    expect(leaves.empty).toBe(false);
    const walks = new IotlbGather();
    walks.walks.push([0, 0x20_0000]);
    expect(walks.empty).toBe(false);
  });

  it('spans everything gathered, leaves and walks', () => {
    const g = new IotlbGather();
    g.leaves.push([0x5000, 0x6000], [0x3000, 0x4000]);
    g.walks.push([0x8000, 0x9000]);
    expect(g.span()).toEqual([0x3000, 0x9000]);
  });
});

describe('mergeRanges', () => {
  it('sorts, joins overlapping and adjacent ranges, keeps gaps', () => {
    expect(
      mergeRanges([
        [0x4000, 0x5000],
        [0x1000, 0x2000],
        [0x2000, 0x3000],
        [0x1800, 0x1c00],
        [0x7000, 0x8000],
      ]),
    ).toEqual([
      [0x1000, 0x3000],
      [0x4000, 0x5000],
      [0x7000, 0x8000],
    ]);
    expect(mergeRanges([])).toEqual([]);
  });
});
