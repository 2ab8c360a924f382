/** DI tokens for the parts of a system that have no interface file of their own. */
import type { ValidatedConfig } from '../config/load-config.js';
import { token } from '../di/token.js';
import type { MemoryBus } from '../memory/memory-bus.js';
import type { IMsiController } from '../msi/msi-controller.js';

/** The validated configuration the system is built from. */
export const ISystemConfig = token<ValidatedConfig>('iommukit.SystemConfig');
/** The physical memory bus. */
export const IMemoryBus = token<MemoryBus>('iommukit.MemoryBus');

/** The MSI controller the config wires, or none: what IOMMU instances get for their own interrupts. */
export interface PlatformMsi {
  readonly controller: IMsiController | undefined;
}
export const IPlatformMsi = token<PlatformMsi>('iommukit.PlatformMsi');
