/**
 * `createSystem(config)`: the composition root. It validates the config (unless handed an already
 * validated one), makes a child container for the system, registers the pieces and resolves them in
 * dependency order so a failure surfaces as the error its constructor threw.
 */
import { type ValidatedConfig, validateConfig } from '../config/load-config.js';
import { formatSize } from '../config/units.js';
import {
  createChildContainer,
  type DependencyContainer,
  provideValue,
  resolveToken,
} from '../di/container.js';
import { ConfigError, type ConfigIssue } from '../errors/config-error.js';
import { IommufdError } from '../errors/iommufd-error.js';
import { IIommuCore, IommuCore } from '../iommu/iommu-core.js';
import { IInterruptController, InterruptController } from '../iommu/irq.js';
import { IPasidAllocator, PasidAllocator } from '../iommu/pasid-allocator.js';
import { FrameAllocator, IFrameAllocator } from '../memory/frame-allocator.js';
import { MemoryBus } from '../memory/memory-bus.js';
import { remapperFor } from '../msi/interrupt-remapping.js';
import { type IMsiController, IMsiController as IMsiControllerToken } from '../msi/msi-controller.js';
import { IPluginRegistry, type PluginRegistry } from '../plugin/plugin-registry.js';
import { ITracer, Tracer } from '../trace/tracer.js';
import { Devices, IDevices } from './devices.js';
import { hostRamIssues } from './host-resources.js';
import { IIommuInstances, IommuInstances } from './iommu-instances.js';
import { ISystem, ISystemContainer, System } from './system.js';
import {
  IIommuPlugin,
  IMemoryBus,
  IMsiModule,
  IPlatformMsi,
  ISystemConfig,
  IViommuFrontend,
} from './tokens.js';
import { IVmmModule, type VmmModule } from './vmm-module.js';

export interface CreateSystemOptions {
  /** Where plugin names are looked up. */
  readonly registry: PluginRegistry;
  /** Folder relative plugin paths resolve against (default: the working directory). */
  readonly baseDir?: string;
  /** A tracer to report into (to record or listen from before the system is built). */
  readonly tracer?: Tracer;
  /** Parent container (default: tsyringe's global container). */
  readonly parent?: DependencyContainer;
  /** The VMM that builds the config's VMs (@iommukit/vmm); a config with VMs needs one. */
  readonly vmm?: VmmModule;
}

export async function createSystem(config: unknown, options: CreateSystemOptions): Promise<System> {
  const validated = isValidated(config)
    ? config
    : await validateConfig(config, options.registry, options.baseDir);
  const unsupported = unsupportedFeatures(validated, options);
  if (unsupported.length > 0) throw new ConfigError(unsupported);

  const c = createChildContainer(options.parent);
  const bus = new MemoryBus();
  provideValue(c, ISystemContainer, c);
  provideValue(c, ISystemConfig, validated);
  // The config's three choices, as the composition root resolves them: the registry they came from, the
  // vendor plugin, the MSI module and the vIOMMU front-end.
  provideValue(c, IPluginRegistry, options.registry);
  provideValue(c, IIommuPlugin, validated.plugin);
  if (validated.msi) provideValue(c, IMsiModule, validated.msi.module);
  provideValue(c, IViommuFrontend, validated.viommuFrontend);
  provideValue(c, IMemoryBus, bus);
  provideValue(c, ITracer, options.tracer ?? new Tracer());
  provideValue(c, IInterruptController, new InterruptController());
  provideValue(c, IIommuCore, new IommuCore());
  provideValue(c, IPasidAllocator, new PasidAllocator());

  const ram = validated.config.memory.ram.map((r) => bus.addRam(r.name, r.base, r.size));
  provideValue(c, IFrameAllocator, new FrameAllocator(ram, (base, bytes) => bus.discardRam(base, bytes)));
  c.registerSingleton(IIommuInstances, IommuInstances);
  c.registerSingleton(IDevices, Devices);
  c.registerSingleton(ISystem, System);

  // The MSI controller comes first: IOMMU drivers may take MSIs for their own interrupts.
  const controller = validated.msi ? createMsiController(validated, c, bus) : undefined;
  if (controller) provideValue(c, IMsiControllerToken, controller);
  provideValue(c, IPlatformMsi, { controller });
  try {
    resolveToken(c, IIommuInstances);
    resolveToken(c, IDevices);
  } catch (error) {
    throw (
      placementError(error, validated) ??
      outOfMemoryError(error, validated, 'the IOMMU instances and devices allocate at probe') ??
      error
    );
  }
  const system = resolveToken(c, ISystem);
  const resources = hostRamIssues(validated.config, system.memory);
  if (resources.length > 0) {
    await system.dispose();
    throw new ConfigError(resources);
  }
  if (options.vmm && validated.config.vms.length > 0) {
    provideValue(c, IVmmModule, options.vmm);
    system.adoptVms(resolveToken(c, IVmmModule).createVms(system));
  }
  return system;
}

