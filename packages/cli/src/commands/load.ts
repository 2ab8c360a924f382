/** Loading a config file for a command, turning config problems into printed issues and exit code 1. */

import { resolve } from 'node:path';
import {
  ConfigError,
  createSystem,
  loadConfigFile,
  type PluginRegistry,
  unsupportedFeatures,
  type ValidatedConfig,
  vmPowerOnIssues,
} from '@iommukit/core';
import { vmm } from '@iommukit/vmm';
import type { CliIo } from '../io.js';
import { renderIssues } from '../render.js';

export type LoadOutcome = { ok: true; validated: ValidatedConfig } | { ok: false; error: ConfigError };

export async function loadForCommand(
  path: string,
  registry: PluginRegistry,
  io: CliIo,
): Promise<LoadOutcome> {
  try {
    const validated = await loadConfigFile(resolve(io.cwd, path), registry);
    const unsupported = unsupportedFeatures(validated, { vmm });
    if (unsupported.length > 0) return { ok: false, error: new ConfigError(unsupported, { source: path }) };
    // Building the system catches what only the plugin knows: register windows that collide, devices
    // the driver refuses, host RAM too small. Powering its VMs on catches what they take from the host
    // beyond guest RAM. It is cheap (sparse memory), so validate and run always agree.
    const system = await createSystem(validated, { registry, vmm });
    try {
      const issues = vmPowerOnIssues(system);
      if (issues.length > 0) return { ok: false, error: new ConfigError(issues, { source: path }) };
    } finally {
      await system.dispose();
    }
    return { ok: true, validated };
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, error };
    throw error;
  }
}

/** Prints config problems: as JSON on stdout with `--json`, else one line each on stderr. */
export function reportConfigError(path: string, error: ConfigError, io: CliIo, json: boolean): void {
  if (json) io.out(`${JSON.stringify({ valid: false, config: path, issues: error.issues }, null, 2)}\n`);
  else io.err(renderIssues(path, error.issues));
}
