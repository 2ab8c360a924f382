/**
 * A vitest reporter for mutation runs only (vitest.shared.ts adds it inside Stryker's workers): a test
 * file that fails to load (its import throws) gets one failed test carrying the load error. Stryker's
 * vitest runner (9.6.1; stryker-js issue 6150) scores a mutant by the tests it collected, and such a file
 * collects none, so a mutant that stops a module from loading (a field table emptied, say) was reported
 * as survived although every test importing the module fails.
 */
import type { RunnerTestCase, RunnerTestFile } from 'vitest';
import type { Reporter, Vitest } from 'vitest/node';

/** The name of the failed test a file that did not load gets. */
export const LOAD_FAILURE_TEST = 'the test file loads';

/** Gives each file that failed with no task (it did not load) one failed test with the file's errors. */
export function addLoadFailures(files: readonly RunnerTestFile[]): void {
  for (const file of files) {
    if (file.result?.state !== 'fail' || file.tasks.length > 0) continue;
    // Only Stryker reads this task, after the run: the fields it and vitest's state look at.
    const test = {
      type: 'test',
      id: `${file.id}_load`,
      name: LOAD_FAILURE_TEST,
      fullName: `${file.name} > ${LOAD_FAILURE_TEST}`,
      mode: 'run',
      file,
      suite: file,
      meta: {},
      annotations: [],
      artifacts: [],
      timeout: 0,
      result: { state: 'fail', errors: file.result.errors ?? [] },
    };
    file.tasks.push(test as unknown as RunnerTestCase);
  }
}

export default class LoadFailuresReporter implements Reporter {
  private vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunEnd(): void {
    if (this.vitest) addLoadFailures(this.vitest.state.getFiles());
  }
}
