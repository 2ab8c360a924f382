import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fakeConfig, fakePlugin } from '../../test/fake-plugin.js';
import { ConfigError } from '../errors/config-error.js';
import { PluginRegistry } from '../plugin/plugin-registry.js';
import { loadConfigFile, readConfigFile, validateConfig } from './load-config.js';

const dir = mkdtempSync(join(tmpdir(), 'iommukit-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The ConfigError `promise` rejects with. */
async function rejection(promise: Promise<unknown>): Promise<ConfigError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe('readConfigFile', () => {
  it('reads YAML (.yaml, .yml, any case) and JSON, and resolves the folder plugin paths are relative to', async () => {
    for (const name of ['a.yaml', 'b.YML', 'c.json']) {
      const path = file(name, name.endsWith('json') ? '{"seed": 7}' : 'seed: 7\n');
      expect(await readConfigFile(path)).toEqual({ raw: { seed: 7 }, baseDir: dir });
    }
  });

  it('refuses another extension and a file it cannot read, naming the path', async () => {
    const txt = file('config.txt', 'seed: 7');
    expect((await rejection(readConfigFile(txt))).issues).toEqual([
      { path: '(file)', message: `expected a .yaml, .yml or .json file, got "${txt}"` },
    ]);
    const missing = join(dir, 'missing.yaml');
    const error = await rejection(readConfigFile(missing));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]!.path).toBe('(file)');
    expect(error.issues[0]!.message).toMatch(new RegExp(`^cannot read "${missing}": ENOENT`));
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('names the file in the errors of what it parses and validates', async () => {
    const broken = file('broken.yaml', 'seed: [1\n');
    expect((await rejection(readConfigFile(broken))).message).toContain(`in ${broken}`);
    const invalid = file('invalid.yaml', 'plugin: fake\nseed: one\n');
    const registry = new PluginRegistry({ fake: async () => ({ default: fakePlugin }) });
    expect((await rejection(loadConfigFile(invalid, registry))).message).toContain(`in ${invalid} (`);
  });
});

describe('a plugin without an options schema', () => {
  const registry = () =>
    new PluginRegistry({
      bare: async () => ({
        default: { ...fakePlugin, meta: { ...fakePlugin.meta, name: 'bare' }, optionsSchema: undefined },
      }),
    });

  it('takes no options, or an empty object, and refuses each key given or options that are no object', async () => {
    const raw: Record<string, unknown> = { ...fakeConfig(), plugin: 'bare' };
    expect((await validateConfig(raw, registry())).instanceOptions).toEqual([{}]);
    (raw.iommus as Record<string, unknown>[])[0]!.options = {};
    expect((await validateConfig(raw, registry())).instanceOptions).toEqual([{}]);
    // Options that are no object are the schema's to report, once: no key-by-key complaints on top.
    for (const [options, shown] of [
      ['ab', '"ab"'],
      [5, '5'],
    ] as const) {
      (raw.iommus as Record<string, unknown>[])[0]!.options = options;
      expect((await rejection(validateConfig(raw, registry()))).issues).toEqual([
        { path: 'iommus[0].options', message: `expected record, got ${shown}` },
      ]);
    }
    (raw.iommus as Record<string, unknown>[])[0]!.options = { a: 1, b: 2 };
    expect((await rejection(validateConfig(raw, registry()))).issues).toEqual([
      { path: 'iommus[0].options.a', message: 'unknown key (plugin "bare" takes no options)' },
      { path: 'iommus[0].options.b', message: 'unknown key (plugin "bare" takes no options)' },
    ]);
  });
});
