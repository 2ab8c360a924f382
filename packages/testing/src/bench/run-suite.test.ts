import { defineBenchSuite, isIommufdError } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import type { BenchProgress } from './run-suite.js';
import { runSuite } from './run-suite.js';

describe('runSuite', () => {
  const calls = { base: 0, a: 0, b: 0 };
  const suite = defineBenchSuite({
    name: 'tiny',
    about: 'counts calls',
    facts: () => ['fact one'],
    groups: [
      {
        name: 'g',
        baseline: { name: 'base', fn: () => calls.base++ },
        cases: [
          { name: 'a', fn: () => calls.a++, target: 0.1 },
          { name: 'b', fn: () => calls.b++ },
        ],
      },
    ],
  });

  it('measures the baseline and every case in each round, reporting progress after each', async () => {
    const progress: BenchProgress[] = [];
    const result = await runSuite(suite, 'tiny.bench.ts', {
      rounds: 2,
      sampleMs: 1,
      onProgress: (p) => progress.push(p),
    });
    expect(progress.map((p) => `${p.round}:${p.case}:${p.done}/${p.total}`)).toEqual([
      '1:base:1/6',
      '1:a:2/6',
      '1:b:3/6',
      '2:base:4/6',
      '2:a:5/6',
      '2:b:6/6',
    ]);
    expect(calls.base > 0 && calls.a > 0 && calls.b > 0).toBe(true);
    expect(result).toMatchObject({ suite: 'tiny', file: 'tiny.bench.ts', rounds: 2, facts: ['fact one'] });
    const [a, b] = result.groups[0]!.cases;
    for (const c of [a!, b!]) {
      expect(c.ns.median).toBeGreaterThan(0);
      // The cases allocate nothing per call (a counter increment).
      if (c.bytes !== undefined) expect(c.bytes).toBeLessThan(8);
      expect(Number.isFinite(c.ratio!.median)).toBe(true);
      expect(c.ratio!.min).toBeLessThanOrEqual(c.ratio!.max);
    }
    expect(a!.target).toBe(0.1);
    expect(b!.target).toBeUndefined();
  });

  it.each([
    [{ rounds: 0 }, 'rounds must be a positive integer (got 0)'],
    [{ sampleMs: 0 }, 'sampleMs must be positive (got 0)'],
  ])('refuses %o with EINVAL', async (options, message) => {
    const error = await runSuite(suite, 'x', options).catch((e: unknown) => e);
    expect(isIommufdError(error, 'EINVAL')).toBe(true);
    expect((error as Error).message).toBe(`EINVAL: ${message}`);
  });
});
