import { describe, expect, it } from 'vitest';
import { ConfigError, formatConfigIssues } from './config-error.js';
import { errnoOf, IommufdError, isIommufdError } from './iommufd-error.js';
import { PluginError } from './plugin-error.js';

describe('ConfigError', () => {
  it('counts its problems, says where the config came from, and lists each with its path', () => {
    const one = new ConfigError([{ path: 'iommus[0].options.tlbWays', message: 'must be a power of two' }]);
    expect(one.message).toBe(
      'invalid configuration (1 problem):\n  iommus[0].options.tlbWays: must be a power of two',
    );
    expect([one.name, one.code]).toEqual(['ConfigError', 'ECONFIG']);
    const cause = new Error('parse');
    const two = new ConfigError(
      [
        { path: '', message: 'not an object' },
        { path: 'vms', message: 'required' },
      ],
      { source: 'demo.yaml', cause },
    );
    expect(two.message).toBe(
      'invalid configuration in demo.yaml (2 problems):\n  (root): not an object\n  vms: required',
    );
    expect(two.issues).toHaveLength(2);
    expect(two.cause).toBe(cause);
    expect(formatConfigIssues([])).toBe('');
  });
});

describe('PluginError', () => {
  it('carries its code and plugin, both in the message', () => {
    const error = new PluginError('PLUGIN_NOT_FOUND', './my-plugin.js', 'no such file');
    expect(error.message).toBe('PLUGIN_NOT_FOUND: plugin "./my-plugin.js": no such file');
    expect([error.name, error.code, error.plugin]).toEqual([
      'PluginError',
      'PLUGIN_NOT_FOUND',
      './my-plugin.js',
    ]);
  });
});

describe('IommufdError helpers', () => {
  it('isIommufdError matches the class, and the code when one is given', () => {
    const error = new IommufdError('ENOENT', 'no such object');
    expect(isIommufdError(error)).toBe(true);
    expect(isIommufdError(error, 'ENOENT')).toBe(true);
    expect(isIommufdError(error, 'EINVAL')).toBe(false);
    expect(isIommufdError(new Error('ENOENT: no such object'))).toBe(false);
    expect(error.context).toEqual({});
  });

  it('errnoOf gives the code thrown, undefined when nothing is, and lets other errors through', () => {
    expect(
      errnoOf(() => {
        throw new IommufdError('EBUSY', 'in use');
      }),
    ).toBe('EBUSY');
    expect(errnoOf(() => 1)).toBeUndefined();
    expect(() =>
      errnoOf(() => {
        throw new TypeError('bug');
      }),
    ).toThrow(TypeError);
  });
});
