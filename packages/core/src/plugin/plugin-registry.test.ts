import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fakeMsiModule, fakePlugin, fakeRegistry } from '../../test/fake-plugin.js';
import { PluginError } from '../errors/plugin-error.js';
import { isModulePath, PluginRegistry } from './plugin-registry.js';

/** A third-party plugin written as plain ESM JavaScript, as an author outside the repo would ship it. */
const THIRD_PARTY = `
export default {
  meta: { name: 'riscv-iommu', version: '0.3.1', vendor: 'riscv', description: 'third party' },
  capabilities: { stages: ['s1', 's2'], pasid: true, ats: true, pri: false, dirtyTracking: false,
                  pasidTableOwner: 'user', viommuModes: [] },
  createHardware() { throw new Error('not needed here'); },
  createDriver() { throw new Error('not needed here'); },
};
`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'iommukit-registry-'));
  writeFileSync(join(dir, 'riscv.mjs'), THIRD_PARTY);
  writeFileSync(join(dir, 'clash.mjs'), THIRD_PARTY.replace("'riscv-iommu'", "'fake'"));
  writeFileSync(join(dir, 'no-default.mjs'), 'export const plugin = {};\n');
  writeFileSync(join(dir, 'throws.mjs'), "throw new Error('boom at import');\n");
  writeFileSync(
    join(dir, 'malformed.mjs'),
    "export default { meta: { name: 'Bad Name', version: 'one' }, capabilities: { stages: ['s3'] }, createDriver: 1 };\n",
  );
  mkdirSync(join(dir, 'node_modules', 'acme-iommu'), { recursive: true });
  writeFileSync(
    join(dir, 'node_modules', 'acme-iommu', 'package.json'),
    JSON.stringify({ name: 'acme-iommu', type: 'module', exports: { '.': { default: './index.js' } } }),
  );
  writeFileSync(
    join(dir, 'node_modules', 'acme-iommu', 'index.js'),
    THIRD_PARTY.replace("'riscv-iommu'", "'acme'"),
  );
});

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    if (error instanceof PluginError) return error.code;
    throw error;
  }
}

