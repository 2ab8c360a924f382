/**
 * @iommukit/testing: the mock vendor plugin and the plugin conformance kit. The default export is the
 * mock plugin, so the registry can load this package by name.
 */

export { expectDmaFault, expectDmaOk, expectErrno } from './conformance/expect-errno.js';
export { createHarness, type Harness } from './conformance/harness.js';
export type { ConformanceOptions, IpaWriter, NestingHooks } from './conformance/options.js';
export { runConformance } from './conformance/run-conformance.js';
export { mockNestingHooks } from './mock/conformance-hooks.js';
export { MockPagingDomain } from './mock/domain.js';
export { MOCK_SW_MSI_BASE, MOCK_SW_MSI_LENGTH, MockIommuDriver } from './mock/driver.js';
export * as mockFormats from './mock/formats.js';
export { MockIommuHardware } from './mock/hardware.js';
export type { MockHwptInvalidation, MockViommuInvalidation } from './mock/invalidation.js';
export { type MockNestedData, MockNestedDomain } from './mock/nested-domain.js';
export { type MockOptions, MockOptionsSchema } from './mock/options.js';
export { mockPlugin, mockPlugin as default } from './mock/plugin.js';
export * as mockRegs from './mock/regs.js';
export { MOCK_VEVENT_TYPE, MOCK_VIOMMU_TYPE, MockViommu } from './mock/viommu.js';
