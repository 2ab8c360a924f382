import type { PluginRegistry } from '@iommukit/core';
import { type CliIo, EXIT_FAILURE } from '../io.js';
import { execute } from './execute.js';
import { loadForCommand, reportConfigError } from './load.js';

/** `iommukit run <config>`: build the system and run the config's scenario. */
export async function runCommand(
  path: string,
  registry: PluginRegistry,
  io: CliIo,
  options: { json: boolean; tracePath: string | undefined },
): Promise<number> {
  const outcome = await loadForCommand(path, registry, io);
  if (!outcome.ok) {
    reportConfigError(path, outcome.error, io, options.json);
    return EXIT_FAILURE;
  }
  return execute(outcome.validated, registry, io, options);
}
