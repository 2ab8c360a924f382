/** DI tokens for the parts of a system that have no interface file of their own. */
import type { ValidatedConfig } from '../config/load-config.js';
import { token } from '../di/token.js';
import type { MemoryBus } from '../memory/memory-bus.js';
import type { IMsiController } from '../msi/msi-controller.js';
import type { MsiControllerModule } from '../msi/msi-module.js';
import type { IommuPlugin } from '../plugin/plugin.js';
import type { ViommuFrontendModule } from '../viommu/frontend-module.js';

/** The validated configuration the system is built from. */
export const ISystemConfig = token<ValidatedConfig>('iommukit.SystemConfig');
/** The physical memory bus. */
export const IMemoryBus = token<MemoryBus>('iommukit.MemoryBus');
/** The vendor plugin the config selected (by built-in name, package name or path): what builds each IOMMU instance. */
export const IIommuPlugin = token<IommuPlugin>('iommukit.IommuPlugin');
/** The MSI module the config selected, if any: what builds the MSI controller (and VMs' virtual ones). */
export const IMsiModule = token<MsiControllerModule<unknown>>('iommukit.MsiModule');
/** The vIOMMU front-end the config selected (`vendor` by default): what a VM's vIOMMUs are built with. */
export const IViommuFrontend = token<ViommuFrontendModule>('iommukit.ViommuFrontend');

/** The MSI controller the config wires, or none: what IOMMU instances get for their own interrupts. */
export interface PlatformMsi {
  readonly controller: IMsiController | undefined;
}
export const IPlatformMsi = token<PlatformMsi>('iommukit.PlatformMsi');