/**
 * Config features that validate but need a package this build does not wire yet. Reported as config
 * errors so `iommukit validate` and `createSystem` agree.
 */
/** What the config asks for that this build cannot give: VMs without a VMM, vIOMMU modes the plugin lacks. */
export function unsupportedFeatures(
  validated: ValidatedConfig,
  options: Pick<CreateSystemOptions, 'vmm'> = {},
): ConfigIssue[] {
  const { config, plugin, viommuFrontend } = validated;
  const modes = viommuFrontend.modes(plugin);
  if (config.vms.length === 0) return [];
  if (!options.vmm)
    return [{ path: 'vms', message: 'VMs need the VMM (@iommukit/vmm); pass `vmm` to createSystem' }];
  const issues: ConfigIssue[] = [];
  for (const [i, vm] of config.vms.entries()) {
    for (const [j, v] of vm.viommus.entries()) {
      if (modes.includes(v.mode)) continue;
      const who =
        viommuFrontend.name === 'vendor'
          ? `plugin ${plugin.meta.name}`
          : `vIOMMU front-end ${viommuFrontend.name} on plugin ${plugin.meta.name}`;
      issues.push({
        path: `vms[${i}].viommus[${j}].mode`,
        message: `${who} has no ${v.mode} vIOMMU (it has: ${modes.join(', ') || 'none'})`,
      });
    }
  }
  return issues;
}

function isValidated(value: unknown): value is ValidatedConfig {
  return (
    typeof value === 'object' &&
    value !== null &&
    'plugin' in value &&
    'instanceOptions' in value &&
    'config' in value
  );
}

function createMsiController(
  validated: ValidatedConfig,
  c: DependencyContainer,
  bus: MemoryBus,
): IMsiController {
  const msi = validated.msi!;
  try {
    return resolveToken(c, IMsiModule).create({
      options: msi.options,
      bus,
      memory: resolveToken(c, IFrameAllocator),
      tracer: resolveToken(c, ITracer),
      // Asked when vectors are set up: a device's after the IOMMUs and devices exist; an IOMMU's own (its
      // fault and queue interrupts) while it probes, and those are never remapped (VT-d §5.1.7).
      remapperFor: (requester) => {
        if (validated.config.iommus.some((iommu) => iommu.name === requester.name)) return undefined;
        const device = resolveToken(c, IDevices).get(requester.name);
        const core = resolveToken(c, IIommuCore);
        const remapping = device?.behindIommu ? core.driverOf(device).interruptRemapping : undefined;
        return device && remapping ? remapperFor(remapping, device) : undefined;
      },
    });
  } catch (error) {
    const outOfMemory = outOfMemoryError(error, validated, 'the MSI controller allocates');
    if (outOfMemory) throw outOfMemory;
    if (!(error instanceof IommufdError) || error.code !== 'EADDRINUSE') throw error;
    const message = error.message.replace(/^EADDRINUSE: /, '');
    throw new ConfigError([{ path: 'msi.options', message }], { cause: error });
  }
}

/**
 * An IOMMU register window that collides with another region, or runs past the 52-bit physical space,
 * is a config mistake: name its path.
 */
function placementError(error: unknown, validated: ValidatedConfig): ConfigError | undefined {
  if (!(error instanceof IommufdError) || (error.code !== 'EADDRINUSE' && error.code !== 'EINVAL'))
    return undefined;
  const index = validated.config.iommus.findIndex((m) => m.name === error.context.name);
  if (index < 0) return undefined;
  return new ConfigError(
    [{ path: `iommus[${index}].base`, message: error.message.replace(/^(EADDRINUSE|EINVAL): /, '') }],
    {
      cause: error,
    },
  );
}

/**
 * Drivers and the MSI controller allocate their tables and queues while the system is built: RAM too
 * small for them is a config mistake. `what` says who was allocating.
 */
function outOfMemoryError(error: unknown, validated: ValidatedConfig, what: string): ConfigError | undefined {
  if (!(error instanceof IommufdError) || error.code !== 'ENOMEM') return undefined;
  const ram = validated.config.memory.ram.reduce((sum, r) => sum + r.size, 0n);
  return new ConfigError(
    [
      {
        path: 'memory.ram',
        message: `host RAM (${formatSize(ram)}) is too small for what ${what}: ${error.message}`,
      },
    ],
    { cause: error },
  );
}
