import { defineBenchSuite } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { type Sample, spreadOf, summariseGroup, summariseSuite } from './results.js';

/** Samples of one round from times, with `bytes` heap bytes per operation each. */
const row = (times: number[], bytes = 0): Sample[] => times.map((ns) => ({ ns, bytes }));

const op = (name: string, target?: number) => ({
  name,
  fn: () => 0,
  ...(target === undefined ? {} : { target }),
});

describe('spreadOf', () => {
  it('takes the median (the mean of the middle two for an even count) with the extremes', () => {
    expect(spreadOf([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5 });
    expect(spreadOf([4, 1, 2, 10])).toEqual({ median: 3, min: 1, max: 10 });
    expect(spreadOf([7])).toEqual({ median: 7, min: 7, max: 7 });
  });

  it('refuses an empty list', () => {
    expect(() => spreadOf([])).toThrow(RangeError);
  });
});

describe('summariseGroup', () => {
  const group = { name: 'g', baseline: op('bare'), cases: [op('a', 0.5), op('b')] };

  it('takes each round ratio from the same round baseline, then the median over rounds', () => {
    // Round 2 is twice as slow for everything (a busy machine): its ratios are the same as round 1's.
    const result = summariseGroup(group, [row([10, 20, 100]), row([20, 40, 200]), row([10, 40, 100])]);
    expect(result.baseline).toEqual({ name: 'bare', ns: { median: 10, min: 10, max: 20 }, bytes: 0 });
    expect(result.cases[0]).toEqual({
      name: 'a',
      ns: { median: 40, min: 20, max: 40 },
      bytes: 0,
      ratio: { median: 0.5, min: 0.25, max: 0.5 },
      target: 0.5,
      met: true,
    });
    expect(result.cases[1]).toEqual({
      name: 'b',
      ns: { median: 100, min: 100, max: 200 },
      bytes: 0,
      ratio: { median: 0.1, min: 0.1, max: 0.1 },
    });
  });

  it('reports the median heap bytes per operation over the rounds that could tell', () => {
    const rounds = [row([10, 20, 100], 48), row([10, 20, 100], Number.NaN), row([10, 20, 100], 64)];
    const result = summariseGroup(group, rounds);
    expect(result.cases[0]!.bytes).toBe(56);
    const unknown = summariseGroup(group, [row([10, 20, 100], Number.NaN)]);
    expect('bytes' in unknown.cases[0]!).toBe(false);
    expect('bytes' in unknown.baseline).toBe(false);
  });

  it('marks a target missed when the median ratio is below it', () => {
    const result = summariseGroup(group, [row([10, 21, 100])]);
    expect(result.cases[0]).toMatchObject({ target: 0.5, met: false });
  });
});

describe('summariseSuite', () => {
  it('keeps the suite, its file, the round count, every group and the facts', () => {
    const suite = defineBenchSuite({
      name: 's',
      about: 'what',
      groups: [
        { name: 'one', baseline: op('b1'), cases: [op('c1')] },
        { name: 'two', baseline: op('b2'), cases: [op('c2')] },
      ],
    });
    const result = summariseSuite(
      suite,
      'packages/x/bench/s.bench.ts',
      [
        [row([1, 2]), row([1, 4])],
        [row([3, 3]), row([3, 3])],
      ],
      ['a fact'],
    );
    expect(result).toMatchObject({
      suite: 's',
      about: 'what',
      file: 'packages/x/bench/s.bench.ts',
      rounds: 2,
      facts: ['a fact'],
    });
    expect(result.groups.map((g) => [g.name, g.cases[0]!.ratio!.median])).toEqual([
      ['one', 0.375],
      ['two', 1],
    ]);
  });
});
