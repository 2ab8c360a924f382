import { fileURLToPath } from 'node:url';
import type { ViteUserConfig } from 'vitest/config';

/** A file of packages/core/test by absolute path: every package's run (and Stryker's sandbox) finds it. */
const coreTestFile = (name: string): string => fileURLToPath(new URL(`./test/${name}`, import.meta.url));

/**
 * Test settings every workspace package uses (each package's vitest.config.ts imports this file).
 * Workspace packages resolve to their TypeScript sources through the `@iommukit/source` export condition,
 * so tests never run against a stale dist/ and need no build first. Each run writes test-report.json,
 * which .ci/test-summary.mjs totals into the closing "N passed, N failed" line. Property tests share one
 * fast-check seed, printed once per run (test/fc-seed.ts; docs/testing.md).
 */
export const sharedTestConfig: ViteUserConfig = {
  resolve: { conditions: ['@iommukit/source'] },
  ssr: { resolve: { conditions: ['@iommukit/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: [coreTestFile('fc-seed.global-setup.ts')],
    setupFiles: [coreTestFile('fc-seed.setup.ts')],
    // CI runs every package's suite at once on two cores: a property test that takes 0.3 s alone can take
    // several seconds there. The bound only stops a hung test; no test asserts on time.
    testTimeout: 30_000,
    // Inside Stryker's workers every test file of a run shares one module graph: importing the workspace
    // once per file is most of a run's time (smmuv3: 59 s isolated, 10 s shared), and a mutation run
    // repeats the run per mutant. The suites pass both ways; `pnpm test` keeps each file isolated.
    // IOMMUKIT_MUTATION_ISOLATE=1 isolates the workers' files too.
    isolate:
      process.env.STRYKER_MUTATOR_WORKER === undefined || process.env.IOMMUKIT_MUTATION_ISOLATE === '1',
    // Inside Stryker's workers, a test file that fails to load counts as a failed test (the reporter's file).
    reporters: [
      'default',
      'json',
      ...(process.env.STRYKER_MUTATOR_WORKER === undefined
        ? []
        : [coreTestFile('load-failures.reporter.ts')]),
    ],
    outputFile: { json: 'test-report.json' },
  },
};