describe('PluginRegistry', () => {
  it('loads a built-in by name, lazily and once', async () => {
    let imports = 0;
    const registry = new PluginRegistry({
      fake: async () => {
        imports++;
        return { default: fakePlugin };
      },
    });
    expect(imports).toBe(0);
    expect(await registry.load('fake')).toBe(fakePlugin);
    expect(await registry.load('fake')).toBe(fakePlugin);
    expect(imports).toBe(1);
    expect(registry.builtinNames()).toEqual(['fake']);
  });

  it('loads a third-party plugin from a module path relative to the base folder', async () => {
    const plugin = await fakeRegistry().load('./riscv.mjs', dir);
    expect(plugin.meta).toEqual({
      name: 'riscv-iommu',
      version: '0.3.1',
      vendor: 'riscv',
      description: 'third party',
    });
    expect(plugin.capabilities.pasidTableOwner).toBe('user');
  });

  it('caches by resolved module, so one relative path from two folders is two modules', async () => {
    const other = mkdtempSync(join(tmpdir(), 'iommukit-registry-'));
    writeFileSync(join(other, 'riscv.mjs'), THIRD_PARTY.replace("'riscv-iommu'", "'riscv-other'"));
    const registry = fakeRegistry();
    const first = await registry.load('./riscv.mjs', dir);
    expect(await registry.load(join(dir, 'riscv.mjs'))).toBe(first);
    expect((await registry.load('./riscv.mjs', other)).meta.name).toBe('riscv-other');
  });

  it('loads a plugin from an absolute path and from a package name', async () => {
    const registry = fakeRegistry();
    expect((await registry.load(join(dir, 'riscv.mjs'))).meta.name).toBe('riscv-iommu');
    expect((await registry.load('acme-iommu', dir)).meta.name).toBe('acme');
  });

  it.each([
    ['./missing.mjs', 'PLUGIN_NOT_FOUND'],
    ['no-such-package', 'PLUGIN_NOT_FOUND'],
    ['./no-default.mjs', 'PLUGIN_NO_DEFAULT_EXPORT'],
    ['./throws.mjs', 'PLUGIN_LOAD_FAILED'],
    ['./malformed.mjs', 'PLUGIN_MALFORMED'],
    ['./clash.mjs', 'PLUGIN_DUPLICATE'],
  ])('rejects %s with %s', async (spec, code) => {
    expect(await codeOf(fakeRegistry().load(spec, dir))).toBe(code);
  });

  it('lists every contract violation of a malformed plugin at once', async () => {
    const error = await fakeRegistry()
      .load('./malformed.mjs', dir)
      .catch((e: unknown) => e as PluginError);
    const lines = (error as PluginError).message.split('\n').map((l) => l.trim());
    expect(lines).toEqual(
      expect.arrayContaining([
        'meta.name: expected a lowercase name like "smmuv3", got "Bad Name"',
        'meta.version: expected a semver version like "1.0.0", got "one"',
        'meta.vendor: expected a string, got nothing',
        'capabilities.stages: expected an array of "s1" | "s2" | "nested", got ["s3"]',
        'capabilities.pasid: expected a boolean, got nothing',
        'createHardware: expected a function, got undefined',
        'createDriver: expected a function, got number',
      ]),
    );
  });

  it('checks the vIOMMU personality: a function, and present whenever vIOMMU modes are listed', async () => {
    writeFileSync(
      join(dir, 'no-personality.mjs'),
      THIRD_PARTY.replace('viommuModes: []', "viommuModes: ['nested']").replace("'riscv-iommu'", "'np'"),
    );
    writeFileSync(
      join(dir, 'bad-personality.mjs'),
      THIRD_PARTY.replace('createDriver()', 'createViommu: 5, createDriver()').replace(
        "'riscv-iommu'",
        "'bp'",
      ),
    );
    const message = async (file: string) =>
      (
        (await fakeRegistry()
          .load(file, dir)
          .catch((e: unknown) => e)) as PluginError
      ).message;
    expect(await message('./no-personality.mjs')).toMatch(
      /createViommu: capabilities.viommuModes lists modes, so the plugin must provide createViommu/,
    );
    expect(await message('./bad-personality.mjs')).toMatch(/createViommu: expected a function, got number/);
  });

  it('refuses two built-ins with one name, and a registered object that takes a built-in name', () => {
    const registry = fakeRegistry();
    expect(() => registry.registerBuiltin('fake', async () => ({}))).toThrow(/PLUGIN_DUPLICATE/);
    expect(() => registry.register(fakePlugin)).toThrow(/PLUGIN_DUPLICATE/);
  });

  it('refuses a built-in whose module names itself differently', async () => {
    const registry = new PluginRegistry({ other: async () => ({ default: fakePlugin }) });
    expect(await codeOf(registry.load('other'))).toBe('PLUGIN_MALFORMED');
  });

  it.each([
    ['./x.js', true],
    ['/abs/plugin.mjs', true],
    ['plugin.cjs', true],
    ['smmuv3', false],
    ['@acme/iommu', false],
  ])('isModulePath(%s) is %s', (spec, expected) => {
    expect(isModulePath(spec)).toBe(expected);
  });
});

