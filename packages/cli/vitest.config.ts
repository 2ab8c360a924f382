import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources (the `@iommukit/source` export condition),
// so tests never run against a stale dist/ and need no build first.
export default defineConfig({
  resolve: { conditions: ['@iommukit/source'] },
  ssr: { resolve: { conditions: ['@iommukit/source'] } },
  test: { include: ['src/**/*.test.ts', 'test/**/*.test.ts'] },
});
