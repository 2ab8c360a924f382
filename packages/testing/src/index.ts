/**
 * @iommukit/testing: the mock vendor plugin. The default export is the mock plugin, so the registry can
 * load this package by name. Nothing reachable from here imports a test framework: the conformance kit,
 * which runs on vitest, is the separate `@iommukit/testing/conformance` entry.
 */

export { MockPagingDomain } from './mock/domain.js';
export { MOCK_SW_MSI_BASE, MOCK_SW_MSI_LENGTH, MockIommuDriver } from './mock/driver.js';
export * as mockFormats from './mock/formats.js';
export { MockIommuHardware } from './mock/hardware.js';
export type { MockHwptInvalidation, MockViommuInvalidation } from './mock/invalidation.js';
export * as mockIrte from './mock/irte.js';
export { type MockNestedData, MockNestedDomain } from './mock/nested-domain.js';
export { type MockOptions, MockOptionsSchema } from './mock/options.js';
export { mockPlugin, mockPlugin as default } from './mock/plugin.js';
export * as mockRegs from './mock/regs.js';
export { MockShadowViommu } from './mock/shadow-viommu.js';
export { MOCK_VEVENT_TYPE, MOCK_VIOMMU_TYPE, MockViommu } from './mock/viommu.js';
export { type MsiWrite, RecordingMsiController } from './rig/recording-msi-controller.js';
