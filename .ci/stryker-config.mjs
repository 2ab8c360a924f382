// The Stryker configuration of one workspace package (each packages/<name>/stryker.config.mjs calls this).
// Run it through `pnpm mutation` (.ci/mutation.mjs), which starts Stryker from the repository root: the
// sandbox is then a copy of the whole workspace, so a package's vitest.config.ts still finds
// ../core/vitest.shared.ts, and every node_modules folder (the workspace links included) is symlinked.
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

/** Not mutated in any package's src/: tests and index.ts files (re-exports, no logic). Benches are in bench/. */
const NOT_MUTATED = ['**/*.test.ts', '**/index.ts'];

/**
 * Where a run writes its reports: the package's folder, or for a run on some of its files (`pnpm mutation
 * <file…>`) a folder of their own, so that run neither replaces the package's report nor its incremental file.
 * @param {string} name the package folder
 * @param {string[]} files the files of the run, relative to the repository root (none: the whole package)
 */
export function mutationReports(name, files) {
  const dir = `packages/${name}`;
  if (!files.length) return `${dir}/reports/mutation`;
  const slug = files
    .map((file) => file.replace(`${dir}/src/`, '').replaceAll('/', '.').replaceAll(':', '_'))
    .join('+');
  // A folder name has at most 255 bytes: a long selection is named by a hash of its files.
  const hash = () => createHash('sha1').update(slug).digest('hex').slice(0, 10);
  return `${dir}/reports/mutation/${slug.length <= 100 ? slug : `${files.length}-files-${hash()}`}`;
}

/**
 * @param {string} name the package folder (`smmuv3`)
 * @param {{ notMutated?: string[] }} [options] package files to leave out (e.g. generated-doc sources)
 */
export function mutationConfig(name, { notMutated = [] } = {}) {
  const dir = `packages/${name}`;
  // .ci/mutation.mjs names the files of a run on some files (`file:10-20` limits one to lines).
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: read by a script, not by a turbo task
  const files = process.env.IOMMUKIT_MUTATE?.split(',').filter(Boolean) ?? [];
  const reports = mutationReports(name, files);
  const all = [`${dir}/src/**/*.ts`, ...[...NOT_MUTATED, ...notMutated].map((glob) => `!${dir}/src/${glob}`)];
  return {
    testRunner: 'vitest',
    vitest: { configFile: `${dir}/vitest.config.ts`, dir },
    // pnpm keeps the runner out of Stryker's own node_modules, so it is named, not discovered.
    plugins: [
      '@stryker-mutator/vitest-runner',
      fileURLToPath(new URL('./stryker-ignore-messages.mjs', import.meta.url)),
    ],
    // The words of error and trace messages are not scored: rewording one is no modelling bug (see the file).
    ignorers: ['message-literals'],
    mutate: files.length ? files : all,
    // Build output and local reports stay out of the sandbox (docs and examples are read by tests).
    ignorePatterns: ['dist', '.turbo', 'coverage', 'reports', '*.trace.json', 'test-report.json'],
    coverageAnalysis: 'perTest',
    // Re-runs test only the mutants whose code or covering tests changed. The file is a local cache
    // (gitignored): it is rebuilt by one full run, depends on this machine's timings, and would churn.
    incremental: true,
    incrementalFile: `${reports}/incremental.json`,
    reporters: ['clear-text', 'progress', 'html', 'json'],
    htmlReporter: { fileName: `${reports}/index.html` },
    jsonReporter: { fileName: `${reports}/mutation.json` },
    clearTextReporter: {
      allowEmojis: false,
      reportScoreTable: true,
      reportTests: false,
      reportMutants: false,
    },
    thresholds: { high: 85, low: 70, break: null },
    // One test process per core but one, so the machine stays usable (on two cores: one worker).
    concurrency: Math.max(1, availableParallelism() - 1),
    // A loaded machine slows the tests down; a mutant is a timeout only well past the normal run time.
    timeoutMS: 10_000,
    tempDirName: '.stryker-tmp',
  };
}
