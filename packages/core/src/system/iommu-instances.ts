/** Builds every configured IOMMU instance of the selected plugin, in config order. */
import { hpa } from '../address/address.js';
import type { ValidatedConfig } from '../config/load-config.js';
import { inject, injectable } from '../di/container.js';
import { token } from '../di/token.js';
import { IIommuCore, type IommuCore } from '../iommu/iommu-core.js';
import { IInterruptController, type InterruptController } from '../iommu/irq.js';
import { IFrameAllocator } from '../memory/frame-allocator.js';
import type { MemoryBus } from '../memory/memory-bus.js';
import type { IommuPlugin } from '../plugin/plugin.js';
import { ITracer } from '../trace/tracer.js';
import { IommuInstance } from './iommu-instance.js';
import { IIommuPlugin, IMemoryBus, IPlatformMsi, ISystemConfig, type PlatformMsi } from './tokens.js';

export const IIommuInstances = token<IommuInstances>('iommukit.IommuInstances');

@injectable()
export class IommuInstances {
  private readonly byName = new Map<string, IommuInstance>();

  constructor(
    @inject(ISystemConfig) validated: ValidatedConfig,
    @inject(IMemoryBus) bus: MemoryBus,
    @inject(IFrameAllocator) memory: IFrameAllocator,
    @inject(IInterruptController) interrupts: InterruptController,
    @inject(IIommuCore) core: IommuCore,
    @inject(ITracer) tracer: ITracer,
    @inject(IPlatformMsi) platformMsi: PlatformMsi,
    @inject(IIommuPlugin) plugin: IommuPlugin,
  ) {
    validated.config.iommus.forEach((cfg, i) => {
      const controller = platformMsi.controller;
      // Without an IORT-style mapping in the config, an instance's own MSIs use the top of the 16-bit
      // DeviceID space, counting down, clear of the RIDs its devices' StreamIDs take.
      const msi = controller ? { controller, deviceId: cfg.msiDeviceId ?? 0xffff - i } : undefined;
      const instance = new IommuInstance(
        cfg.name,
        hpa(cfg.base),
        plugin,
        validated.instanceOptions[i],
        bus,
        memory,
        interrupts,
        core,
        tracer,
        // Each instance's pseudo-random choices (a cache's random replacement) follow the system seed.
        (validated.config.seed + i) >>> 0,
        msi,
      );
      this.byName.set(cfg.name, instance);
    });
  }

  get(name: string): IommuInstance | undefined {
    return this.byName.get(name);
  }

  list(): IommuInstance[] {
    return [...this.byName.values()];
  }
}
