import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, inject, it } from 'vitest';
import { FIXED_FC_SEED, fcSeedFromEnv } from './fc-seed.js';

const packagesDir = join(import.meta.dirname, '..', '..');
const packages = readdirSync(packagesDir).filter((name) => !name.startsWith('.'));
const fastCheckDir = (from: string): string =>
  realpathSync(dirname(createRequire(join(from, 'package.json')).resolve('fast-check/package.json')));

describe('fixed fast-check seed', () => {
  it('every fc.assert of this file runs with the seed of the run', () => {
    expect(inject('fcSeed')).toBe(fcSeedFromEnv(process.env.IOMMUKIT_FC_SEED));
    expect(fc.readConfigureGlobal().seed).toBe(inject('fcSeed'));
  });

  it('is fixed unless IOMMUKIT_FC_SEED names another, as fast-check prints it, or asks for a random one', () => {
    expect(fcSeedFromEnv(undefined)).toBe(FIXED_FC_SEED);
    expect(fcSeedFromEnv('')).toBe(FIXED_FC_SEED);
    expect(fcSeedFromEnv('-1819918769')).toBe(-1819918769);
    expect(fcSeedFromEnv(' 4294967295 ')).toBe(4294967295);
    expect(fcSeedFromEnv('random', () => 0.75)).toBe((0.75 * 2 ** 32) | 0);
    for (const bad of ['seven', '1.5', '4294967296', '-2147483649', '0x'])
      expect(() => fcSeedFromEnv(bad)).toThrow(`IOMMUKIT_FC_SEED=${bad} is not a 32-bit integer or "random"`);
  });

  // The seed is set on the fast-check that packages/core resolves; another copy would keep its own config.
  it('reaches every package: each uses the shared test config and resolves the same fast-check', () => {
    const core = fastCheckDir(join(packagesDir, 'core'));
    for (const name of packages) {
      const dir = join(packagesDir, name);
      expect(readFileSync(join(dir, 'vitest.config.ts'), 'utf8'), name).toContain('sharedTestConfig');
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (manifest.devDependencies?.['fast-check']) expect(fastCheckDir(dir), name).toBe(core);
    }
  });
});
