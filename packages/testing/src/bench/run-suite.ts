/**
 * Runs a suite with mitata's sampler (which batches sub-microsecond operations and reports per-operation
 * nanoseconds), round after round, and reports progress after every measurement.
 */
import { type BenchCase, type BenchSuite, IommufdError } from '@iommukit/core';
import { do_not_optimize, measure } from 'mitata';
import { type RoundTimes, type SuiteResult, summariseSuite } from './results.js';

export interface RunOptions {
  /** Measurements of each case (default 3). */
  readonly rounds?: number;
  /** CPU time spent sampling one case in one round, in milliseconds (default 300). */
  readonly sampleMs?: number;
  readonly onProgress?: (progress: BenchProgress) => void;
}

export interface BenchProgress {
  readonly suite: string;
  readonly group: string;
  readonly case: string;
  readonly round: number;
  readonly rounds: number;
  /** Measurements finished in this suite, and how many it takes. */
  readonly done: number;
  readonly total: number;
}

export async function runSuite(
  suite: BenchSuite,
  file: string,
  options: RunOptions = {},
): Promise<SuiteResult> {
  const rounds = options.rounds ?? 3;
  const sampleNs = (options.sampleMs ?? 300) * 1e6;
  if (!Number.isSafeInteger(rounds) || rounds < 1)
    throw new IommufdError('EINVAL', `rounds must be a positive integer (got ${rounds})`);
  if (!(sampleNs > 0))
    throw new IommufdError('EINVAL', `sampleMs must be positive (got ${options.sampleMs})`);
  const facts = suite.facts?.() ?? [];
  const total = rounds * suite.groups.reduce((n, g) => n + 1 + g.cases.length, 0);
  let done = 0;
  const times: RoundTimes[] = [];
  for (const group of suite.groups) {
    const perRound: number[][] = [];
    for (let round = 1; round <= rounds; round++) {
      const row: number[] = [];
      for (const c of [group.baseline, ...group.cases]) {
        row.push(await timeOf(c, sampleNs));
        done++;
        options.onProgress?.({
          suite: suite.name,
          group: group.name,
          case: c.name,
          round,
          rounds,
          done,
          total,
        });
      }
      perRound.push(row);
    }
    times.push(perRound);
  }
  return summariseSuite(suite, file, times, facts);
}

/** Median nanoseconds per call of one case. */
async function timeOf(c: BenchCase, sampleNs: number): Promise<number> {
  const fn = c.fn;
  const stats = await measure(() => do_not_optimize(fn()), { min_cpu_time: sampleNs });
  return stats.p50;
}
