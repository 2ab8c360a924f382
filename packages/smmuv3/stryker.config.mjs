// Mutation testing of this package: run `npx pnpm@10 mutation smmuv3` from the repository root (docs/testing.md).
import { mutationConfig } from '../../.ci/stryker-config.mjs';

export default mutationConfig('smmuv3', { notMutated: ['coverage.ts', 'coverage-doc.ts'] });
