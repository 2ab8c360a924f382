import type { TestProject } from 'vitest/node';
import { fcSeedFromEnv } from './fc-seed.js';

/** Runs once per test run: picks the seed, prints it once, and hands it to every test file's setup. */
export default function setup(project: TestProject): void {
  const seed = fcSeedFromEnv(process.env.IOMMUKIT_FC_SEED);
  console.info(`fast-check seed ${seed} (IOMMUKIT_FC_SEED=<n> or =random explores others)`);
  project.provide('fcSeed', seed);
}
