/**
 * @iommukit/testing: the mock vendor plugin and test fixtures. The default export is the mock plugin, so
 * the registry can load this package by name.
 */
export { MockPagingDomain } from './mock/domain.js';
export { MockIommuDriver } from './mock/driver.js';
export * as mockFormats from './mock/formats.js';
export { MockIommuHardware } from './mock/hardware.js';
export { type MockOptions, MockOptionsSchema } from './mock/options.js';
export { mockPlugin, mockPlugin as default } from './mock/plugin.js';
export * as mockRegs from './mock/regs.js';
