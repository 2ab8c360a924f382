/**
 * Builds the configured endpoint devices, connects each to its IOMMU (stream ID from the config, or the
 * plugin's RID mapping) and lets the driver probe it, as a bus scan does at boot.
 */
import type { ValidatedConfig } from '../config/load-config.js';
import { EndpointDevice } from '../device/endpoint.js';
import { inject, injectable } from '../di/container.js';
import { token } from '../di/token.js';
import { ConfigError } from '../errors/config-error.js';
import { IommufdError } from '../errors/iommufd-error.js';
import { IIommuCore, type IommuCore } from '../iommu/iommu-core.js';
import type { MemoryBus } from '../memory/memory-bus.js';
import { ITracer } from '../trace/tracer.js';
import { IIommuInstances, type IommuInstances } from './iommu-instances.js';
import { IMemoryBus, IPlatformMsi, ISystemConfig, type PlatformMsi } from './tokens.js';

export const IDevices = token<Devices>('iommukit.Devices');

@injectable()
export class Devices {
  private readonly byName = new Map<string, EndpointDevice>();

  constructor(
    @inject(ISystemConfig) validated: ValidatedConfig,
    @inject(IMemoryBus) bus: MemoryBus,
    @inject(IIommuInstances) iommus: IommuInstances,
    @inject(IIommuCore) core: IommuCore,
    @inject(ITracer) tracer: ITracer,
    @inject(IPlatformMsi) msi: PlatformMsi,
  ) {
    // Interrupts a remapping unit produces go to the platform's controller, when it takes them (x86).
    const controller = msi.controller;
    const interrupts = controller?.deliverRemapped
      ? { deliverRemapped: controller.deliverRemapped.bind(controller) }
      : undefined;
    validated.config.devices.forEach((cfg, index) => {
      const instance = cfg.iommu === undefined ? undefined : iommus.get(cfg.iommu);
      const options = instance?.options;
      const streamId = cfg.streamId ?? validated.plugin.streamIdForRid?.(cfg.rid, options) ?? cfg.rid;
      const device = new EndpointDevice(
        {
          name: cfg.name,
          rid: cfg.rid,
          streamId,
          pasidBits: cfg.pasidBits,
          canStall: cfg.canStall,
          msiVectors: cfg.msiVectors,
          ...(cfg.ats ? { atcEntries: cfg.ats.atcEntries } : {}),
          ...(cfg.pri ? { priOutstanding: cfg.pri.maxOutstanding } : {}),
        },
        bus,
        instance?.hardware,
        tracer,
        interrupts,
      );
      try {
        instance?.driver.probeDevice(device);
      } catch (error) {
        // A driver refusing a device (stream ID too wide for the hardware, …) is a config mistake.
        if (!(error instanceof IommufdError)) throw error;
        throw new ConfigError([{ path: `devices[${index}]`, message: error.message.replace(/^\w+: /, '') }], {
          cause: error,
        });
      }
      if (instance)
        core.addDevice(device, instance.driver, {
          userPasidTable: instance.plugin.capabilities.pasidTableOwner === 'user',
          crossInstanceDomains: instance.plugin.capabilities.crossInstanceDomains === true,
        });
      this.byName.set(cfg.name, device);
    });
  }

  get(name: string): EndpointDevice | undefined {
    return this.byName.get(name);
  }

  /** The device named `name`; `ENOENT` if there is none. */
  require(name: string): EndpointDevice {
    const device = this.byName.get(name);
    if (!device) throw new IommufdError('ENOENT', `no device named "${name}"`, { device: name });
    return device;
  }

  list(): EndpointDevice[] {
    return [...this.byName.values()];
  }
}
