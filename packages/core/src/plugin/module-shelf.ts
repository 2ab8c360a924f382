/**
 * The registry's shelf for one kind of module besides plugins (MSI controllers, vIOMMU front-ends): built-in
 * names with lazy loaders, and modules a config names by path or package, each checked for the kind's
 * shape once and kept by name (built-ins) or resolved URL (the same relative path from two config
 * folders is two modules).
 */
import { PluginError } from '../errors/plugin-error.js';
import {
  defaultExport,
  importWith,
  isModulePath,
  type PluginLoader,
  resolveModule,
} from './module-loading.js';

/** Whether a default export is a module of the kind; `shape` lists what the kind needs, for messages. */
export interface ModuleCheck<T> {
  (value: unknown): value is T;
  readonly shape: string;
}

export class ModuleShelf<T extends { readonly name: string }> {
  private readonly loaders = new Map<string, PluginLoader>();
  private readonly loaded = new Map<string, T>();

  constructor(
    /** What the kind is called in messages (`MSI controller module`). */
    private readonly kind: string,
    private readonly check: ModuleCheck<T>,
  ) {}

  register(name: string, loader: PluginLoader): void {
    if (this.loaders.has(name))
      throw new PluginError('PLUGIN_DUPLICATE', name, `a ${this.kind} with this name is already registered`);
    this.loaders.set(name, loader);
  }

  names(): string[] {
    return [...this.loaders.keys()].sort();
  }

  /** A built-in by name (which it must carry), else a module path or package resolved from `baseDir`. */
  async load(spec: string, baseDir: string): Promise<T> {
    const builtin = this.loaders.get(spec);
    const key = builtin ? spec : this.resolve(spec, baseDir);
    const cached = this.loaded.get(key);
    if (cached) return cached;
    const module = defaultExport(await importWith(builtin ?? (() => import(key)), spec), spec);
    if (!this.check(module) || (builtin !== undefined && module.name !== spec)) {
      throw new PluginError(
        'PLUGIN_MALFORMED',
        spec,
        `not a ${this.kind}${builtin ? ` named "${spec}"` : ''} (${this.check.shape})`,
      );
    }
    this.loaded.set(key, module);
    return module;
  }

  private resolve(spec: string, baseDir: string): string {
    try {
      return resolveModule(spec, baseDir);
    } catch (cause) {
      if (isModulePath(spec) || !(cause instanceof PluginError)) throw cause;
      throw new PluginError(
        'PLUGIN_NOT_FOUND',
        spec,
        `no ${this.kind} by this name (have: ${this.names().join(', ') || 'none'}) and no package (looked from ${baseDir})`,
        { cause },
      );
    }
  }
}
