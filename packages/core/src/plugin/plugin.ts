/**
 * The vendor plugin contract. A vendor package default-exports one {@link IommuPlugin}: a self-describing
 * object (`meta`, `capabilities`, an option schema) with factories for the three things a vendor brings —
 * the hardware model, the host driver that programs it, and (optionally) the personality a vIOMMU shows a
 * guest. The core never imports a vendor; it reaches plugins only through this contract and the registry.
 */
import type { ZodType } from 'zod';
import type { Hpa } from '../address/address.js';
import type { FaultReporter, IommuDeviceRef, IommuDriver, PageRequestReporter } from '../iommu/driver.js';
import type { IommuHardware } from '../iommu/hardware.js';
import type { IrqLine } from '../iommu/irq.js';
import type { IFrameAllocator } from '../memory/frame-allocator.js';
import type { MemoryBus } from '../memory/memory-bus.js';
import type { IMsiController } from '../msi/msi-controller.js';
import type { ITracer } from '../trace/tracer.js';
import type { ViommuContext, ViommuMode, ViommuPersonality } from '../viommu/personality.js';

export interface PluginMeta {
  /** Registry name, lowercase (`smmuv3`, `vtd`, `amd-vi`, `mock`). */
  readonly name: string;
  /** The plugin's own semver version. */
  readonly version: string;
  /** Architecture it models (`arm-smmuv3`, `intel-vtd`, `amd-vi`, `mock`). */
  readonly vendor: string;
  /** One line shown by `iommukit vendors`. */
  readonly description?: string;
}

/** What a plugin's model can do, shown by `iommukit vendors` and used to skip inapplicable conformance cases. */
export interface PluginCapabilities {
  /** Translation stages the hardware offers. */
  readonly stages: readonly ('s1' | 's2' | 'nested')[];
  /** PASID-tagged DMA (substreams). */
  readonly pasid: boolean;
  /** ATS translation requests and ATC invalidation. */
  readonly ats: boolean;
  /** PRI page requests. */
  readonly pri: boolean;
  /** Hardware dirty-bit tracking in the page tables. */
  readonly dirtyTracking: boolean;
  /** Who owns the PASID table when nesting (docs/design.md §7 flow 4): the user/guest, the kernel, or none. */
  readonly pasidTableOwner: 'user' | 'kernel' | 'none';
  /** vIOMMU modes the plugin's personality supports (empty without one). */
  readonly viommuModes: readonly ViommuMode[];
  /**
   * The hardware remaps interrupts (x86: VT-d, AMD-Vi) and the driver offers `interruptRemapping`.
   * Absent: false.
   */
  readonly interruptRemapping?: boolean;
  /**
   * One paging domain may be attached to devices behind several instances of the plugin (VT-d's DRHD
   * units; SMMUv3 with `shareDomains`): the core lets the attach reach the other instance's driver, which
   * gives the domain a tag of its own there and fans invalidations out. Absent: false, and such an
   * attach is `EINVAL` before any driver sees it.
   */
  readonly crossInstanceDomains?: boolean;
}

/** The platform MSI controller as an IOMMU instance sees it, for the instance's own interrupts. */
export interface InstanceMsi {
  readonly controller: IMsiController;
  /** The DeviceID the instance's own MSI writes carry (IORT: the SMMU's own ID mapping). */
  readonly deviceId: number;
}

/** What every factory receives about the instance it builds. */
export interface InstanceContext<TOptions> {
  /** Instance name from the config (`iommu0`). */
  readonly instance: string;
  /** Base of the instance's MMIO register window. */
  readonly base: Hpa;
  /** Instance options, already validated by the plugin's `optionsSchema`. */
  readonly options: TOptions;
  readonly bus: MemoryBus;
  readonly tracer: ITracer;
  /**
   * Seed of the instance's pseudo-random choices (derived from the config's `seed`), e.g. a cache's random
   * replacement; absent outside a system (0 is then a fine default).
   */
  readonly seed?: number;
  /** Wired interrupt lines by name (`evtq`, `gerror`, `fault`). Hardware raises, the driver connects. */
  irq(name: string): IrqLine;
  /**
   * The system's MSI controller, when it has one: the driver may signal its own interrupts (event queue,
   * errors) as MSIs instead of wired lines, as Linux does when a platform MSI domain exists.
   */
  readonly msi?: InstanceMsi;
}

export type HardwareContext<TOptions> = InstanceContext<TOptions>;

export interface DriverContext<TOptions> extends InstanceContext<TOptions> {
  /** Host page allocator for the driver's queues and tables (Linux: the page allocator / DMA API). */
  readonly memory: IFrameAllocator;
  /** Called by the driver's interrupt handler for every fault event it drains. */
  readonly reportFault: FaultReporter;
  /** Called by the driver for every recoverable page request it drains (PRI queue, stalled transaction). */
  readonly reportPageRequest: PageRequestReporter;
}

/** What a vendor guest action works with: the guest's driver for a vIOMMU, its devices, guest memory. */
export interface GuestOpContext {
  /** The guest's IOMMU driver for the vIOMMU (an instance of the plugin's own driver). */
  readonly driver: IommuDriver;
  /** The guest's view of one of its devices. */
  device(name: string): IommuDeviceRef;
  /** The guest-physical bus. */
  readonly bus: MemoryBus;
  /** A zeroed, page-aligned guest buffer; its GPA. */
  allocBuffer(bytes: number): bigint;
}

/** A vendor-specific thing a guest's IOMMU driver can be asked to do in a scenario; returns a summary. */
export type GuestOp = (context: GuestOpContext, args: Readonly<Record<string, unknown>>) => string;

export interface IommuPlugin<TOptions = unknown> {
  readonly meta: PluginMeta;
  readonly capabilities: PluginCapabilities;
  /** Schema for per-instance options; it supplies defaults, so `{}` must be valid. Absent: no options. */
  readonly optionsSchema?: ZodType<TOptions>;
  /** Builds the hardware model and places its registers on the bus. */
  createHardware(context: HardwareContext<TOptions>): IommuHardware;
  /** Builds the host driver. It may touch the hardware only through `context.bus` and `context.base`. */
  createDriver(context: DriverContext<TOptions>): IommuDriver;
  /** Maps a PCI requester ID to the ID the IOMMU sees. Absent: the RID itself. */
  streamIdForRid?(rid: number, options: TOptions): number;
  /**
   * Builds the guest-facing vIOMMU a VMM places in a VM, in one of `capabilities.viommuModes`. Absent: the
   * plugin has no personality and VMs on it get no vIOMMU.
   */
  createViommu?(context: ViommuContext): ViommuPersonality;
  /** Guest driver actions scenarios can name (`guest-op`), e.g. SMMUv3's `share-ste`. */
  readonly guestOps?: Readonly<Record<string, GuestOp>>;
}

/** Identity helper that gives a plugin literal its types (`export default definePlugin({...})`). */
export function definePlugin<TOptions>(plugin: IommuPlugin<TOptions>): IommuPlugin<TOptions> {
  return plugin;
}
