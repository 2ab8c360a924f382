/**
 * `createSystem(config)`: the composition root. It validates the config (unless handed an already
 * validated one), makes a child container for the system, registers the pieces and resolves them in
 * dependency order so a failure surfaces as the error its constructor threw.
 */
import { type ValidatedConfig, validateConfig } from '../config/load-config.js';
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
import type { PluginRegistry } from '../plugin/plugin-registry.js';
import { ITracer, Tracer } from '../trace/tracer.js';
import { Devices, IDevices } from './devices.js';
import { IIommuInstances, IommuInstances } from './iommu-instances.js';
import { ISystem, ISystemContainer, System } from './system.js';
import { IMemoryBus, ISystemConfig } from './tokens.js';

export interface CreateSystemOptions {
  /** Where plugin names are looked up. */
  readonly registry: PluginRegistry;
  /** Folder relative plugin paths resolve against (default: the working directory). */
  readonly baseDir?: string;
  /** A tracer to report into (to record or listen from before the system is built). */
  readonly tracer?: Tracer;
  /** Parent container (default: tsyringe's global container). */
  readonly parent?: DependencyContainer;
}

export async function createSystem(config: unknown, options: CreateSystemOptions): Promise<System> {
  const validated = isValidated(config)
    ? config
    : await validateConfig(config, options.registry, options.baseDir);
  const unsupported = unsupportedFeatures(validated);
  if (unsupported.length > 0) throw new ConfigError(unsupported);

  const c = createChildContainer(options.parent);
  const bus = new MemoryBus();
  provideValue(c, ISystemContainer, c);
  provideValue(c, ISystemConfig, validated);
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

  try {
    resolveToken(c, IIommuInstances);
  } catch (error) {
    throw placementError(error, validated) ?? error;
  }
  resolveToken(c, IDevices);
  return resolveToken(c, ISystem);
}

/**
 * Config features that validate but need a package this build does not wire yet. Reported as config
 * errors so `iommukit validate` and `createSystem` agree.
 */
export function unsupportedFeatures(validated: ValidatedConfig): ConfigIssue[] {
  return validated.config.vms.length > 0
    ? [{ path: 'vms', message: 'VMs are built by @iommukit/vmm, which this build does not include yet' }]
    : [];
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

/** An IOMMU register window that collides with another region is a config mistake: name its path. */
function placementError(error: unknown, validated: ValidatedConfig): ConfigError | undefined {
  if (!(error instanceof IommufdError) || error.code !== 'EADDRINUSE') return undefined;
  const index = validated.config.iommus.findIndex((m) => m.name === error.context.name);
  if (index < 0) return undefined;
  return new ConfigError(
    [{ path: `iommus[${index}].base`, message: error.message.replace(/^EADDRINUSE: /, '') }],
    {
      cause: error,
    },
  );
}
