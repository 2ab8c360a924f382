// Mutation testing of this package: run `npx pnpm@10 mutation amd-vi` from the repository root (docs/testing.md).
import { mutationConfig } from '../../.ci/stryker-config.mjs';

export default mutationConfig('amd-vi', {
  notMutated: ['coverage.ts', 'coverage-bits.ts', 'coverage-doc.ts'],
});
