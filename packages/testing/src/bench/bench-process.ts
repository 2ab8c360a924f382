/**
 * The process `iommukit bench` starts for each suite: `node --conditions=@iommukit/source --import tsx
 * bench-process.ts <suite-file> <root> <options-json>`. It runs the suite alone (no other suite's code
 * warms or pollutes the JIT) and talks to its parent in JSON lines on stdout, each starting with
 * {@link MESSAGE_PREFIX}; anything a suite prints goes to stderr.
 */
import { relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchSuite } from '@iommukit/core';
import { type BenchMessage, MESSAGE_PREFIX } from './messages.js';
import { type RunOptions, runSuite } from './run-suite.js';

const [file, root, optionsJson] = process.argv.slice(2);
const send = (message: BenchMessage) => process.stdout.write(`${MESSAGE_PREFIX}${JSON.stringify(message)}\n`);
// A suite's own console output must not interleave with the messages.
console.log = (...args: unknown[]) => console.error(...args);

try {
  if (!file || !root) throw new Error('usage: bench-process <suite-file> <root> [options-json]');
  const options = JSON.parse(optionsJson ?? '{}') as Omit<RunOptions, 'onProgress'>;
  const module = (await import(pathToFileURL(file).href)) as { default?: BenchSuite };
  const suite = module.default;
  if (!suite?.groups) throw new Error(`${file} has no default export made with defineBenchSuite()`);
  const result = await runSuite(suite, relative(root, file), {
    ...options,
    onProgress: (progress) => send({ kind: 'progress', progress }),
  });
  send({ kind: 'result', result });
} catch (error) {
  send({ kind: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exitCode = 1;
}
