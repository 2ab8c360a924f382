// Mutation testing of this package: run `npx pnpm@10 mutation vtd` from the repository root (docs/testing.md).
import { mutationConfig } from '../../.ci/stryker-config.mjs';

export default mutationConfig('vtd', { notMutated: ['coverage.ts', 'coverage-bits.ts', 'coverage-doc.ts'] });
