/**
 * The seed of a property test: fixed (so CI is reproducible) unless `IOMMUKIT_FC_SEED` names another to
 * explore. It is printed, so a failure found with a random seed can be replayed.
 */
export function fcSeed(name: string, fixed: number): number {
  const fromEnv = process.env.IOMMUKIT_FC_SEED;
  const seed = fromEnv === undefined || fromEnv === '' ? fixed : Number(fromEnv);
  if (!Number.isSafeInteger(seed)) throw new Error(`IOMMUKIT_FC_SEED=${fromEnv} is not an integer`);
  console.info(`${name}: fast-check seed ${seed} (set IOMMUKIT_FC_SEED to explore others)`);
  return seed;
}
