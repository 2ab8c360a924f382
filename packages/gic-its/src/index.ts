/**
 * @iommukit/gic-its: the Arm GICv3 ITS and redistributor model, the kernel's ITS driver, and the MSI
 * module (registry name `gic-its`, the default export). See README.md.
 */
import { gicItsModule } from './gic-its-module.js';

export * from './driver/gic-driver.js';
export * from './driver/its-command-queue.js';
export * from './driver/its-driver.js';
export * from './driver/lpi-allocator.js';
export * from './gic-its-module.js';
export * from './gic-msi-controller.js';
export * from './hw/commands.js';
export * from './hw/cpu-interface.js';
export * from './hw/gic.js';
export * from './hw/its.js';
export * from './hw/its-tables.js';
export * from './hw/redistributor.js';
export * from './hw/registers.js';
export * from './options.js';

export default gicItsModule;
