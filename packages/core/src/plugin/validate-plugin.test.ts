import { describe, expect, it } from 'vitest';
import { PluginError } from '../errors/plugin-error.js';
import { validatePlugin } from './validate-plugin.js';

/** A plugin object that matches the contract; each case below breaks one part of it. */
function valid(): Record<string, unknown> {
  return {
    meta: { name: 'riscv-iommu', version: '1.2.3', vendor: 'riscv' },
    capabilities: {
      stages: ['s1', 's2', 'nested'],
      pasid: true,
      ats: false,
      pri: false,
      dirtyTracking: true,
      pasidTableOwner: 'user',
      viommuModes: ['emulated', 'nested'],
    },
    createHardware: () => undefined,
    createDriver: () => undefined,
    createViommu: () => undefined,
  };
}

/** The problems `validatePlugin` lists for `candidate`, one per line; [] when it accepts it. */
function problems(candidate: unknown): string[] {
  try {
    validatePlugin(candidate, 'test.mjs');
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(PluginError);
    expect((error as PluginError).code).toBe('PLUGIN_MALFORMED');
    const [first, ...rest] = (error as Error).message.split('\n');
    expect(first).toMatch(/^PLUGIN_MALFORMED: plugin "test\.mjs": /);
    return rest.length > 0
      ? rest.map((line) => line.trim())
      : [first!.replace(/^.*?: plugin "test\.mjs": /, '')];
  }
}

/** Deletes a key instead of setting it. */
const DELETE = Symbol('delete');

/** The valid plugin with the value at each dotted path set (or deleted). */
function withChange(...changes: [path: string, value: unknown][]): Record<string, unknown> {
  const p = valid();
  for (const [path, value] of changes) {
    const keys = path.split('.');
    const last = keys.pop()!;
    let at = p;
    for (const key of keys) at = at[key] as Record<string, unknown>;
    if (value === DELETE) delete at[last];
    else at[last] = value;
  }
  return p;
}

