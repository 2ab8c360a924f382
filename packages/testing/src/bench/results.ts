/**
 * Benchmark results and how rounds become one figure. Each round measures a group's baseline and then its
 * cases back to back; a case's ratio in a round is the baseline's median time over the case's median time
 * in that round, so a slow phase of the machine moves both. The reported figure is the median over rounds,
 * with the smallest and largest round beside it as the spread.
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

/** Per round, per group: the baseline's time, then each case's, in nanoseconds. */
export type RoundTimes = readonly (readonly number[])[];

export function spreadOf(values: readonly number[]): Spread {
  if (values.length === 0) throw new RangeError('no values to summarise');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** One group's result from its times in every round (`rounds[r][0]` the baseline, then the cases in order). */
export function summariseGroup(group: BenchGroup, rounds: RoundTimes): GroupResult {
  const column = (i: number) => rounds.map((times) => times[i]!);
  const cases = group.cases.map((c, k): CaseResult => {
    const ratio = spreadOf(rounds.map((times) => times[0]! / times[k + 1]!));
    return {
      name: c.name,
      ns: spreadOf(column(k + 1)),
      ratio,
      ...(c.target === undefined ? {} : { target: c.target, met: ratio.median >= c.target }),
    };
  });
  return { name: group.name, baseline: { name: group.baseline.name, ns: spreadOf(column(0)) }, cases };
}

/** Every group's result, from `times[group][round][case]`. */
export function summariseSuite(
  suite: BenchSuite,
  file: string,
  times: readonly RoundTimes[],
  facts: readonly string[],
): SuiteResult {
  return {
    suite: suite.name,
    about: suite.about,
    file,
    rounds: times[0]?.length ?? 0,
    groups: suite.groups.map((group, g) => summariseGroup(group, times[g]!)),
    facts,
  };
}
