#!/usr/bin/env node
// `pnpm mutation [package|file…] [--stryker-option=value…]`: mutation testing with Stryker (docs/testing.md).
//   no argument            every package that has a stryker.config.mjs, one after the other
//   smmuv3, @iommukit/core that package's production files
//   path/to/file.ts[:10-20] those files (or lines), each in its package; paths are relative to where you are
// Options starting with `--` go to every Stryker run as they are (`--force` ignores the incremental file,
// `--concurrency=2`). Not part of CI: a package takes minutes to hours.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mutationReports } from './stryker-config.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
// pnpm runs scripts from the workspace root; INIT_CWD is the directory the command was typed in.
// biome-ignore lint/suspicious/noUndeclaredEnvVars: read by a script, not by a turbo task
const here = process.env.INIT_CWD ?? process.cwd();
const packages = readdirSync(join(root, 'packages'))
  .filter((name) => existsSync(join(root, 'packages', name, 'stryker.config.mjs')))
  .sort();
const RANGE = /:\d+(?::\d+)?-\d+(?::\d+)?$/;

function fail(message) {
  console.error(`mutation: ${message}`);
  console.error(`usage: pnpm mutation [${packages.join('|')}|<file.ts>[:<from>-<to>]…] [--stryker-option…]`);
  process.exit(2);
}

/** The package and root-relative path of a production source file named on the command line. */
function sourceFile(argument) {
  const range = argument.match(RANGE)?.[0] ?? '';
  const file = relative(root, resolve(here, argument.slice(0, argument.length - range.length)));
  const [top, name, src] = file.split('/');
  if (!existsSync(join(root, file))) fail(`no package or file "${argument}"`);
  if (top !== 'packages' || src !== 'src' || !packages.includes(name))
    fail(`${file} is not in the src/ of a package with a stryker.config.mjs (${packages.join(', ')})`);
  if (/\.(test|bench)\.ts$/.test(file)) fail(`${file} is a test: name the production file it tests`);
  return { name, file: `${file}${range}` };
}

const options = process.argv.slice(2).filter((a) => a.startsWith('--'));
const targets = process.argv.slice(2).filter((a) => !a.startsWith('--'));
/** Package → the files to mutate in it (empty: all of them). */
const plan = new Map(targets.length ? [] : packages.map((name) => [name, []]));
for (const target of targets) {
  const name = target.replace(/^@iommukit\//, '');
  if (packages.includes(name)) plan.set(name, []);
  else {
    const { name: owner, file } = sourceFile(target);
    if (plan.get(owner)?.length !== 0) plan.set(owner, [...(plan.get(owner) ?? []), file]);
  }
}

const stryker = join(root, 'node_modules', '.bin', 'stryker');
const results = [];
for (const [name, files] of plan) {
  console.log(`\nmutation: ${name}${files.length ? ` (${files.join(', ')})` : ''}`);
  const run = spawnSync(stryker, ['run', `packages/${name}/stryker.config.mjs`, ...options], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, IOMMUKIT_MUTATE: files.join(',') },
  });
  results.push({ name, ok: run.status === 0, reports: join(root, mutationReports(name, files)) });
}

console.log('\nmutation scores (killed + timed out) / (killed + timed out + survived + no coverage):');
for (const { name, ok, reports } of results) {
  const json = join(reports, 'mutation.json');
  const score =
    ok && existsSync(json) ? `${mutationScore(JSON.parse(readFileSync(json, 'utf8')))}%` : 'FAILED';
  console.log(`  ${name}: ${score}  ${join(reports, 'index.html')}`);
}
process.exit(results.every((r) => r.ok) ? 0 : 1);

/** The score of a mutation-testing-report-schema JSON report, over every file in it, to one decimal. */
function mutationScore(report) {
  const count = { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0 };
  for (const file of Object.values(report.files))
    for (const mutant of file.mutants) if (mutant.status in count) count[mutant.status]++;
  const detected = count.Killed + count.Timeout;
  const total = detected + count.Survived + count.NoCoverage;
  return total ? ((1000 * detected) / total / 10).toFixed(1) : '100.0';
}
