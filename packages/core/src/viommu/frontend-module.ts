/**
 * A VMM's vIOMMU front-end, as a module the config selects (`viommu.frontend`): what the VMM places in a
 * VM for each vIOMMU — the window that traps the guest's programming and forwards it through the VM's
 * iommufd context (nested) or translates the VM's emulated devices (emulated). The built-in `vendor`
 * front-end is the vendor plugin's own personality; a third-party module may wrap it (to record or filter
 * what the guest does) or replace it, without touching the plugin.
 */
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuPlugin } from '../plugin/plugin.js';
import type { ViommuContext, ViommuMode, ViommuPersonality } from './personality.js';

export interface ViommuFrontendModule {
  /** The name configs select it by (`viommu.frontend`). */
  readonly name: string;
  /** One line shown by `iommukit vendors`. */
  readonly description: string;
  /** The modes it can build on a system whose vendor plugin is `plugin`. */
  modes(plugin: IommuPlugin): readonly ViommuMode[];
  /** Builds the vIOMMU of a VM; the guest runs `plugin`'s driver against it. */
  create(context: ViommuContext, plugin: IommuPlugin): ViommuPersonality;
}

/** Identity helper that gives a front-end module literal its types. */
export function defineViommuFrontend(module: ViommuFrontendModule): ViommuFrontendModule {
  return module;
}

/** The default front-end: the vendor plugin's own personality (`createViommu`). */
export const vendorViommuFrontend = defineViommuFrontend({
  name: 'vendor',
  description: "the vendor plugin's own vIOMMU personality",
  modes: (plugin) => (plugin.createViommu ? plugin.capabilities.viommuModes : []),
  create(context, plugin) {
    if (!plugin.createViommu || !plugin.capabilities.viommuModes.includes(context.mode))
      throw new IommufdError('EOPNOTSUPP', `plugin ${plugin.meta.name} has no ${context.mode} vIOMMU`);
    return plugin.createViommu(context);
  },
});
