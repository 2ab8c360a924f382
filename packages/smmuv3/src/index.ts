/**
 * @iommukit/smmuv3: the ARM SMMUv3 hardware model, its host driver, host-side nesting (vSMMU, nested
 * domains from guest vSTEs) and the plugin (registry name `smmuv3`). See README.md.
 */
export * from './coverage.js';
export * from './driver/cd-table.js';
export * from './driver/cmdq.js';
export * from './driver/domain.js';
export * from './driver/entry-writer.js';
export * from './driver/ids.js';
export * from './driver/nested-domain.js';
export * from './driver/smmuv3-driver.js';
export * from './driver/stream-table.js';
export * from './driver/vsmmu.js';
export * from './hw/cd.js';
export * from './hw/command-queue.js';
export * from './hw/commands.js';
export * from './hw/events.js';
export * from './hw/features.js';
export * from './hw/idr.js';
export * from './hw/interrupts.js';
export * from './hw/options.js';
export * from './hw/output-queue.js';
export * from './hw/priq.js';
export * from './hw/programming-interface.js';
export * from './hw/queue-index.js';
export * from './hw/queues.js';
export * from './hw/register-protocols.js';
export * from './hw/regs.js';
export * from './hw/smmuv3.js';
export * from './hw/stalls.js';
export * from './hw/ste.js';
export * from './hw/ste-fetch.js';
export * from './hw/tlb.js';

// Used bits of STEs and CDs, and the entries the driver builds.

export * from './driver/entry-used.js';
export * from './driver/ste-builders.js';
export { smmuv3Plugin as default, smmuv3Plugin } from './plugin.js';
export * from './viommu/emulated-vsmmu.js';
export * from './viommu/guest-ops.js';
export * from './viommu/guest-options.js';
export * from './viommu/nested-vsmmu.js';
export * from './viommu/personality.js';
