/**
 * `pnpm mutation` (.ci/mutation.mjs) and the per-package Stryker configurations: checked without starting
 * Stryker, which takes minutes (docs/testing.md).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const script = join(root, '.ci', 'mutation.mjs');
const MODEL_PACKAGES = ['amd-vi', 'core', 'gic-its', 'pagetables', 'smmuv3', 'vmm', 'vtd', 'x86-apic'];

function mutation(args: string[], cwd = root) {
  return spawnSync(process.execPath, [script, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, INIT_CWD: cwd },
  });
}

describe('pnpm mutation', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('has a Stryker configuration for every model package, mutating only its production sources', async () => {
    const configured = readdirSync(join(root, 'packages')).filter((name) =>
      existsSync(join(root, 'packages', name, 'stryker.config.mjs')),
    );
    expect(configured.sort()).toEqual(MODEL_PACKAGES);
    vi.stubEnv('IOMMUKIT_MUTATE', ''); // set only by .ci/mutation.mjs for a run on some files
    for (const name of configured) {
      const { default: config } = await import(join(root, 'packages', name, 'stryker.config.mjs'));
      expect(config.mutate[0]).toBe(`packages/${name}/src/**/*.ts`);
      expect(config.mutate).toContain(`!packages/${name}/src/**/*.test.ts`);
      expect(existsSync(join(root, config.vitest.configFile))).toBe(true);
      expect(config).toMatchObject({ testRunner: 'vitest', coverageAnalysis: 'perTest', incremental: true });
      expect(config.incrementalFile).toBe(`packages/${name}/reports/mutation/incremental.json`);
    }
  });

  it('refuses a target that is neither a package nor a production source file, with a usage line', () => {
    for (const [target, why] of [
      ['nope', 'no package or file "nope"'],
      ['packages/core/src/iommu/pasid-allocator.test.ts', 'is a test'],
      ['packages/core/test/fc-seed.ts', 'is not in the src/ of a package with a stryker.config.mjs'],
      ['packages/cli/src/main.ts', 'is not in the src/ of a package with a stryker.config.mjs'],
    ] as const) {
      const run = mutation([target]);
      expect(run.status).toBe(2);
      expect(run.stderr).toContain(why);
      expect(run.stderr).toContain('usage: pnpm mutation');
    }
  });

  it('resolves file paths from the directory the command was typed in', () => {
    const run = mutation(['src/no-such-file.ts'], join(root, 'packages', 'core'));
    expect(run.stderr).toContain('no package or file "src/no-such-file.ts"');
    const test = mutation(['src/iommu/pasid-allocator.test.ts'], join(root, 'packages', 'core'));
    expect(test.stderr).toContain('packages/core/src/iommu/pasid-allocator.test.ts is a test');
  });
});
