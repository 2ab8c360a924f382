/**
 * The mock vendor plugin: the role of the Linux iommufd selftest mock domain. It is small enough to read
 * in one sitting and honest enough to test the core against: DMA is translated by walking tables in
 * memory, caches must be invalidated, and faults are logged by the hardware and drained by the driver.
 */
import { definePlugin, IommufdError } from '@iommukit/core';
import { MockIommuDriver } from './driver.js';
import { MockIommuHardware } from './hardware.js';
import { type MockOptions, MockOptionsSchema } from './options.js';
import { MockShadowViommu } from './shadow-viommu.js';

export const mockPlugin = definePlugin<MockOptions>({
  meta: {
    name: 'mock',
    version: '0.1.0',
    vendor: 'mock',
    description:
      'Small, fully specified IOMMU for testing the core: PASID tables, nesting, vIOMMU, IOTLB, fault log, PRI, interrupt remapping, a shadowing vIOMMU',
  },
  capabilities: {
    stages: ['s1', 's2', 'nested'],
    pasid: true,
    ats: true,
    pri: true,
    dirtyTracking: true,
    pasidTableOwner: 'kernel',
    viommuModes: ['shadow'],
    interruptRemapping: true,
  },
  optionsSchema: MockOptionsSchema,
  createHardware: (context) => new MockIommuHardware(context),
  createDriver: (context) => new MockIommuDriver(context),
  createViommu(context) {
    if (context.mode !== 'shadow')
      throw new IommufdError('EOPNOTSUPP', `the mock has no ${context.mode} vIOMMU, only a shadowing one`);
    return new MockShadowViommu(context);
  },
});

export default mockPlugin;
