/**
 * Benchmark results and how rounds become one figure. Each round measures a group's baseline and then its
 * cases back to back; a case's ratio in a round is the baseline's median time over the case's median time
 * in that round, so a slow phase of the machine moves both. The reported figure is the median over rounds,
 * with the smallest and largest round beside it as the spread. Heap bytes allocated per operation are
 * reported beside the time (the median over rounds), so an allocation-free path shows 0 B.
 */
import type { BenchGroup, BenchSuite } from '@iommukit/core';

/** A median with the smallest and largest value it was taken from. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export interface CaseResult {
  readonly name: string;
  /** Nanoseconds per operation (each round's median sample). */
  readonly ns: Spread;
  /**
   * Heap bytes allocated per operation (median over rounds); absent when no sample could tell, because a
   * garbage collection ran during every one of them.
   */
  readonly bytes?: number;
  /** Baseline time ÷ this case's time; absent for the baseline itself. */
  readonly ratio?: Spread;
  readonly target?: number;
  /** Whether the median ratio reaches the target (absent without a target). */
  readonly met?: boolean;
}

export interface GroupResult {
  readonly name: string;
  readonly baseline: CaseResult;
  readonly cases: readonly CaseResult[];
}

export interface SuiteResult {
  readonly suite: string;
  readonly about: string;
  /** The suite's module, relative to the repository root. */
  readonly file: string;
  readonly rounds: number;
  readonly groups: readonly GroupResult[];
  readonly facts: readonly string[];
}

/** One measurement of one case: nanoseconds per operation and heap bytes per operation (NaN: unknown). */
export interface Sample {
  readonly ns: number;
  readonly bytes: number;
}

/** One group's samples, per round: the baseline's, then each case's. */
export type RoundSamples = readonly (readonly Sample[])[];

export function spreadOf(values: readonly number[]): Spread {
  if (values.length === 0) throw new RangeError('no values to summarise');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** One group's result from its samples in every round (`rounds[r][0]` the baseline, then the cases in order). */
export function summariseGroup(group: BenchGroup, rounds: RoundSamples): GroupResult {
  const measured = (name: string, i: number) => {
    const known = rounds.map((row) => row[i]!.bytes).filter((b) => !Number.isNaN(b));
    return {
      name,
      ns: spreadOf(rounds.map((row) => row[i]!.ns)),
      ...(known.length ? { bytes: spreadOf(known).median } : {}),
    };
  };
  const cases = group.cases.map((c, k): CaseResult => {
    const ratio = spreadOf(rounds.map((row) => row[0]!.ns / row[k + 1]!.ns));
    return {
      ...measured(c.name, k + 1),
      ratio,
      ...(c.target === undefined ? {} : { target: c.target, met: ratio.median >= c.target }),
    };
  });
  return { name: group.name, baseline: measured(group.baseline.name, 0), cases };
}

/** Every group's result, from `samples[group][round][case]`. */
export function summariseSuite(
  suite: BenchSuite,
  file: string,
  samples: readonly RoundSamples[],
  facts: readonly string[],
): SuiteResult {
  return {
    suite: suite.name,
    about: suite.about,
    file,
    rounds: samples[0]?.length ?? 0,
    groups: suite.groups.map((group, g) => summariseGroup(group, samples[g]!)),
    facts,
  };
}
