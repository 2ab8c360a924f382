/** Shared helpers for tests of the mock plugin and the core against it. */
import { createSystem, PluginRegistry, type System, type SystemConfigInput } from '@iommukit/core';
import { afterEach } from 'vitest';
import { mockPlugin } from '../src/index.js';

/** A registry whose only built-in is the mock plugin. */
export function mockRegistry(): PluginRegistry {
  return new PluginRegistry({ mock: async () => ({ default: mockPlugin }) });
}

/** One mock IOMMU, 256 MiB of RAM and two devices behind it plus one with no IOMMU. */
export function mockConfig(overrides: Partial<SystemConfigInput> = {}): SystemConfigInput {
  return {
    name: 'test',
    plugin: 'mock',
    memory: { ram: [{ name: 'dram', base: '0x8000_0000', size: '256MiB' }] },
    iommus: [{ name: 'iommu0', base: '0x0900_0000', options: { iotlbEntries: 8 } }],
    devices: [
      { name: 'nic0', rid: '00:02.0', iommu: 'iommu0' },
      { name: 'nvme0', rid: '00:03.0', iommu: 'iommu0' },
      { name: 'legacy0', rid: '00:04.0' },
    ],
    ...overrides,
  };
}

export async function mockSystem(overrides: Partial<SystemConfigInput> = {}) {
  return createSystem(mockConfig(overrides), { registry: mockRegistry() });
}

/**
 * For a test file: returns a maker of mock systems and disposes every system it made after each test.
 * Call it at the top level of the file.
 */
export function mockSystemsPerTest(): (overrides?: Partial<SystemConfigInput>) => Promise<System> {
  const made: System[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((system) => system.dispose()));
  });
  return async (overrides = {}) => {
    const system = await mockSystem(overrides);
    made.push(system);
    return system;
  };
}
