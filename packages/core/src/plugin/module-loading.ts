/**
 * How the registry imports what a config names: a module path (relative to the config's folder, or
 * absolute) or a package name resolved from that folder, imported with its failures turned into coded
 * plugin errors, and its default export taken.
 */
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PluginError } from '../errors/plugin-error.js';

/** Imports a module; resolves to its module namespace (what it offers is its default export). */
export type PluginLoader = () => Promise<unknown>;

/** True when `spec` names a file rather than a built-in or a package. */
export function isModulePath(spec: string): boolean {
  return spec.startsWith('.') || isAbsolute(spec) || /\.(?:m?js|cjs)$/.test(spec);
}

export function resolveModule(spec: string, baseDir: string): string {
  if (isModulePath(spec)) return pathToFileURL(resolve(baseDir, spec)).href;
  try {
    return pathToFileURL(createRequire(join(baseDir, 'noop.js')).resolve(spec)).href;
  } catch (cause) {
    throw new PluginError(
      'PLUGIN_NOT_FOUND',
      spec,
      `no built-in plugin and no package by this name (looked from ${baseDir})`,
      { cause },
    );
  }
}

export async function importWith(loader: PluginLoader, spec: string): Promise<unknown> {
  try {
    return await loader();
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new PluginError('PLUGIN_NOT_FOUND', spec, `module not found: ${(cause as Error).message}`, {
        cause,
      });
    }
    throw new PluginError('PLUGIN_LOAD_FAILED', spec, `failed to load: ${(cause as Error).message}`, {
      cause,
    });
  }
}

export function defaultExport(module: unknown, spec: string): unknown {
  const value = (module as { default?: unknown } | null)?.default;
  if (value === undefined) {
    throw new PluginError(
      'PLUGIN_NO_DEFAULT_EXPORT',
      spec,
      'the module has no default export (export default definePlugin({...}))',
    );
  }
  return value;
}
