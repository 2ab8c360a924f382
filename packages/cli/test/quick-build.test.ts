/**
 * The quick build `pnpm demo` runs on a fresh clone (.ci/transpile.mjs): per-file emit without type
 * checking must produce exactly the JavaScript tsc builds (the test task builds every package first), and
 * report one line per package.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = readdirSync(join(ROOT, 'packages')).sort();
/** Child processes on a loaded two-core machine: room for slowness, the test asserts no timing. */
const SPAWN_TIMEOUT_MS = 60_000;

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.js'))
    .sort();
}

describe('the quick build behind pnpm demo', () => {
  it('is what the demo script builds with', () => {
    const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts;
    expect(scripts.demo).toMatch(/^node \.ci\/transpile\.mjs && node packages\/cli\/dist\/bin\.js demo /);
  });

  it(
    "emits tsc's JavaScript for every package and prints one line per package",
    () => {
      const out = mkdtempSync(join(tmpdir(), 'iommukit-transpile-'));
      const run = spawnSync(process.execPath, [join(ROOT, '.ci/transpile.mjs'), out], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      const lines = run.stdout.trim().split('\n');
      expect(lines).toHaveLength(PACKAGES.length);
      PACKAGES.forEach((name, i) => {
        expect(lines[i]).toMatch(
          new RegExp(`^transpiled @iommukit/${name}: \\d+ files → dist/ \\(\\d+\\.\\d s\\)$`),
        );
        const built = join(ROOT, 'packages', name, 'dist');
        const files = jsFiles(join(out, name));
        expect(files).toEqual(jsFiles(built));
        for (const file of files) {
          const where = relative(ROOT, join(built, file));
          expect(readFileSync(join(out, name, file), 'utf8'), where).toBe(
            readFileSync(join(built, file), 'utf8'),
          );
        }
      });
    },
    SPAWN_TIMEOUT_MS,
  );
});
