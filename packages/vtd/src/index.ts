/**
 * @iommukit/vtd: the Intel VT-d hardware model, its host driver and host-side nesting, and the plugin
 * (registry name `vtd`). See README.md.
 */

export * from './driver/context-tables.js';
export * from './driver/domain-ids.js';
export * from './driver/driver-host.js';
export * from './driver/fault-irq.js';
export * from './driver/ir-domain.js';
export * from './driver/nested-domain.js';
export * from './driver/paging-domain.js';
export * from './driver/pasid-table.js';
export * from './driver/probe.js';
export * from './driver/qi.js';
export * from './driver/vtd-driver.js';
export * from './hw/caches.js';
export * from './hw/capabilities.js';
export * from './hw/config-fetch.js';
export * from './hw/event-interrupt.js';
export * from './hw/fault-reasons.js';
export * from './hw/fault-recording.js';
export * from './hw/features.js';
export * from './hw/global-command.js';
export * from './hw/interrupt-remapping.js';
export * from './hw/inv-descriptors.js';
export * from './hw/invalidation.js';
export * from './hw/invalidation-queue.js';
export * from './hw/irte.js';
export * from './hw/options.js';
export * from './hw/page-request-queue.js';
export * from './hw/page-requests.js';
export * from './hw/pasid-entry.js';
export * from './hw/register-invalidation.js';
export * from './hw/regs.js';
export * from './hw/root-context.js';
export * from './hw/stage-walks.js';
export * from './hw/translate.js';
export * from './hw/vtd.js';
export * from './plugin.js';
export { vtdPlugin as default } from './plugin.js';
export * from './viommu/emulated-vvtd.js';
export * from './viommu/guest-options.js';
export * from './viommu/nested-vvtd.js';
export * from './viommu/personality.js';
export * from './viommu/shadow-vvtd.js';
