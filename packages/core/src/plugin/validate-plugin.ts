/**
 * Checks that a loaded module's default export matches the {@link IommuPlugin} contract, with one precise
 * message per mismatch, so a third-party author sees every mistake at once.
 */
import { PluginError } from '../errors/plugin-error.js';
import type { IommuPlugin } from './plugin.js';

const NAME_PATTERN = /^[a-z][a-z0-9-]*$/;
const SEMVER_PATTERN = /^\d+\.\d+\.\d+(?:[-+].*)?$/;
const STAGES = new Set(['s1', 's2', 'nested']);
const VIOMMU_MODES = new Set(['emulated', 'nested', 'shadow']);
const PASID_OWNERS = new Set(['user', 'kernel', 'none']);

export function validatePlugin(candidate: unknown, origin: string): IommuPlugin {
  const problems: string[] = [];
  if (typeof candidate !== 'object' || candidate === null) {
    throw new PluginError(
      'PLUGIN_MALFORMED',
      origin,
      `default export is ${typeName(candidate)}, expected a plugin object`,
    );
  }
  const p = candidate as Record<string, unknown>;
  const meta = p.meta as Record<string, unknown> | undefined;
  if (typeof meta !== 'object' || meta === null)
    problems.push('meta: missing (expected { name, version, vendor })');
  else {
    if (typeof meta.name !== 'string' || !NAME_PATTERN.test(meta.name)) {
      problems.push(`meta.name: expected a lowercase name like "smmuv3", got ${show(meta.name)}`);
    }
    if (typeof meta.version !== 'string' || !SEMVER_PATTERN.test(meta.version)) {
      problems.push(`meta.version: expected a semver version like "1.0.0", got ${show(meta.version)}`);
    }
    if (typeof meta.vendor !== 'string' || meta.vendor.length === 0)
      problems.push(`meta.vendor: expected a string, got ${show(meta.vendor)}`);
  }
  const caps = p.capabilities as Record<string, unknown> | undefined;
  if (typeof caps !== 'object' || caps === null) problems.push('capabilities: missing');
  else {
    if (!Array.isArray(caps.stages) || !caps.stages.every((s) => STAGES.has(s))) {
      problems.push(
        `capabilities.stages: expected an array of "s1" | "s2" | "nested", got ${show(caps.stages)}`,
      );
    }
    for (const flag of ['pasid', 'ats', 'pri', 'dirtyTracking'] as const) {
      if (typeof caps[flag] !== 'boolean')
        problems.push(`capabilities.${flag}: expected a boolean, got ${show(caps[flag])}`);
    }
    for (const flag of ['interruptRemapping', 'crossInstanceDomains'] as const) {
      if (caps[flag] !== undefined && typeof caps[flag] !== 'boolean')
        problems.push(`capabilities.${flag}: expected a boolean, got ${show(caps[flag])}`);
    }
    if (!PASID_OWNERS.has(caps.pasidTableOwner as string)) {
      problems.push(
        `capabilities.pasidTableOwner: expected "user" | "kernel" | "none", got ${show(caps.pasidTableOwner)}`,
      );
    }
    if (!Array.isArray(caps.viommuModes) || !caps.viommuModes.every((m) => VIOMMU_MODES.has(m))) {
      problems.push(
        `capabilities.viommuModes: expected an array of "emulated" | "nested" | "shadow", got ${show(caps.viommuModes)}`,
      );
    }
  }
  for (const factory of ['createHardware', 'createDriver'] as const) {
    if (typeof p[factory] !== 'function')
      problems.push(`${factory}: expected a function, got ${typeName(p[factory])}`);
  }
  for (const optional of ['streamIdForRid', 'createViommu'] as const) {
    if (p[optional] !== undefined && typeof p[optional] !== 'function')
      problems.push(`${optional}: expected a function, got ${typeName(p[optional])}`);
  }
  const guestOps = p.guestOps as Record<string, unknown> | undefined;
  if (guestOps !== undefined) {
    if (typeof guestOps !== 'object' || guestOps === null)
      problems.push(`guestOps: expected an object of functions, got ${typeName(guestOps)}`);
    else
      for (const [name, op] of Object.entries(guestOps))
        if (typeof op !== 'function')
          problems.push(`guestOps.${name}: expected a function, got ${typeName(op)}`);
  }
  // A personality and its modes go together: modes without one promise what nothing can build.
  const modes = (caps as { viommuModes?: unknown } | undefined)?.viommuModes;
  if (Array.isArray(modes) && modes.length > 0 && p.createViommu === undefined)
    problems.push(
      'createViommu: capabilities.viommuModes lists modes, so the plugin must provide createViommu',
    );
  const schema = p.optionsSchema as { safeParse?: unknown } | undefined;
  if (schema !== undefined && typeof schema?.safeParse !== 'function') {
    problems.push('optionsSchema: expected a zod schema (an object with safeParse)');
  }
  if (problems.length > 0) {
    throw new PluginError(
      'PLUGIN_MALFORMED',
      origin,
      `does not match the plugin contract:\n  ${problems.join('\n  ')}`,
    );
  }
  return candidate as IommuPlugin;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}
