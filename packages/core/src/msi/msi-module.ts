/**
 * How an MSI controller package plugs in: a module names itself, validates its own options (the config's
 * `msi.options`), builds the host controller with its host driver, and builds the same controller as a
 * VMM's virtual one for a VM (a vITS) with the guest's driver on it. The core never imports a controller
 * package; `createSystem` receives the modules it may wire (`msiModules`).
 */
import type { ZodType } from 'zod';
import type { Hpa } from '../address/address.js';
import type { IFrameAllocator } from '../memory/frame-allocator.js';
import type { MemoryBus } from '../memory/memory-bus.js';
import type { ITracer } from '../trace/tracer.js';
import type { DeviceInterruptRemapper } from './interrupt-remapping.js';
import type { IMsiController, MsiDoorbell, MsiOutcome, MsiRequester } from './msi-controller.js';

export interface MsiControllerContext<TOptions> {
  /** Options validated by the module's `optionsSchema`. */
  readonly options: TOptions;
  /** The physical bus the controller's frames go on. */
  readonly bus: MemoryBus;
  /** Pages for the host driver's tables and queues. */
  readonly memory: IFrameAllocator;
  readonly tracer: ITracer;
  /**
   * The interrupt remapping of the IOMMU in front of a device, when that IOMMU's driver has it on (x86):
   * the controller's MSI domain then allocates remapping entries instead of composing messages itself.
   * Asked at vector set-up time, after the IOMMUs are probed.
   */
  readonly remapperFor?: (device: MsiRequester) => DeviceInterruptRemapper | undefined;
}

export interface VirtualMsiContext {
  /** Instance name (`vm0.vits`). */
  readonly name: string;
  /** The guest-physical bus; the controller's tables live in guest memory. */
  readonly bus: MemoryBus;
  /** Guest-physical base of the controller's frames. */
  readonly base: Hpa;
  /** The guest's page allocator, for the guest driver's tables and queues. */
  readonly memory: IFrameAllocator;
  /** Number of vCPUs. */
  readonly cpus: number;
  readonly tracer: ITracer;
}

/** A VMM's virtual MSI controller: the model on guest memory, programmed by the guest's own driver. */
export interface VirtualMsiController {
  /** The guest-physical doorbell guests aim their devices' MSIs at. */
  readonly doorbell: MsiDoorbell;
  /** The guest kernel's MSI domain: the controller's driver running in the guest on the virtual model. */
  readonly guest: IMsiController;
  /**
   * The VMM signals an MSI as if `deviceId` had written `data` to `address` (KVM_SIGNAL_MSI with a
   * DeviceID): the virtual controller translates it through the guest's tables to a vCPU. `address`
   * defaults to the doorbell; controllers whose destination is in the address (x86) need it.
   */
  inject(deviceId: number, data: number, address?: bigint): MsiOutcome;
  dispose(): void;
}

export interface MsiControllerModule<TOptions = unknown> {
  /** The name configs select it by (`msi.controller`). */
  readonly name: string;
  /** One line shown by `iommukit vendors`. */
  readonly description: string;
  /** Schema of `msi.options`; it supplies defaults, so `{}` must be valid. */
  readonly optionsSchema: ZodType<TOptions>;
  /** Builds the host controller and runs its host driver's probe. */
  create(context: MsiControllerContext<TOptions>): IMsiController;
  /** Builds the virtual controller of a VM. */
  createVirtual(context: VirtualMsiContext): VirtualMsiController;
}

/** Identity helper that gives a module literal its types. */
export function defineMsiModule<TOptions>(
  module: MsiControllerModule<TOptions>,
): MsiControllerModule<TOptions> {
  return module;
}
