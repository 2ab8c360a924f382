/**
 * The plugins and MSI controllers `iommukit` knows by name. Each loads only when a config (or `vendors`)
 * asks for it.
 */
import { PluginRegistry } from '@iommukit/core';

export function builtinRegistry(): PluginRegistry {
  return new PluginRegistry(
    {
      mock: () => import('@iommukit/testing'),
      smmuv3: () => import('@iommukit/smmuv3'),
      vtd: () => import('@iommukit/vtd'),
      'amd-vi': () => import('@iommukit/amd-vi'),
    },
    {
      'gic-its': () => import('@iommukit/gic-its'),
      'x86-apic': () => import('@iommukit/x86-apic'),
    },
  );
}
