/**
 * @iommukit/amd-vi: the AMD IOMMU (AMD-Vi) hardware model with IOMMUv2 features. See README.md.
 */

export * from './driver/amd-driver.js';
export * from './driver/command-queue.js';
export * from './driver/device-table.js';
export * from './driver/domain-flush.js';
export * from './driver/domain-ids.js';
export * from './driver/driver-host.js';
export * from './driver/event-irq.js';
export * from './driver/gcr3-table.js';
export * from './driver/paging-domain.js';
export * from './driver/ppr-irq.js';
export * from './driver/probe.js';
export * from './hw/amd-iommu.js';
export * from './hw/caches.js';
export * from './hw/capabilities.js';
export * from './hw/command-buffer.js';
export * from './hw/command-encoders.js';
export * from './hw/commands.js';
export * from './hw/device-table.js';
export * from './hw/dte.js';
export * from './hw/event-log.js';
export * from './hw/events.js';
export * from './hw/features.js';
export * from './hw/gcr3.js';
export * from './hw/gcr3-walk.js';
export * from './hw/interrupt-remapping.js';
export * from './hw/irte.js';
export * from './hw/log-ring.js';
export * from './hw/options.js';
export * from './hw/ppr-log.js';
export * from './hw/regs.js';
export * from './hw/stage-walks.js';
export * from './hw/translate.js';
export * from './hw/unit-interrupts.js';
export * from './plugin.js';
export { amdViPlugin as default } from './plugin.js';
