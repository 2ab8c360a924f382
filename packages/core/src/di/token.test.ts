/**
 * Tokens are `Symbol.for` symbols, so their names are their identity across the process: a plugin that
 * bundles its own copy of the core still resolves the system's tokens by name. Each name is namespaced,
 * distinct, and follows its export (`IMemoryBus` ↔ `iommukit.MemoryBus`).
 */
import { describe, expect, it } from 'vitest';
import { IIommuCore } from '../iommu/iommu-core.js';
import { IInterruptController } from '../iommu/irq.js';
import { IPasidAllocator } from '../iommu/pasid-allocator.js';
import { IFrameAllocator } from '../memory/frame-allocator.js';
import { IMsiController } from '../msi/msi-controller.js';
import { IPluginRegistry } from '../plugin/plugin-registry.js';
import { IDevices } from '../system/devices.js';
import { IIommuInstances } from '../system/iommu-instances.js';
import { ISystem, ISystemContainer } from '../system/system.js';
import { IIommuPlugin, IMemoryBus, IMsiModule, IPlatformMsi, ISystemConfig } from '../system/tokens.js';
import { IVmmModule } from '../system/vmm-module.js';
import { ITracer } from '../trace/tracer.js';
import { token } from './token.js';

const TOKENS = {
  IIommuCore,
  IInterruptController,
  IPasidAllocator,
  IFrameAllocator,
  IMsiController,
  IPluginRegistry,
  IDevices,
  IIommuInstances,
  ISystem,
  ISystemContainer,
  IMemoryBus,
  IIommuPlugin,
  IMsiModule,
  IPlatformMsi,
  ISystemConfig,
  IVmmModule,
  ITracer,
};

describe('DI tokens', () => {
  it.each(Object.entries(TOKENS))('%s is named after its export in the iommukit namespace', (name, tok) => {
    expect(Symbol.keyFor(tok)).toBe(`iommukit.${name.slice(1)}`);
  });

  it('are the same symbol for the same name, as a second copy of the core would create it', () => {
    expect(token('iommukit.MemoryBus')).toBe(IMemoryBus);
    expect(new Set(Object.values(TOKENS)).size).toBe(Object.keys(TOKENS).length);
  });
});