describe('PluginRegistry: MSI modules, registration and loading errors', () => {
  it('registers MSI modules once each, lists them sorted, and loads each once', async () => {
    const registry = new PluginRegistry({}, { 'z-msi': async () => ({ default: fakeMsiModule }) });
    registry.registerMsiModule('fake-msi', async () => ({ default: fakeMsiModule }));
    expect(() => registry.registerMsiModule('fake-msi', async () => ({}))).toThrow(/PLUGIN_DUPLICATE/);
    expect(registry.msiModuleNames()).toEqual(['fake-msi', 'z-msi']);
    const module = await registry.loadMsiModule('fake-msi');
    expect(module).toBe(fakeMsiModule);
    expect(await registry.loadMsiModule('fake-msi')).toBe(module);
    // A module whose name is not the one it was registered under is malformed.
    expect(await codeOf(registry.loadMsiModule('z-msi'))).toBe('PLUGIN_MALFORMED');
  });

  it('names the MSI modules it has when one is missing', async () => {
    await expect(new PluginRegistry().loadMsiModule('gic')).rejects.toThrow(
      'no MSI controller module by this name (have: none)',
    );
    await expect(fakeRegistry().loadMsiModule('gic')).rejects.toThrow('(have: fake-msi)');
  });

  it.each([
    ['no optionsSchema', { ...fakeMsiModule, optionsSchema: undefined }],
    ['an optionsSchema that cannot parse', { ...fakeMsiModule, optionsSchema: {} }],
    ['no create', { ...fakeMsiModule, create: undefined }],
    ['no createVirtual', { ...fakeMsiModule, createVirtual: 'x' }],
  ])('refuses an MSI module with %s', async (_what, module) => {
    const registry = new PluginRegistry({}, { 'fake-msi': async () => ({ default: module }) });
    expect(await codeOf(registry.loadMsiModule('fake-msi'))).toBe('PLUGIN_MALFORMED');
  });

  it('registers objects under new names, accepts the same object twice, refuses another with its name', () => {
    const registry = fakeRegistry();
    const other = { ...fakePlugin, meta: { ...fakePlugin.meta, name: 'other' } };
    expect(registry.register(other).meta.name).toBe('other');
    expect(registry.register(other)).toBe(other);
    expect(() => registry.register({ ...other }, 'a copy')).toThrow(
      'a copy and registered object both call themselves "other"',
    );
  });

  it('loads every built-in, in name order', async () => {
    const second = { ...fakePlugin, meta: { ...fakePlugin.meta, name: 'a-first' } };
    const registry = new PluginRegistry({
      fake: async () => ({ default: fakePlugin }),
      'a-first': async () => ({ default: second }),
    });
    expect((await registry.loadBuiltins()).map((p) => p.meta.name)).toEqual(['a-first', 'fake']);
  });

  it('tells a module that is missing from one that fails, and a module with nothing to export', async () => {
    const missing = Object.assign(new Error('cannot find x'), { code: 'MODULE_NOT_FOUND' });
    const failing = Object.assign(new Error('syntax'), { code: 'ERR_OTHER' });
    const registry = new PluginRegistry({
      gone: async () => {
        throw missing;
      },
      broken: async () => {
        throw failing;
      },
      empty: async () => null,
    });
    await expect(registry.load('gone')).rejects.toThrow(
      'PLUGIN_NOT_FOUND: plugin "gone": module not found: cannot find x',
    );
    await expect(registry.load('broken')).rejects.toThrow(
      'PLUGIN_LOAD_FAILED: plugin "broken": failed to load: syntax',
    );
    expect(await codeOf(registry.load('empty'))).toBe('PLUGIN_NO_DEFAULT_EXPORT');
    expect(await codeOf(registry.load('no-such-package-anywhere', dir))).toBe('PLUGIN_NOT_FOUND');
    await expect(registry.load('no-such-package-anywhere', dir)).rejects.toThrow(`(looked from ${dir})`);
  });

  it.each([
    ['plugin.js', true],
    ['plugin.mjs', true],
    ['../plugin', true],
    ['plugin.js.map', false],
    ['plugin.jsx', false],
  ])('isModulePath(%s) is %s', (spec, expected) => {
    expect(isModulePath(spec)).toBe(expected);
  });
});

