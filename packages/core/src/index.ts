/**
 * @iommukit/core: the vendor-neutral runtime of iommukit — addresses, the memory bus, tracing, errors,
 * the plugin contract and registry, DI, configuration, endpoint devices and the system builder.
 */
// DI must come first: it loads the reflect-metadata polyfill tsyringe needs before anything imports it.

/** zod, re-exported so plugins build option schemas with the same instance the core validates with. */
export { z } from 'zod';
export * from './address/address.js';
export * from './address/field-values.js';
export * from './address/words.js';
export * from './cache/lru-cache.js';
export { schemaReferenceTable } from './config/config-reference.js';
export * from './config/fields.js';
export * from './config/format-issues.js';
export * from './config/load-config.js';
export * from './config/scenario-schema.js';
export * from './config/schema.js';
export * from './config/units.js';
export * from './config/vm-msi-schema.js';
export * from './device/atc.js';
export * from './device/endpoint.js';
export * from './device/msix-table.js';
export * from './device/page-request-interface.js';
export * from './device/rid.js';
export * from './di/container.js';
export * from './di/token.js';
export type * from './disposable.js';
export * from './errors/config-error.js';
export * from './errors/errno.js';
export * from './errors/iommufd-error.js';
export * from './errors/plugin-error.js';
export * from './hw/mmio-window.js';
export * from './hw/register-file.js';
export * from './iommu/dma-api.js';
export * from './iommu/driver.js';
export * from './iommu/hardware.js';
export * from './iommu/iommu-core.js';
export * from './iommu/iova-allocator.js';
export * from './iommu/irq.js';
export * from './iommu/pasid-allocator.js';
export * from './iommu/poll-limit.js';
export * from './iommu/static-domain.js';
export * from './iommu/sw-msi-cookie.js';
export * from './iommu/translation.js';
export * from './iommufd/device.js';
export * from './iommufd/fault-queue.js';
export * from './iommufd/hw-pagetable.js';
export * from './iommufd/io-pagetable.js';
export * from './iommufd/ioas.js';
export * from './iommufd/iommufd.js';
export * from './iommufd/object-table.js';
export * from './iommufd/user-memory.js';
export * from './iommufd/viommu.js';
export * from './log/bounded-log.js';
export * from './memory/access-counter.js';
export * from './memory/frame-allocator.js';
export * from './memory/memory-bus.js';
export * from './memory/sparse-ram.js';
export * from './msi/msi-controller.js';
export * from './msi/msi-module.js';
export * from './plugin/plugin.js';
export * from './plugin/plugin-registry.js';
export * from './plugin/validate-plugin.js';
export * from './scenario/msi-steps.js';
export * from './scenario/run-scenario.js';
export * from './scenario/step-reporting.js';
export * from './system/create-system.js';
export * from './system/devices.js';
export { vmPowerOnIssues } from './system/host-resources.js';
export * from './system/iommu-instance.js';
export * from './system/iommu-instances.js';
export * from './system/system.js';
export * from './system/tokens.js';
export * from './system/vmm-module.js';
export * from './trace/chrome-trace.js';
export * from './trace/trace-record.js';
export * from './trace/tracer.js';
export * from './viommu/personality.js';
