/** `iommukit bench`: suites found in the checkout, each run in its own process, reported as tables or JSON. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SuiteResult } from '@iommukit/testing/bench';
import { describe, expect, it } from 'vitest';
import { bytes, ratio, renderSuite, time } from '../src/bench-report.js';
import { selectSuites } from '../src/commands/bench.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..', '..', '..');

async function cli(...argv: string[]) {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), cwd: here });
  return { code, out, err };
}

describe('iommukit bench', () => {
  it('finds every package suite, and filters them by text in their path', () => {
    const all = selectSuites(ROOT, here, []).map((file) => file.slice(ROOT.length + 1));
    expect(all).toEqual([
      'packages/amd-vi/bench/translate.bench.ts',
      'packages/core/bench/tracer.bench.ts',
      'packages/gic-its/bench/msi.bench.ts',
      'packages/pagetables/bench/walk.bench.ts',
      'packages/smmuv3/bench/translate.bench.ts',
      'packages/testing/bench/ioas-map.bench.ts',
      'packages/vtd/bench/translate.bench.ts',
    ]);
    expect(selectSuites(ROOT, here, ['walk', 'smmuv3']).map((f) => f.slice(ROOT.length + 1))).toEqual([
      'packages/pagetables/bench/walk.bench.ts',
      'packages/smmuv3/bench/translate.bench.ts',
    ]);
  });

  it('prints a table with each case beside its baseline', async () => {
    const { code, out } = await cli('bench', '--quick', 'bench-fixtures/tiny.bench.ts');
    expect(code).toBe(EXIT_OK);
    expect(out).toMatch(/^tiny \(packages\/cli\/test\/bench-fixtures\/tiny\.bench\.ts, 1 round\)/);
    const alloc = '(\\d+ B|[\\d.]+ KiB|\\?)';
    expect(out).toMatch(new RegExp(`baseline: Map\\.get +│ +[\\d.]+ [nµm]?s +│ +${alloc} +│ +1× +│`));
    expect(out).toMatch(
      new RegExp(`Array\\.find +│ +[\\d.]+ [nµm]?s +│ +${alloc} +│ +[\\d.]+× +│ +│ ≥ 0\\.010× [✓✗]`),
    );
    expect(out).toContain('· one fact');
  });

  it('reports a suite that throws and exits 1, after running the others; --json gives the results', async () => {
    const { code, out, err } = await cli(
      'bench',
      '--quick',
      '--json',
      'bench-fixtures/throws.bench.ts',
      'bench-fixtures/tiny.bench.ts',
    );
    expect(code).toBe(EXIT_FAILURE);
    expect(err).toMatch(/throws\.bench\.ts: Error: the rig could not be built/);
    expect(err).toContain('packages/cli/test/bench-fixtures/tiny.bench.ts');
    const results = JSON.parse(out) as SuiteResult[];
    expect(results.map((r) => r.suite)).toEqual(['tiny']);
    expect(results[0]).toMatchObject({
      suite: 'tiny',
      file: 'packages/cli/test/bench-fixtures/tiny.bench.ts',
      rounds: 1,
      facts: ['one fact'],
    });
    const group = results[0]!.groups[0]!;
    expect(group.baseline.name).toBe('Map.get');
    expect(group.cases.map((c) => [c.name, c.target])).toEqual([['Array.find', 0.01]]);
    expect(group.cases[0]!.ratio!.median).toBeGreaterThan(0);
    expect(Number.isFinite(group.cases[0]!.ns.median)).toBe(true);
  });

  it('lists the suites when a filter matches none', async () => {
    const { code, err } = await cli('bench', 'nothing-like-this');
    expect(code).toBe(EXIT_USAGE);
    expect(err).toContain('no suite matches "nothing-like-this"; the suites are:');
    expect(err).toContain('packages/smmuv3/bench/translate.bench.ts');
  });

  it('keeps --quick to bench and --trace away from it', async () => {
    expect((await cli('demo', '--quick')).err).toContain('--quick applies to bench');
    expect((await cli('bench', '--trace', 'x.json')).err).toContain(
      '--trace applies to commands that run a system',
    );
  });
});

describe('bench report units', () => {
  it('keeps three significant digits in the largest fitting unit', () => {
    expect([7.349, 1240, 3_500_000, 2.5e9].map(time)).toEqual(['7.35 ns', '1.24 µs', '3.50 ms', '2.50 s']);
  });

  it('shows heap bytes per operation, below one byte as 0, unknown as ?', () => {
    expect([0.4, 48.2, 4608, undefined].map(bytes)).toEqual(['0 B', '48 B', '4.50 KiB', '?']);
  });

  it('shows ratios with two significant digits, or one decimal from 10×', () => {
    expect([0.0059, 0.25, 1, 27.46].map(ratio)).toEqual(['0.0059×', '0.25×', '1.0×', '27.5×']);
  });

  it('colours the suite, group and target only when asked: CI logs and pipes get plain text', () => {
    const spread = (v: number) => ({ median: v, min: v, max: v });
    const result: SuiteResult = {
      suite: 's',
      about: 'a',
      file: 'f.bench.ts',
      rounds: 1,
      facts: [],
      groups: [
        {
          name: 'g',
          baseline: { name: 'b', ns: spread(10) },
          cases: [
            { name: 'met', ns: spread(20), ratio: spread(0.5), target: 0.25, met: true },
            { name: 'missed', ns: spread(100), ratio: spread(0.1), target: 0.25, met: false },
          ],
        },
      ],
    };
    const plain = renderSuite(result);
    expect(plain).not.toContain('\u001b[');
    expect(plain).toMatch(/^s \(f\.bench\.ts, 1 round\)/);
    const coloured = renderSuite(result, true);
    expect(coloured.startsWith('\u001b[1ms\u001b[22m (f.bench.ts')).toBe(true);
    expect(coloured).toContain('\u001b[32m≥ 0.25× ✓\u001b[39m');
    expect(coloured).toContain('\u001b[31m≥ 0.25× ✗\u001b[39m');
  });
});
