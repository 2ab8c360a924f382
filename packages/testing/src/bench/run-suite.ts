/**
 * Runs a suite with mitata's sampler (which batches sub-microsecond operations and reports per-operation
 * nanoseconds), round after round, and reports progress after every measurement.
 */
import { type BenchCase, type BenchSuite, IommufdError } from '@iommukit/core';
import { do_not_optimize, measure } from 'mitata';
import { type RoundSamples, type Sample, type SuiteResult, summariseSuite } from './results.js';

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
  const samples: RoundSamples[] = [];
  for (const group of suite.groups) {
    const perRound: Sample[][] = [];
    for (let round = 1; round <= rounds; round++) {
      const row: Sample[] = [];
      for (const c of [group.baseline, ...group.cases]) {
        row.push(await sampleOf(c, sampleNs));
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
    samples.push(perRound);
  }
  return summariseSuite(suite, file, samples, facts);
}

/** The heap in use, read before and after each batch of calls (outside the timed part). */
const heapUsed = () => process.memoryUsage().heapUsed;

/** The median nanoseconds per call of one case, and its mean heap bytes per call. */
async function sampleOf(c: BenchCase, sampleNs: number): Promise<Sample> {
  const fn = c.fn;
  const stats = await measure(() => do_not_optimize(fn()), { min_cpu_time: sampleNs, heap: heapUsed });
  return { ns: stats.p50, bytes: stats.heap?.avg ?? Number.NaN };
}
