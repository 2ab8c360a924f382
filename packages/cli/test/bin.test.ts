/** The built binary, as a user runs it (the test task builds the package first). */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

describe('dist/bin.js', () => {
  it('runs the demo as JSON and exits 0', () => {
    const out = execFileSync(process.execPath, [BIN, 'demo', '--json'], { encoding: 'utf8' });
    expect(JSON.parse(out)).toMatchObject({ passed: true });
  });

  it('exits 2 on a usage error and 1 on an invalid config', () => {
    expect(spawnSync(process.execPath, [BIN, 'bogus']).status).toBe(2);
    expect(spawnSync(process.execPath, [BIN, 'validate', 'missing.yaml']).status).toBe(1);
  });
});
