/** The mutation-run reporter that turns a test file that failed to load into a failed test. */
import type { RunnerTestFile } from 'vitest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { addLoadFailures, LOAD_FAILURE_TEST } from './load-failures.reporter.js';

const file = (state: 'pass' | 'fail', tasks: unknown[] = []) =>
  ({
    type: 'suite',
    id: 'f1',
    name: 'src/x.test.ts',
    tasks,
    result: { state, errors: state === 'fail' ? [{ message: 'x is not a function' }] : undefined },
  }) as unknown as RunnerTestFile;

describe('load-failures reporter', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('gives a file that failed to load one failed test carrying its error', () => {
    const unloadable = file('fail');
    addLoadFailures([unloadable]);
    expect(unloadable.tasks).toHaveLength(1);
    expect(unloadable.tasks[0]).toMatchObject({
      type: 'test',
      name: LOAD_FAILURE_TEST,
      file: unloadable,
      result: { state: 'fail', errors: [{ message: 'x is not a function' }] },
    });
  });

  it('leaves files that loaded as they are, passed or failed', () => {
    const failedTest = { type: 'test', result: { state: 'fail' } };
    const loadedFailing = file('fail', [failedTest]);
    const passing = file('pass');
    addLoadFailures([loadedFailing, passing]);
    expect(loadedFailing.tasks).toEqual([failedTest]);
    expect(passing.tasks).toEqual([]);
  });

  it('is in the shared test config only inside a Stryker worker', async () => {
    vi.stubEnv('STRYKER_MUTATOR_WORKER', undefined);
    const plain = (await import('../vitest.shared.js')).sharedTestConfig.test?.reporters;
    expect(JSON.stringify(plain)).not.toContain('load-failures.reporter');
    vi.resetModules();
    vi.stubEnv('STRYKER_MUTATOR_WORKER', '1');
    const stryker = (await import('../vitest.shared.js')).sharedTestConfig.test?.reporters;
    expect(JSON.stringify(stryker)).toContain('load-failures.reporter.ts');
  });
});
