/**
 * @iommukit/amd-vi: the AMD IOMMU (AMD-Vi) hardware model with IOMMUv2 features. See README.md.
 */

export * from './hw/capabilities.js';
export * from './hw/command-encoders.js';
export * from './hw/commands.js';
export * from './hw/dte.js';
export * from './hw/events.js';
export * from './hw/features.js';
export * from './hw/gcr3.js';
export * from './hw/options.js';
export * from './hw/regs.js';
