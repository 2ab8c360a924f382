/**
 * Reading and validating configs. Validation has two passes: the system schema, then each IOMMU
 * instance's `options` against the selected plugin's own schema. All problems from both passes are
 * reported together as one {@link ConfigError}.
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError, type ConfigIssue } from '../errors/config-error.js';
import { PluginError } from '../errors/plugin-error.js';
import type { MsiControllerModule } from '../msi/msi-module.js';
import type { IommuPlugin } from '../plugin/plugin.js';
import { isModulePath, type PluginRegistry } from '../plugin/plugin-registry.js';
import type { ViommuFrontendModule } from '../viommu/frontend-module.js';
import { formatPath, toConfigIssues } from './format-issues.js';
import { type SystemConfig, SystemConfigSchema } from './schema.js';

/** A config that passed both validation passes, with its plugin loaded and options parsed. */
export interface ValidatedConfig {
  readonly config: SystemConfig;
  readonly plugin: IommuPlugin;
  /** `iommus[i].options` after the plugin's schema applied its defaults. */
  readonly instanceOptions: readonly unknown[];
  /** Folder relative plugin paths resolve against. */
  readonly baseDir: string;
  /** The MSI controller module `msi.controller` names, with `msi.options` parsed; absent for "none". */
  readonly msi?: { readonly module: MsiControllerModule; readonly options: unknown };
  /** The vIOMMU front-end `viommu.frontend` names (`vendor`, the plugin's own personality, by default). */
  readonly viommuFrontend: ViommuFrontendModule;
}

/** Alias expansions a config may make: far more than a hand-written config needs, far fewer than a bomb. */
const MAX_ALIAS_COUNT = 100;

/** Parses YAML or JSON text (JSON is YAML, so one parser serves both). */
export function parseConfigText(text: string, source = 'config'): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        path: `(${source} line ${e.linePos?.[0]?.line ?? '?'})`,
        message: e.message.split('\n')[0]!,
      })),
      { source },
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (cause) {
    // yaml throws a ReferenceError when aliases expand past the cap (a "billion laughs" document).
    if (!(cause instanceof ReferenceError)) throw cause;
    throw fileError(
      `more than ${MAX_ALIAS_COUNT} alias expansions (refused as a resource exhaustion)`,
      source,
      cause,
    );
  }
  // No document, only comments, or a bare `---`.
  if (value === null || value === undefined) throw fileError('the file is empty', source);
  return value;
}

function fileError(message: string, source: string, cause?: unknown): ConfigError {
  return new ConfigError([{ path: '(file)', message }], { source, cause });
}

export async function readConfigFile(path: string): Promise<{ raw: unknown; baseDir: string }> {
  const ext = extname(path).toLowerCase();
  if (!['.yaml', '.yml', '.json'].includes(ext)) {
    throw new ConfigError([
      { path: '(file)', message: `expected a .yaml, .yml or .json file, got "${path}"` },
    ]);
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(
      [{ path: '(file)', message: `cannot read "${path}": ${(cause as Error).message}` }],
      { cause },
    );
  }
  return { raw: parseConfigText(text, path), baseDir: dirname(resolve(path)) };
}

