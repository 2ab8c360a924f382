/** What a suite's process tells `iommukit bench`: progress after each measurement, then a result or an error. */
import type { SuiteResult } from './results.js';
import type { BenchProgress } from './run-suite.js';

export type BenchMessage =
  | { readonly kind: 'progress'; readonly progress: BenchProgress }
  | { readonly kind: 'result'; readonly result: SuiteResult }
  | { readonly kind: 'error'; readonly message: string };

/** Starts every message line, so stray output on stdout is never mistaken for one. */
export const MESSAGE_PREFIX = '@@iommukit-bench ';

/** The message on one line of a suite process's stdout, if it carries one. */
export function parseBenchMessage(line: string): BenchMessage | undefined {
  if (!line.startsWith(MESSAGE_PREFIX)) return undefined;
  return JSON.parse(line.slice(MESSAGE_PREFIX.length)) as BenchMessage;
}
