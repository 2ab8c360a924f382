/**
 * The contract of a benchmark suite (the runner is `iommukit bench`, in @iommukit/testing/bench and the
 * CLI). What a suite declares: groups of cases, each group with a bare baseline measured in the same
 * run. A case's figure is a ratio against its group's baseline (baseline time ÷ case time), so results from
 * machines of different speeds, or from one machine under different load, stay comparable.
 *
 * A suite is a module under a package's `bench/` folder whose default export is `defineBenchSuite({…})`;
 * `iommukit bench` (and `pnpm bench`) finds and runs every one, each in a process of its own.
 */
import { IommufdError } from '../errors/iommufd-error.js';

export interface BenchCase {
  readonly name: string;
  /** One operation. Its result is kept alive so the optimiser cannot drop the work. */
  readonly fn: () => unknown;
  /** The ratio to the baseline the project aims for (0.2 = at most 5× the baseline's time); shown, never enforced. */
  readonly target?: number;
}

export interface BenchGroup {
  readonly name: string;
  /** The bare version of the work (a `Map.get`, a loop over a typed array) the cases are compared with. */
  readonly baseline: BenchCase;
  readonly cases: readonly BenchCase[];
}

export interface BenchSuite {
  readonly name: string;
  /** One or two sentences: what the suite measures and against what. */
  readonly about: string;
  readonly groups: readonly BenchGroup[];
  /** Counts measured once (memory reads per translation, table pages per map…), shown under the table. */
  readonly facts?: () => readonly string[];
}

/** Checks a suite's shape where it is declared, so a mistake names the suite instead of failing mid-run. */
export function defineBenchSuite(suite: BenchSuite): BenchSuite {
  const problems: string[] = [];
  if (!suite.name) problems.push('the suite has no name');
  if (suite.groups.length === 0) problems.push('it has no groups');
  for (const group of suite.groups) {
    if (group.cases.length === 0) problems.push(`group "${group.name}" has no cases`);
    const names = [group.baseline, ...group.cases].map((c) => c.name);
    const repeated = names.find((name, i) => names.indexOf(name) !== i);
    if (repeated !== undefined) problems.push(`group "${group.name}" has two cases named "${repeated}"`);
    for (const c of group.cases)
      if (c.target !== undefined && !(c.target > 0 && Number.isFinite(c.target)))
        problems.push(`case "${c.name}" has target ${c.target}; a target is a positive ratio`);
  }
  if (problems.length)
    throw new IommufdError('EINVAL', `bench suite "${suite.name}": ${problems.join('; ')}`, {
      suite: suite.name,
    });
  return suite;
}
