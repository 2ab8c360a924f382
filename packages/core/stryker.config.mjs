// Mutation testing of this package: run `npx pnpm@10 mutation core` from the repository root (docs/testing.md).
import { mutationConfig } from '../../.ci/stryker-config.mjs';

export default mutationConfig('core', { notMutated: ['config/config-reference.ts'] });
