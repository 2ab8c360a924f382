import { describe, expect, it, vi } from 'vitest';
import { fakePlugin } from '../../test/fake-plugin.js';
import { errnoOf } from '../errors/iommufd-error.js';
import type { IommuPlugin } from '../plugin/plugin.js';
import { defineViommuFrontend, vendorViommuFrontend } from './frontend-module.js';
import type { ViommuContext, ViommuPersonality } from './personality.js';

const context = { name: 'vm0.viommu-nested', mode: 'nested' } as ViommuContext;
const personality = { mode: 'nested' } as ViommuPersonality;

function plugin(modes: IommuPlugin['capabilities']['viommuModes'], withPersonality = true): IommuPlugin {
  return {
    ...fakePlugin,
    capabilities: { ...fakePlugin.capabilities, viommuModes: modes },
    ...(withPersonality ? { createViommu: vi.fn(() => personality) } : { createViommu: undefined }),
  } as IommuPlugin;
}

describe('the vendor vIOMMU front-end', () => {
  it('offers the modes the plugin’s personality has, none without one', () => {
    expect(vendorViommuFrontend.name).toBe('vendor');
    expect(vendorViommuFrontend.description).toBe("the vendor plugin's own vIOMMU personality");
    expect(vendorViommuFrontend.modes(plugin(['nested', 'shadow']))).toEqual(['nested', 'shadow']);
    expect(vendorViommuFrontend.modes(plugin(['nested'], false))).toEqual([]);
  });

  it('builds the plugin’s personality with the context it is given', () => {
    const p = plugin(['nested']);
    expect(vendorViommuFrontend.create(context, p)).toBe(personality);
    expect(p.createViommu).toHaveBeenCalledWith(context);
  });

  it('a mode the plugin lacks, or no personality at all, is EOPNOTSUPP naming the plugin', () => {
    expect(() => vendorViommuFrontend.create(context, plugin(['emulated']))).toThrow(
      `EOPNOTSUPP: plugin ${fakePlugin.meta.name} has no nested vIOMMU`,
    );
    expect(errnoOf(() => vendorViommuFrontend.create(context, plugin(['nested'], false)))).toBe('EOPNOTSUPP');
  });

  it('defineViommuFrontend returns the module as it is', () => {
    expect(defineViommuFrontend(vendorViommuFrontend)).toBe(vendorViommuFrontend);
  });
});
