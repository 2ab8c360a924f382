/**
 * Finds vendor plugins: a table of built-in names (each with a lazy loader, so a plugin's code is only
 * imported when a config uses it) plus third-party plugins loaded from a module path or package name given
 * in config, with no change to iommukit. Every plugin that loads is checked against the contract, and two
 * different plugins may not share a name.
 */
import { token } from '../di/token.js';
import { PluginError } from '../errors/plugin-error.js';
import type { MsiControllerModule } from '../msi/msi-module.js';
import { type ViommuFrontendModule, vendorViommuFrontend } from '../viommu/frontend-module.js';
import { defaultExport, importWith, type PluginLoader, resolveModule } from './module-loading.js';
import { ModuleShelf } from './module-shelf.js';
import type { IommuPlugin } from './plugin.js';
import { validatePlugin } from './validate-plugin.js';

export type { PluginLoader } from './module-loading.js';
export { isModulePath } from './module-loading.js';

export const IPluginRegistry = token<PluginRegistry>('iommukit.PluginRegistry');

export class PluginRegistry {
  private readonly builtins = new Map<string, PluginLoader>();
  /** Every plugin loaded or registered, by its `meta.name`: names are unique across all origins. */
  private readonly byName = new Map<string, { plugin: IommuPlugin; origin: string }>();
  /** Plugins loaded from files or packages, by resolved module URL (the same relative path from two
   * config folders is two different modules). */
  private readonly byUrl = new Map<string, IommuPlugin>();
  /** MSI controller modules (`msi.controller`). */
  private readonly msi = new ModuleShelf<MsiControllerModule>('MSI controller module', checkMsiModule);
  /** vIOMMU front-ends (`viommu.frontend`); `vendor`, the plugin's own personality, is always there. */
  private readonly frontends = new ModuleShelf<ViommuFrontendModule>('vIOMMU front-end', checkFrontend);

  constructor(
    builtins: Readonly<Record<string, PluginLoader>> = {},
    msiBuiltins: Readonly<Record<string, PluginLoader>> = {},
    frontendBuiltins: Readonly<Record<string, PluginLoader>> = {},
  ) {
    for (const [name, loader] of Object.entries(builtins)) this.registerBuiltin(name, loader);
    for (const [name, loader] of Object.entries(msiBuiltins)) this.registerMsiModule(name, loader);
    this.registerViommuFrontend(vendorViommuFrontend.name, async () => ({ default: vendorViommuFrontend }));
    for (const [name, loader] of Object.entries(frontendBuiltins)) this.registerViommuFrontend(name, loader);
  }

  /** Adds a built-in MSI controller module (`msi.controller` in configs). A name may be registered once. */
  registerMsiModule(name: string, loader: PluginLoader): void {
    this.msi.register(name, loader);
  }

  msiModuleNames(): string[] {
    return this.msi.names();
  }

  /** Loads an MSI controller module by built-in name, module path or package name, checking it is one. */
  loadMsiModule(spec: string, baseDir: string = process.cwd()): Promise<MsiControllerModule> {
    return this.msi.load(spec, baseDir);
  }

  /** Adds a built-in vIOMMU front-end (`viommu.frontend` in configs). A name may be registered once. */
  registerViommuFrontend(name: string, loader: PluginLoader): void {
    this.frontends.register(name, loader);
  }

  viommuFrontendNames(): string[] {
    return this.frontends.names();
  }

  /** Loads a vIOMMU front-end by built-in name, module path or package name, checking it is one. */
  loadViommuFrontend(spec: string, baseDir: string = process.cwd()): Promise<ViommuFrontendModule> {
    return this.frontends.load(spec, baseDir);
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

function checkMsiModule(value: unknown): value is MsiControllerModule {
  const module = value as Partial<MsiControllerModule> | null;
  return (
    typeof module?.name === 'string' &&
    typeof module.optionsSchema?.safeParse === 'function' &&
    typeof module.create === 'function' &&
    typeof module.createVirtual === 'function'
  );
}
checkMsiModule.shape = 'name, optionsSchema, create, createVirtual';

function checkFrontend(value: unknown): value is ViommuFrontendModule {
  const module = value as Partial<ViommuFrontendModule> | null;
  return (
    typeof module?.name === 'string' &&
    typeof module.modes === 'function' &&
    typeof module.create === 'function'
  );
}
checkFrontend.shape = 'name, description, modes, create';
