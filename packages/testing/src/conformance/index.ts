/**
 * @iommukit/testing/conformance: the plugin conformance kit, for a plugin's vitest files (it imports
 * vitest). `mockNestingHooks` runs the kit's nesting cases on the mock.
 */

export { mockNestingHooks } from '../mock/conformance-hooks.js';
export { expectDmaFault, expectDmaOk, expectErrno } from './expect-errno.js';
export { createHarness, type Harness } from './harness.js';
export type { ConformanceOptions, IpaWriter, NestingHooks } from './options.js';
export { runConformance } from './run-conformance.js';
