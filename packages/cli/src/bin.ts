#!/usr/bin/env node
import pc from 'picocolors';
import { main } from './main.js';

const code = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  cwd: callerDirectory(),
  color: pc.isColorSupported,
});
process.exitCode = code;

/**
 * Run as the workspace's `iommukit` script (`pnpm iommukit …`), the process starts in the workspace root;
 * pnpm and npm pass the directory the user typed the command in as INIT_CWD, and paths are theirs.
 */
function callerDirectory(): string {
  const { INIT_CWD, npm_lifecycle_event } = process.env;
  return npm_lifecycle_event === 'iommukit' && INIT_CWD ? INIT_CWD : process.cwd();
}
