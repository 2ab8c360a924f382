/**
 * The one fast-check seed of a test run. Property tests must not drift between runs (a mutant killed by one
 * run and missed by the next makes mutation scores meaningless), so every `fc.assert` uses this seed unless
 * `IOMMUKIT_FC_SEED` names another to explore: an integer (as fast-check prints it in a failure) or `random`.
 */
export const FIXED_FC_SEED = 0x10f4_d00d;

/** The seed `IOMMUKIT_FC_SEED` asks for (unset or empty: the fixed one); `random` draws a new one. */
export function fcSeedFromEnv(value: string | undefined, draw: () => number = Math.random): number {
  if (value === undefined || value.trim() === '') return FIXED_FC_SEED;
  // fast-check reduces a seed to 32 bits and prints it signed; accept that and the unsigned form.
  if (value.trim() === 'random') return (draw() * 2 ** 32) | 0;
  const seed = Number(value);
  if (!Number.isInteger(seed) || seed < -(2 ** 31) || seed >= 2 ** 32)
    throw new Error(`IOMMUKIT_FC_SEED=${value} is not a 32-bit integer or "random"`);
  return seed;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's seed, chosen once by fc-seed.global-setup.ts and applied per file by fc-seed.setup.ts. */
    fcSeed: number;
  }
}
