/** The built binary, as a user runs it (the test task builds the package first). */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
/** Tests that start several processes (or pnpm through npx): room for a loaded machine, no timing asserted. */
const SPAWN_TIMEOUT_MS = 60_000;

describe('dist/bin.js', () => {
  it('runs the demo as JSON and exits 0', () => {
    const out = execFileSync(process.execPath, [BIN, 'demo', '--json'], { encoding: 'utf8' });
    expect(JSON.parse(out)).toMatchObject({ passed: true });
  });

  it(
    'imports no test framework on any command: every plugin and MSI module loads without vitest',
    () => {
      const register = fileURLToPath(new URL('./no-vitest/register.mjs', import.meta.url));
      const config = fileURLToPath(new URL('../../../examples/', import.meta.url));
      const mock = readdirSync(config).find((f) =>
        readFileSync(join(config, f), 'utf8').includes('plugin: mock'),
      );
      expect(mock).toBeDefined();
      for (const argv of [
        ['vendors', '--json'],
        ['demo', '--json'],
        ['run', join(config, mock!), '--json'],
      ]) {
        const run = spawnSync(process.execPath, ['--import', register, BIN, ...argv], { encoding: 'utf8' });
        expect(run.stderr).toBe('');
        expect(run.status).toBe(0);
      }
    },
    SPAWN_TIMEOUT_MS,
  );

  it(
    "the README's invocation prints only the command's output and resolves paths from the caller's directory",
    () => {
      const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
      const documented = /the CLI is `([^`]+) <command>`/.exec(readme)?.[1];
      expect(documented).toMatch(/^npx -y pnpm@10 /);
      const [npx, ...prefix] = documented!.split(' ');
      const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));
      const run = spawnSync(npx!, [...prefix, 'validate', 'mock-faults.yaml', '--json'], {
        cwd: examples,
        encoding: 'utf8',
      });
      expect(JSON.parse(run.stdout)).toMatchObject({ valid: true, config: 'mock-faults.yaml' });
      expect(run.status).toBe(0);
    },
    SPAWN_TIMEOUT_MS,
  );

  it('exits 2 on a usage error and 1 on an invalid config', () => {
    expect(spawnSync(process.execPath, [BIN, 'bogus']).status).toBe(2);
    expect(spawnSync(process.execPath, [BIN, 'validate', 'missing.yaml']).status).toBe(1);
  });
});
