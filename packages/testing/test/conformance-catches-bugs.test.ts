/**
 * The conformance kit must fail a plugin that gets the semantics wrong, and name what it gets wrong.
 * Each fixture runs the whole kit against a mock with one driver bug, in a nested vitest run.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createVitest } from 'vitest/node';

async function failedCases(fixture: string): Promise<string[]> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const vitest = await createVitest(
    'test',
    {
      root,
      config: false,
      include: [`test/fixtures/${fixture}`],
      // A reporter with no hooks: the nested run prints nothing into this run's output.
      reporters: [{}],
      watch: false,
    },
    { resolve: { conditions: ['@iommukit/source'] }, ssr: { resolve: { conditions: ['@iommukit/source'] } } },
  );
  try {
    await vitest.start();
    return vitest.state
      .getFiles()
      .flatMap((file) => collect(file))
      .sort();
  } finally {
    await vitest.close();
  }
}

interface TaskLike {
  name: string;
  type: string;
  result?: { state?: string };
  tasks?: TaskLike[];
}

function collect(task: TaskLike): string[] {
  if (task.type === 'test') return task.result?.state === 'fail' ? [task.name] : [];
  return (task.tasks ?? []).flatMap(collect);
}

describe('the conformance kit fails broken plugins precisely', () => {
  it('catches a driver that skips the IOTLB flush after unmap', async () => {
    expect(await failedCases('no-iotlb-sync.conformance.ts')).toEqual([
      'IOAS_UNMAP: returns the bytes unmapped, and DMA to them then faults (no stale IOTLB hit)',
    ]);
  }, 60_000);

  it('catches a driver that misreports how many invalidation entries it handled', async () => {
    expect(await failedCases('invalidation-count.conformance.ts')).toEqual([
      'HWPT_INVALIDATE stops at the first bad entry and reports how many took effect',
    ]);
  }, 60_000);

  it('catches a driver that rewrites interrupt remapping entries without flushing the entry cache', async () => {
    expect(await failedCases('no-iec-flush.conformance.ts')).toEqual([
      'invalidate to see a change: a reprogrammed entry delivers its new interrupt once invalidated',
    ]);
  }, 60_000);
});
