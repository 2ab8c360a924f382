import { fileURLToPath } from 'node:url';
import type { PluginRegistry } from '@iommukit/core';
import type { CliIo } from '../io.js';
import { runCommand } from './run.js';

/** The built-in default config, shipped with the package (works from src/ and dist/ alike). */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../configs/default.yaml', import.meta.url));

/** `iommukit demo`: run the built-in default config. */
export async function demoCommand(
  registry: PluginRegistry,
  io: CliIo,
  options: { json: boolean; tracePath: string | undefined },
): Promise<number> {
  if (!options.json) io.out(`iommukit demo — built-in config ${DEFAULT_CONFIG_PATH}\n\n`);
  return runCommand(DEFAULT_CONFIG_PATH, registry, io, options);
}
