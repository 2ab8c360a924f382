/**
 * `iommukit bench`: runs the benchmark suites of a source checkout (every `packages/<name>/bench/*.bench.ts`,
 * or those whose path or name contains a filter, or suite files given by path), each in a process of its
 * own, with a progress line on stderr and a table per suite (or JSON) on stdout. Speed never changes the
 * exit code: only a suite that fails to load or throws does.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchProgress, parseBenchMessage, type SuiteResult } from '@iommukit/testing/bench';
import { renderSuite } from '../bench-report.js';
import { type CliIo, CommandError, EXIT_FAILURE, EXIT_OK, UsageError } from '../io.js';

export interface BenchOptions {
  readonly json: boolean;
  /** One short round per case: checks that every suite runs, not how fast. */
  readonly quick: boolean;
}

export async function benchCommand(
  io: CliIo,
  args: readonly string[],
  options: BenchOptions,
): Promise<number> {
  const root = checkoutRoot();
  const suites = selectSuites(root, io.cwd, args);
  const runOptions = options.quick ? { rounds: 1, sampleMs: 20 } : { rounds: 3, sampleMs: 300 };
  const results: SuiteResult[] = [];
  let failed = 0;
  for (const [i, file] of suites.entries()) {
    // On a terminal one line is redrawn after each measurement; in a log, one line per suite.
    const live = process.stderr.isTTY === true;
    if (!live) io.err(`[${i + 1}/${suites.length}] ${file.slice(root.length + 1)}\n`);
    const outcome = await runSuiteProcess(root, file, runOptions, (p) => {
      if (live) io.err(progressLine(i + 1, suites.length, p));
    });
    if (live) io.err('\n');
    if ('error' in outcome) {
      failed++;
      io.err(`iommukit bench: ${file}: ${outcome.error}\n`);
      continue;
    }
    results.push(outcome.result);
    if (!options.json) io.out(renderSuite(outcome.result, io.color));
  }
  if (options.json) io.out(`${JSON.stringify(results, null, 2)}\n`);
  return failed ? EXIT_FAILURE : EXIT_OK;
}

/** The repository the CLI runs from: suites are sources, so `bench` needs the checkout, not a package install. */
function checkoutRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const up = dirname(dir);
    if (up === dir)
      throw new CommandError(
        'benchmarks run from a source checkout of iommukit (the suites are packages/<name>/bench/*.bench.ts)',
      );
    dir = up;
  }
  return dir;
}

/** Every suite, or those matching the arguments: a path to a suite file, or text in a suite's path. */
export function selectSuites(root: string, cwd: string, args: readonly string[]): string[] {
  const packages = join(root, 'packages');
  const all = readdirSync(packages)
    .flatMap((name) => {
      const dir = join(packages, name, 'bench');
      return existsSync(dir)
        ? readdirSync(dir)
            .filter((f) => f.endsWith('.bench.ts'))
            .map((f) => join(dir, f))
        : [];
    })
    .sort();
  if (args.length === 0) return all;
  return args.flatMap((arg) => {
    const path = resolve(cwd, arg);
    if (arg.endsWith('.ts') && existsSync(path)) return [path];
    const matches = all.filter((file) => file.slice(root.length + 1).includes(arg));
    if (matches.length === 0)
      throw new UsageError(
        `no suite matches "${arg}"; the suites are:\n${all.map((f) => `  ${f.slice(root.length + 1)}`).join('\n')}`,
      );
    return matches;
  });
}

function progressLine(index: number, count: number, p: BenchProgress): string {
  const percent = Math.round((100 * p.done) / p.total);
  const line = `[${index}/${count}] ${p.suite} ${percent}% · round ${p.round}/${p.rounds} · ${p.group}: ${p.case}`;
  return `\r\x1b[2K${line.length > 110 ? `${line.slice(0, 109)}…` : line}`;
}

type Outcome = { readonly result: SuiteResult } | { readonly error: string };

/** Runs one suite in a fresh Node process that loads the TypeScript sources through tsx. */
function runSuiteProcess(
  root: string,
  file: string,
  runOptions: object,
  onProgress: (progress: BenchProgress) => void,
): Promise<Outcome> {
  const tsx = createRequire(import.meta.url).resolve('tsx');
  const child = join(root, 'packages', 'testing', 'src', 'bench', 'bench-process.ts');
  const argv = [
    '--conditions=@iommukit/source',
    '--import',
    tsx,
    child,
    file,
    root,
    JSON.stringify(runOptions),
  ];
  return new Promise((done) => {
    const proc = spawn(process.execPath, argv, {
      cwd: root,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(root, 'tsconfig.base.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let outcome: Outcome | undefined;
    let pending = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const message = parseBenchMessage(line);
        if (message?.kind === 'progress') onProgress(message.progress);
        else if (message?.kind === 'result') outcome = { result: message.result };
        else if (message?.kind === 'error') outcome = { error: message.message };
      }
    });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    proc.on('close', (code) =>
      done(
        outcome ?? { error: `the suite's process exited with code ${code}${stderr ? `:\n${stderr}` : ''}` },
      ),
    );
  });
}
