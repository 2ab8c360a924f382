/** DI tokens for the parts of a system that have no interface file of their own. */
import type { ValidatedConfig } from '../config/load-config.js';
import { token } from '../di/token.js';
import type { MemoryBus } from '../memory/memory-bus.js';

/** The validated configuration the system is built from. */
export const ISystemConfig = token<ValidatedConfig>('iommukit.SystemConfig');
/** The physical memory bus. */
export const IMemoryBus = token<MemoryBus>('iommukit.MemoryBus');