describe('validatePlugin', () => {
  it('accepts a plugin that keeps the contract, returning it as it is', () => {
    const p = valid();
    expect(validatePlugin(p, 'x')).toBe(p);
    expect(problems(withChange(['optionsSchema', { safeParse: () => 0 }], ['guestOps', {}]))).toEqual([]);
    expect(problems(withChange(['capabilities.viommuModes', []], ['createViommu', DELETE]))).toEqual([]);
    expect(problems(withChange(['capabilities.interruptRemapping', true]))).toEqual([]);
    expect(problems(withChange(['capabilities.interruptRemapping', false]))).toEqual([]);
    expect(problems(withChange(['capabilities.crossInstanceDomains', true]))).toEqual([]);
  });

  it('refuses a default export that is no object', () => {
    expect(problems(null)).toEqual(['default export is null, expected a plugin object']);
    expect(problems('x')).toEqual(['default export is string, expected a plugin object']);
    expect(problems(undefined)).toEqual(['default export is undefined, expected a plugin object']);
  });

  const NAME = 'meta.name: expected a lowercase name like "smmuv3", got';
  const VERSION = 'meta.version: expected a semver version like "1.0.0", got';
  const STAGES = 'capabilities.stages: expected an array of "s1" | "s2" | "nested", got';
  const MODES = 'capabilities.viommuModes: expected an array of "emulated" | "nested" | "shadow", got';
  const SCHEMA = 'optionsSchema: expected a zod schema (an object with safeParse)';
  const cases: [what: string, path: string, value: unknown, problem: string][] = [
    ['no meta', 'meta', DELETE, 'meta: missing (expected { name, version, vendor })'],
    ['meta null', 'meta', null, 'meta: missing (expected { name, version, vendor })'],
    ['a capitalised name', 'meta.name', 'Riscv', `${NAME} "Riscv"`],
    ['a name starting with a digit', 'meta.name', '1iommu', `${NAME} "1iommu"`],
    ['a name with a dot', 'meta.name', 'a.b', `${NAME} "a.b"`],
    ['a name with a trailing space', 'meta.name', 'ab ', `${NAME} "ab "`],
    ['a numeric name', 'meta.name', 5, `${NAME} 5`],
    ['a two-part version', 'meta.version', '1.0', `${VERSION} "1.0"`],
    ['a version with a prefix', 'meta.version', 'v1.0.0', `${VERSION} "v1.0.0"`],
    ['a version with a suffix', 'meta.version', '1.0.0x', `${VERSION} "1.0.0x"`],
    ['no version', 'meta.version', DELETE, `${VERSION} nothing`],
    ['an empty vendor', 'meta.vendor', '', 'meta.vendor: expected a string, got ""'],
    ['no capabilities', 'capabilities', DELETE, 'capabilities: missing'],
    ['an unknown stage', 'capabilities.stages', ['s1', 's3'], `${STAGES} ["s1","s3"]`],
    ['stages that are no array', 'capabilities.stages', 's1', `${STAGES} "s1"`],
    [
      'a flag that is no boolean',
      'capabilities.ats',
      'yes',
      'capabilities.ats: expected a boolean, got "yes"',
    ],
    [
      'no dirtyTracking flag',
      'capabilities.dirtyTracking',
      DELETE,
      'capabilities.dirtyTracking: expected a boolean, got nothing',
    ],
    [
      'an unknown PASID table owner',
      'capabilities.pasidTableOwner',
      'guest',
      'capabilities.pasidTableOwner: expected "user" | "kernel" | "none", got "guest"',
    ],
    [
      'an interrupt-remapping flag that is no boolean',
      'capabilities.interruptRemapping',
      1,
      'capabilities.interruptRemapping: expected a boolean, got 1',
    ],
    [
      'a cross-instance flag that is no boolean',
      'capabilities.crossInstanceDomains',
      'yes',
      'capabilities.crossInstanceDomains: expected a boolean, got "yes"',
    ],
    ['an unknown vIOMMU mode', 'capabilities.viommuModes', ['accel'], `${MODES} ["accel"]`],
    ['vIOMMU modes that are no array', 'capabilities.viommuModes', 'nested', `${MODES} "nested"`],
    ['no createHardware', 'createHardware', DELETE, 'createHardware: expected a function, got undefined'],
    [
      'a createDriver that is an object',
      'createDriver',
      {},
      'createDriver: expected a function, got an object',
    ],
    [
      'a streamIdForRid that is an array',
      'streamIdForRid',
      [],
      'streamIdForRid: expected a function, got an array',
    ],
    ['a createViommu that is null', 'createViommu', null, 'createViommu: expected a function, got null'],
    [
      'modes but no createViommu',
      'createViommu',
      DELETE,
      'createViommu: capabilities.viommuModes lists modes, so the plugin must provide createViommu',
    ],
    ['guestOps that are no object', 'guestOps', 3, 'guestOps: expected an object of functions, got number'],
    ['guestOps null', 'guestOps', null, 'guestOps: expected an object of functions, got null'],
    [
      'a guest op that is no function',
      'guestOps',
      { ok: () => 0, bad: 'x' },
      'guestOps.bad: expected a function, got string',
    ],
    ['an optionsSchema without safeParse', 'optionsSchema', {}, SCHEMA],
    ['an optionsSchema that is null', 'optionsSchema', null, SCHEMA],
  ];
  it.each(cases)('names %s', (_what, path, value, problem) => {
    expect(problems(withChange([path, value]))).toEqual([problem]);
  });

  it('lists every problem at once, in contract order', () => {
    expect(
      problems(withChange(['meta.vendor', 7], ['capabilities.pri', 1], ['createDriver', DELETE])),
    ).toEqual([
      'meta.vendor: expected a string, got 7',
      'capabilities.pri: expected a boolean, got 1',
      'createDriver: expected a function, got undefined',
    ]);
  });
});
