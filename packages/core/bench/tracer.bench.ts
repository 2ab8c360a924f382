/**
 * What tracing costs when nobody listens (docs/design.md §6: "emission costs nothing measurable"). The
 * baseline is the same loop of work with no tracing call at all; vitest prints each case's ratio to it.
 * A guarded call (`if (tracer.enabled)`) should be within noise of the baseline; the unguarded call shows
 * what building a message and argument object costs even when it is thrown away; the recording case is
 * the price of `--trace`.
 */
import { afterAll, bench, describe } from 'vitest';
import { Tracer } from '../src/trace/tracer.js';

const ITERATIONS = 10_000;
const silent = new Tracer();
const recording = new Tracer();
recording.startRecording();
let sink = 0;

/** The work a hot path does per event: a few arithmetic operations on numbers. */
function work(i: number): number {
  return (i * 2654435761) % 4093;
}

describe('tracer emission, per 10k events', () => {
  bench('baseline: the work alone', () => {
    for (let i = 0; i < ITERATIONS; i++) sink += work(i);
  });

  bench('guarded trace, no listener', () => {
    for (let i = 0; i < ITERATIONS; i++) {
      const pfn = work(i);
      sink += pfn;
      if (silent.enabled) silent.trace('hw', 'iommu0', 'walk.step', `walk read ${pfn.toString(16)}`, { pfn });
    }
  });

  bench('unguarded trace, no listener (payload built, then dropped)', () => {
    for (let i = 0; i < ITERATIONS; i++) {
      const pfn = work(i);
      sink += pfn;
      silent.trace('hw', 'iommu0', 'walk.step', `walk read ${pfn.toString(16)}`, { pfn });
    }
  });

  bench('guarded trace, recording', () => {
    for (let i = 0; i < ITERATIONS; i++) {
      const pfn = work(i);
      sink += pfn;
      if (recording.enabled)
        recording.trace('hw', 'iommu0', 'walk.step', `walk read ${pfn.toString(16)}`, { pfn });
    }
    recording.stopRecording();
    recording.startRecording();
  });
});

// Every case folds its results into `sink`; checking it keeps the work observable to the optimiser.
afterAll(() => {
  if (!Number.isFinite(sink)) throw new Error('a benchmark produced a non-finite checksum');
});
