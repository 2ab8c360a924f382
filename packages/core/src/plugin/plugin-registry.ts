/**
 * Finds vendor plugins: a table of built-in names (each with a lazy loader, so a plugin's code is only
 * imported when a config uses it) plus third-party plugins loaded from a module path or package name given
 * in config, with no change to iommukit. Every plugin that loads is checked against the contract, and two
 * different plugins may not share a name.
 */
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { token } from '../di/token.js';
import { PluginError } from '../errors/plugin-error.js';
import type { MsiControllerModule } from '../msi/msi-module.js';
import type { IommuPlugin } from './plugin.js';
import { validatePlugin } from './validate-plugin.js';

/** Imports a plugin module; resolves to its module namespace (the plugin is its default export). */
export type PluginLoader = () => Promise<unknown>;

export const IPluginRegistry = token<PluginRegistry>('iommukit.PluginRegistry');

export class PluginRegistry {
  private readonly builtins = new Map<string, PluginLoader>();
  /** Every plugin loaded or registered, by its `meta.name`: names are unique across all origins. */
  private readonly byName = new Map<string, { plugin: IommuPlugin; origin: string }>();
  /** Plugins loaded from files or packages, by resolved module URL (the same relative path from two
   * config folders is two different modules). */
  private readonly byUrl = new Map<string, IommuPlugin>();

  /** MSI controller modules by name (built-in, lazily imported), and the ones loaded so far. */
  private readonly msiLoaders = new Map<string, PluginLoader>();
  private readonly msiModules = new Map<string, MsiControllerModule>();

  constructor(
    builtins: Readonly<Record<string, PluginLoader>> = {},
    msiBuiltins: Readonly<Record<string, PluginLoader>> = {},
  ) {
    for (const [name, loader] of Object.entries(builtins)) this.registerBuiltin(name, loader);
    for (const [name, loader] of Object.entries(msiBuiltins)) this.registerMsiModule(name, loader);
  }

  /** Adds an MSI controller module (`msi.controller` in configs). A name may be registered once. */
  registerMsiModule(name: string, loader: PluginLoader): void {
    if (this.msiLoaders.has(name))
      throw new PluginError(
        'PLUGIN_DUPLICATE',
        name,
        'an MSI controller with this name is already registered',
      );
    this.msiLoaders.set(name, loader);
  }

  msiModuleNames(): string[] {
    return [...this.msiLoaders.keys()].sort();
  }

  /** Loads an MSI controller module by name, checking it is one. */
  async loadMsiModule(name: string): Promise<MsiControllerModule> {
    const cached = this.msiModules.get(name);
    if (cached) return cached;
    const loader = this.msiLoaders.get(name);
    if (!loader) {
      throw new PluginError(
        'PLUGIN_NOT_FOUND',
        name,
        `no MSI controller module by this name (have: ${this.msiModuleNames().join(', ') || 'none'})`,
      );
    }
    const module = defaultExport(await importWith(loader, name), name) as Partial<MsiControllerModule>;
    const missing = (['create', 'createVirtual'] as const).filter((k) => typeof module[k] !== 'function');
    if (module.name !== name || typeof module.optionsSchema?.safeParse !== 'function' || missing.length > 0) {
      throw new PluginError(
        'PLUGIN_MALFORMED',
        name,
        `not an MSI controller module named "${name}" (name, optionsSchema, create, createVirtual)`,
      );
    }
    this.msiModules.set(name, module as MsiControllerModule);
    return module as MsiControllerModule;
  }

  /** Adds a built-in name. A name may be registered once. */
  registerBuiltin(name: string, loader: PluginLoader): void {
    if (this.builtins.has(name) || this.byName.has(name)) {
      throw new PluginError('PLUGIN_DUPLICATE', name, 'a plugin with this name is already registered');
    }
    this.builtins.set(name, loader);
  }

  /** Adds an already-imported plugin object (tests, embedding applications). */
  register(plugin: unknown, origin = 'registered object'): IommuPlugin {
    const valid = validatePlugin(plugin, origin);
    if (this.builtins.has(valid.meta.name)) {
      throw new PluginError(
        'PLUGIN_DUPLICATE',
        valid.meta.name,
        `${origin} uses the name of a built-in plugin`,
      );
    }
    return this.remember(valid, origin);
  }

  builtinNames(): string[] {
    return [...this.builtins.keys()].sort();
  }

  /**
   * Loads a plugin by built-in name, by module path (`./my-plugin.js`, absolute, or ending in `.js`/`.mjs`;
   * relative paths resolve against `baseDir`, usually the config file's folder), or by package name
   * resolved from `baseDir`.
   */
  async load(spec: string, baseDir: string = process.cwd()): Promise<IommuPlugin> {
    const builtin = this.builtins.get(spec);
    if (builtin) {
      const cached = this.byName.get(spec);
      if (cached) return cached.plugin;
      const plugin = validatePlugin(defaultExport(await importWith(builtin, spec), spec), spec);
      if (plugin.meta.name !== spec) {
        throw new PluginError(
          'PLUGIN_MALFORMED',
          spec,
          `built-in "${spec}" loaded a plugin named "${plugin.meta.name}"`,
        );
      }
      return this.remember(plugin, `built-in ${spec}`);
    }
    const url = resolveModule(spec, baseDir);
    const cached = this.byUrl.get(url);
    if (cached) return cached;
    const plugin = validatePlugin(defaultExport(await importWith(() => import(url), spec), spec), spec);
    if (this.builtins.has(plugin.meta.name)) {
      throw new PluginError(
        'PLUGIN_DUPLICATE',
        plugin.meta.name,
        `${spec} uses the name of a built-in plugin`,
      );
    }
    this.remember(plugin, spec);
    this.byUrl.set(url, plugin);
    return plugin;
  }

  /** Loads every built-in plugin (for `iommukit vendors`). */
  async loadBuiltins(): Promise<IommuPlugin[]> {
    const plugins: IommuPlugin[] = [];
    for (const name of this.builtinNames()) plugins.push(await this.load(name));
    return plugins;
  }

  private remember(plugin: IommuPlugin, origin: string): IommuPlugin {
    const existing = this.byName.get(plugin.meta.name);
    if (existing && existing.plugin !== plugin) {
      throw new PluginError(
        'PLUGIN_DUPLICATE',
        plugin.meta.name,
        `${origin} and ${existing.origin} both call themselves "${plugin.meta.name}"`,
      );
    }
    this.byName.set(plugin.meta.name, { plugin, origin });
    return plugin;
  }
}

/** True when `spec` names a file rather than a built-in or a package. */
export function isModulePath(spec: string): boolean {
  return spec.startsWith('.') || isAbsolute(spec) || /\.(?:m?js|cjs)$/.test(spec);
}

function resolveModule(spec: string, baseDir: string): string {
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

async function importWith(loader: PluginLoader, spec: string): Promise<unknown> {
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

function defaultExport(module: unknown, spec: string): unknown {
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
