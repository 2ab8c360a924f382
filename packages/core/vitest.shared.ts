import type { ViteUserConfig } from 'vitest/config';

/**
 * Test settings every workspace package uses (each package's vitest.config.ts imports this file).
 * Workspace packages resolve to their TypeScript sources through the `@iommukit/source` export condition,
 * so tests never run against a stale dist/ and need no build first. Each run writes test-report.json,
 * which .ci/test-summary.mjs totals into the closing "N passed, N failed" line.
 */
export const sharedTestConfig: ViteUserConfig = {
  resolve: { conditions: ['@iommukit/source'] },
  ssr: { resolve: { conditions: ['@iommukit/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    reporters: ['default', 'json'],
    outputFile: { json: 'test-report.json' },
    benchmark: { include: ['bench/**/*.bench.ts'] },
  },
};
