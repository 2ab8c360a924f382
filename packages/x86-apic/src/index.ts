/**
 * @iommukit/x86-apic: the x86 local APIC model, the kernel's APIC driver and MSI domain, and the MSI
 * module (registry name `x86-apic`, the default export). See README.md.
 */
import { x86ApicModule } from './x86-apic-module.js';

export * from './apic-msi-controller.js';
export * from './driver/apic-driver.js';
export * from './driver/irq-numbers.js';
export * from './driver/msi-domain.js';
export * from './driver/vector-matrix.js';
export * from './hw/apic-platform.js';
export * from './hw/cpu.js';
export * from './hw/destination.js';
export * from './hw/local-apic.js';
export * from './hw/msi-format.js';
export * from './hw/registers.js';
export * from './hw/vector-set.js';
export * from './options.js';
export * from './x86-apic-module.js';

export default x86ApicModule;