describe('PluginRegistry: vIOMMU front-ends, and modules by path or package', () => {
  const FRONTEND = `
export default {
  name: 'recording',
  description: 'records',
  modes: () => ['nested'],
  create() { throw new Error('not needed here'); },
};
`;
  beforeAll(() => {
    writeFileSync(join(dir, 'frontend.mjs'), FRONTEND);
    writeFileSync(join(dir, 'no-modes.mjs'), FRONTEND.replace("modes: () => ['nested'],", ''));
    writeFileSync(join(dir, 'no-create.mjs'), FRONTEND.replace(/create\(\) \{[^}]*\},/, ''));
    writeFileSync(join(dir, 'no-name.mjs'), FRONTEND.replace("name: 'recording',", ''));
    writeFileSync(
      join(dir, 'msi.mjs'),
      "export default { name: 'file-msi', optionsSchema: { safeParse: (v) => ({ success: true, data: v }) }, create() {}, createVirtual() {} };\n",
    );
    mkdirSync(join(dir, 'node_modules', 'acme-frontend'), { recursive: true });
    writeFileSync(
      join(dir, 'node_modules', 'acme-frontend', 'package.json'),
      JSON.stringify({ name: 'acme-frontend', type: 'module', exports: { '.': { default: './index.js' } } }),
    );
    writeFileSync(
      join(dir, 'node_modules', 'acme-frontend', 'index.js'),
      FRONTEND.replace("'recording'", "'acme'"),
    );
  });

  it('has the built-in "vendor" front-end, and registers others once each, sorted', async () => {
    const registry = new PluginRegistry({}, {}, { zeta: async () => ({ default: { name: 'zeta' } }) });
    expect(registry.viommuFrontendNames()).toEqual(['vendor', 'zeta']);
    expect((await registry.loadViommuFrontend('vendor')).name).toBe('vendor');
    expect(() => registry.registerViommuFrontend('vendor', async () => ({}))).toThrow(
      'PLUGIN_DUPLICATE: plugin "vendor": a vIOMMU front-end with this name is already registered',
    );
  });

  it('loads a front-end by path and by package, once per resolved module', async () => {
    const registry = new PluginRegistry();
    const byPath = await registry.loadViommuFrontend('./frontend.mjs', dir);
    expect(byPath.name).toBe('recording');
    expect(await registry.loadViommuFrontend(join(dir, 'frontend.mjs'))).toBe(byPath);
    expect((await registry.loadViommuFrontend('acme-frontend', dir)).name).toBe('acme');
  });

  it.each([['no-modes.mjs'], ['no-create.mjs'], ['no-name.mjs']])(
    'refuses a front-end module from %s, naming what a front-end needs',
    async (file) => {
      await expect(new PluginRegistry().loadViommuFrontend(`./${file}`, dir)).rejects.toThrow(
        `PLUGIN_MALFORMED: plugin "./${file}": not a vIOMMU front-end (name, description, modes, create)`,
      );
    },
  );

  it('a built-in front-end whose module names itself differently is malformed', async () => {
    const registry = new PluginRegistry(
      {},
      {},
      { other: async () => ({ default: { name: 'x', modes() {}, create() {} } }) },
    );
    await expect(registry.loadViommuFrontend('other')).rejects.toThrow(
      'PLUGIN_MALFORMED: plugin "other": not a vIOMMU front-end named "other" (name, description, modes, create)',
    );
  });

  it('loads an MSI module by path', async () => {
    expect((await new PluginRegistry().loadMsiModule('./msi.mjs', dir)).name).toBe('file-msi');
  });

  it('a missing name lists the built-ins and keeps the resolver’s error as the cause; a missing file is not renamed', async () => {
    const error = await new PluginRegistry()
      .loadViommuFrontend('no-such-thing', dir)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PluginError);
    expect((error as PluginError).code).toBe('PLUGIN_NOT_FOUND');
    expect((error as PluginError).message).toBe(
      `PLUGIN_NOT_FOUND: plugin "no-such-thing": no vIOMMU front-end by this name (have: vendor) and no package (looked from ${dir})`,
    );
    expect((error as PluginError).cause).toBeInstanceOf(PluginError);
    await expect(new PluginRegistry().loadViommuFrontend('./nowhere.mjs', dir)).rejects.toThrow(
      /PLUGIN_NOT_FOUND: plugin "\.\/nowhere\.mjs": module not found/,
    );
  });
});
