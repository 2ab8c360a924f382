/**
 * The mock vendor plugin: the role of the Linux iommufd selftest mock domain. It is small enough to read
 * in one sitting and honest enough to test the core against: DMA is translated by walking tables in
 * memory, caches must be invalidated, and faults are logged by the hardware and drained by the driver.
 */
import { definePlugin } from '@iommukit/core';
import { MockIommuDriver } from './driver.js';
import { MockIommuHardware } from './hardware.js';
import { type MockOptions, MockOptionsSchema } from './options.js';

export const mockPlugin = definePlugin<MockOptions>({
  meta: {
    name: 'mock',
    version: '0.1.0',
    vendor: 'mock',
    description: 'Minimal IOMMU for testing the core: device table, 3-level page table, IOTLB, fault log',
  },
  capabilities: {
    stages: ['s1'],
    pasid: false,
    ats: false,
    pri: false,
    dirtyTracking: true,
    pasidTableOwner: 'none',
    viommuModes: [],
  },
  optionsSchema: MockOptionsSchema,
  createHardware: (context) => new MockIommuHardware(context),
  createDriver: (context) => new MockIommuDriver(context),
});

export default mockPlugin;
