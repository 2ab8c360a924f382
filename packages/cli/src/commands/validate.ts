import type { PluginRegistry } from '@iommukit/core';
import { type CliIo, EXIT_FAILURE, EXIT_OK } from '../io.js';
import { loadForCommand, reportConfigError } from './load.js';

/** `iommukit validate <config>`: every problem with its path; exit 1 on any. */
export async function validateCommand(
  path: string,
  registry: PluginRegistry,
  io: CliIo,
  json: boolean,
): Promise<number> {
  const outcome = await loadForCommand(path, registry, io);
  if (!outcome.ok) {
    reportConfigError(path, outcome.error, io, json);
    return EXIT_FAILURE;
  }
  const { config, plugin } = outcome.validated;
  const summary = {
    valid: true,
    config: path,
    plugin: plugin.meta.name,
    iommus: config.iommus.length,
    devices: config.devices.length,
    vms: config.vms.length,
    scenarioSteps: config.scenario?.steps.length ?? 0,
  };
  if (json) io.out(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    io.out(
      `${path}: valid (plugin ${summary.plugin}, ${summary.iommus} IOMMU(s), ${summary.devices} device(s), ${summary.scenarioSteps} scenario step(s))\n`,
    );
  }
  return EXIT_OK;
}
