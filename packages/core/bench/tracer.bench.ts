/**
 * What tracing costs when nobody listens (docs/design.md §6: "emission costs nothing measurable"), per
 * 10 000 events. The baseline is the same loop of work with no tracing call at all. A guarded call
 * (`if (tracer.enabled)`) should be within noise of the baseline; the unguarded call shows what building a
 * message and argument object costs even when it is thrown away; the recording case is the price of `--trace`.
 */
import { defineBenchSuite } from '../src/bench/bench-suite.js';
import { Tracer } from '../src/trace/tracer.js';

const ITERATIONS = 10_000;
const silent = new Tracer();
const recording = new Tracer();
recording.startRecording();

/** The work a hot path does per event: a few arithmetic operations on numbers. */
function work(i: number): number {
  return (i * 2654435761) % 4093;
}

export default defineBenchSuite({
  name: 'tracer',
  about: 'The cost of trace calls in a hot loop of 10 000 events, with tracing off and on.',
  groups: [
    {
      name: 'tracer emission, per 10k events',
      baseline: {
        name: 'the work alone',
        fn: () => {
          let sink = 0;
          for (let i = 0; i < ITERATIONS; i++) sink += work(i);
          return sink;
        },
      },
      cases: [
        {
          name: 'guarded trace, no listener',
          target: 0.9,
          fn: () => {
            let sink = 0;
            for (let i = 0; i < ITERATIONS; i++) {
              const pfn = work(i);
              sink += pfn;
              if (silent.enabled)
                silent.trace('hw', 'iommu0', 'walk.step', `walk read ${pfn.toString(16)}`, { pfn });
            }
            return sink;
          },
        },
        {
          name: 'unguarded trace, no listener (payload built, then dropped)',
          fn: () => {
            let sink = 0;
            for (let i = 0; i < ITERATIONS; i++) {
              const pfn = work(i);
              sink += pfn;
              silent.trace('hw', 'iommu0', 'walk.step', `walk read ${pfn.toString(16)}`, { pfn });
            }
            return sink;
          },
        },
        {
          name: 'guarded trace, recording',
          fn: () => {
            let sink = 0;
            for (let i = 0; i < ITERATIONS; i++) {
              const pfn = work(i);
              sink += pfn;
              if (recording.enabled)
                recording.trace('hw', 'iommu0', 'walk.step', `walk read ${pfn.toString(16)}`, { pfn });
            }
            recording.stopRecording();
            recording.startRecording();
            return sink;
          },
        },
      ],
    },
  ],
});