/** Validates a parsed config, loads its plugin and validates instance options; throws one ConfigError. */
export async function validateConfig(
  raw: unknown,
  registry: PluginRegistry,
  baseDir = process.cwd(),
  source?: string,
): Promise<ValidatedConfig> {
  const issues: ConfigIssue[] = [];
  const parsed = SystemConfigSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) issues.push(...toConfigIssues(parsed.error, SystemConfigSchema));

  const pluginSpec = (raw as { plugin?: unknown } | null)?.plugin;
  let plugin: IommuPlugin | undefined;
  if (typeof pluginSpec === 'string' && pluginSpec.length > 0) {
    try {
      plugin = await registry.load(pluginSpec, baseDir);
    } catch (error) {
      if (!(error instanceof PluginError)) throw error;
      issues.push({ path: 'plugin', message: error.message });
    }
  }

  const instanceOptions: unknown[] = [];
  const instances = (raw as { iommus?: unknown } | null)?.iommus;
  if (plugin && Array.isArray(instances)) {
    instances.forEach((instance, i) => {
      const options = (instance as { options?: unknown } | null)?.options ?? {};
      const result = validateOptions(plugin, options, ['iommus', i, 'options']);
      if (result.ok) instanceOptions.push(result.value);
      else issues.push(...result.issues);
    });
  }

  const msi = await validateMsi(raw, registry, baseDir, issues);
  const viommuFrontend = await loadNamed(
    { path: 'viommu.frontend', what: 'vIOMMU front-end', known: registry.viommuFrontendNames() },
    (raw as { viommu?: { frontend?: unknown } } | null)?.viommu?.frontend ?? 'vendor',
    (spec) => registry.loadViommuFrontend(spec, baseDir),
    issues,
  );
  if (issues.length > 0 || !parsed.success || !plugin || !viommuFrontend) {
    throw new ConfigError(issues, source === undefined ? {} : { source });
  }
  return { config: parsed.data, plugin, instanceOptions, baseDir, viommuFrontend, ...(msi ? { msi } : {}) };
}

/** Loads, parses and validates a config file. */
export async function loadConfigFile(path: string, registry: PluginRegistry): Promise<ValidatedConfig> {
  const { raw, baseDir } = await readConfigFile(path);
  return validateConfig(raw, registry, baseDir, path);
}

/**
 * Loads the module a config names at `path` (a built-in name, module path or package); a module that is
 * missing or malformed is an issue at that path. A non-string value is left to the schema's issue.
 */
async function loadNamed<T>(
  at: { readonly path: string; readonly what: string; readonly known: readonly string[] },
  spec: unknown,
  load: (spec: string) => Promise<T>,
  issues: ConfigIssue[],
): Promise<T | undefined> {
  if (typeof spec !== 'string' || spec.length === 0) return undefined;
  try {
    return await load(spec);
  } catch (error) {
    if (!(error instanceof PluginError)) throw error;
    // A name that is neither built in nor a package is most likely a typo: list the names there are.
    const message =
      error.code === 'PLUGIN_NOT_FOUND' && !isModulePath(spec)
        ? `no ${at.what} named "${spec}" (have: ${at.known.join(', ')})`
        : error.message;
    issues.push({ path: at.path, message });
    return undefined;
  }
}

/** Loads the MSI controller module the config names and validates its options against its schema. */
async function validateMsi(
  raw: unknown,
  registry: PluginRegistry,
  baseDir: string,
  issues: ConfigIssue[],
): Promise<ValidatedConfig['msi']> {
  const msi = (raw as { msi?: { controller?: unknown; options?: unknown } } | null)?.msi;
  if (msi?.controller === 'none') return undefined;
  const module = await loadNamed(
    { path: 'msi.controller', what: 'MSI controller', known: ['none', ...registry.msiModuleNames()] },
    msi?.controller,
    (spec) => registry.loadMsiModule(spec, baseDir),
    issues,
  );
  if (!module) return undefined;
  const result = module.optionsSchema.safeParse(msi?.options ?? {}, { reportInput: true });
  if (!result.success) {
    issues.push(...toConfigIssues(result.error, module.optionsSchema, ['msi', 'options']));
    return undefined;
  }
  return { module, options: result.data };
}

type OptionsResult = { ok: true; value: unknown } | { ok: false; issues: ConfigIssue[] };

function validateOptions(plugin: IommuPlugin, options: unknown, path: (string | number)[]): OptionsResult {
  const schema = plugin.optionsSchema;
  if (!schema) {
    const keys = typeof options === 'object' && options !== null ? Object.keys(options) : [];
    if (keys.length === 0) return { ok: true, value: {} };
    return {
      ok: false,
      issues: keys.map((k) => ({
        path: formatPath([...path, k]),
        message: `unknown key (plugin "${plugin.meta.name}" takes no options)`,
      })),
    };
  }
  const result = schema.safeParse(options, { reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, issues: toConfigIssues(result.error, schema, path) };
}
