/**
 * The guest operating system, as far as IOMMUs go: its page allocator over guest RAM, and — for each
 * vIOMMU the VM has — the vendor's own IOMMU driver (the same code as the host driver) bound to that
 * vIOMMU's register window and to guest memory, with an iommu core and the DMA API on top, as a guest
 * kernel has.
 * Its device drivers map buffers with `dma(device).map(gpa, …)` and hand the returned IOVA to the device.
 * Without a vIOMMU the guest's DMA addresses are its GPAs (the host's stage 2 translates them).
 */
import {
  BoundedLog,
  DmaApiDomain,
  type Hpa,
  hpa,
  type InstanceMsi,
  IommuCore,
  type IommuDeviceRef,
  type IommuDriver,
  type IommuFault,
  type IommuPlugin,
  type Iova,
  type IrqLine,
  type ITracer,
  iova,
  type Prot,
  toHex,
} from '@iommukit/core';
import type { GuestMemory } from './guest-memory.js';

/** How a guest device driver gets DMA addresses (Linux `dma_map_single` / `dma_unmap_single`). */
export interface GuestDma {
  map(gpa: bigint, size: bigint, prot: Prot): bigint;
  unmap(iova: bigint): void;
}

/** Without a vIOMMU the device uses guest-physical addresses directly. */
const DIRECT_DMA: GuestDma = {
  map: (gpa) => gpa,
  unmap: () => {},
};

export interface GuestIommu {
  readonly plugin: IommuPlugin;
  /** Guest-physical base of the vIOMMU's register window. */
  readonly base: bigint;
  /** Name of the vIOMMU instance, prefix of its interrupt lines. */
  readonly name: string;
  irq(name: string): IrqLine;
  /** The guest's MSI controller and the vIOMMU's DeviceID, when the VM has one (its driver may use MSIs). */
  readonly msi?: InstanceMsi;
}

/** A fault one of the guest's IOMMU drivers drained from its vIOMMU's event queue. */
export interface GuestFault {
  readonly fault: IommuFault;
  readonly device: string | undefined;
  /** The vIOMMU it came from. */
  readonly iommu: string;
}

export class GuestOs {
  readonly core = new IommuCore();
  /**
   * Faults the guest's IOMMU drivers drained from their event queues, in order; a storm beyond the log's
   * capacity is counted in `faults.lost` (the `guest-faults` step takes them as it reads them).
   */
  readonly faults = new BoundedLog<GuestFault>();
  /** The guest's IOMMU drivers, by vIOMMU name. */
  readonly drivers = new Map<string, IommuDriver>();
  private readonly dmaDomains = new Map<string, DmaApiDomain>();
  private readonly devices = new Map<string, IommuDeviceRef>();

  constructor(
    readonly vm: string,
    readonly memory: GuestMemory,
    private readonly tracer: ITracer,
    /**
     * Ranges the firmware tells the guest to identity-map for devices behind its vIOMMU (IORT RMR nodes;
     * a VMM with the legacy SW MSI cookie declares the host's SW MSI window).
     */
    readonly rmrs: readonly { readonly start: bigint; readonly length: bigint }[] = [],
  ) {}

  /** The driver of the first vIOMMU (most VMs have one). */
  get driver(): IommuDriver | undefined {
    return this.drivers.values().next().value;
  }

  /** Loads the vendor's IOMMU driver for a vIOMMU (it probes at boot). */
  addIommu(iommu: GuestIommu): IommuDriver {
    const driver = iommu.plugin.createDriver({
      instance: `${this.vm}.guest.${iommu.name.slice(this.vm.length + 1)}`,
      base: hpa(iommu.base),
      options: iommu.plugin.optionsSchema?.parse({}) ?? {},
      bus: this.memory.bus,
      tracer: this.tracer,
      irq: (name) => iommu.irq(name),
      ...(iommu.msi ? { msi: iommu.msi } : {}),
      memory: this.memory.allocator,
      reportFault: (fault, device) => this.faults.push({ fault, device: device?.name, iommu: iommu.name }),
      reportPageRequest: (device, request) => this.core.reportPageRequest(device, request),
    });
    this.drivers.set(iommu.name, driver);
    return driver;
  }

  /** Boots: probes the IOMMU drivers (they program their vIOMMUs), then each device behind its IOMMU. */
  boot(devices: readonly { readonly ref: IommuDeviceRef; readonly iommu?: string }[]): void {
    for (const driver of this.drivers.values()) driver.probe();
    for (const { ref, iommu } of devices) {
      this.devices.set(ref.name, ref);
      const driver = iommu === undefined ? undefined : this.drivers.get(iommu);
      if (!driver) continue;
      driver.probeDevice(ref);
      this.core.addDevice(ref, driver);
    }
  }

  /** The guest's view of one of its devices. */
  device(name: string): IommuDeviceRef {
    const device = this.devices.get(name);
    if (!device) throw new Error(`${this.vm}: the guest has no device "${name}"`);
    return device;
  }

  /** The DMA API for a device: a DMA domain of its IOMMU driver, or direct GPAs without one. */
  dma(deviceName: string): GuestDma {
    const d = this.dmaDomain(deviceName);
    if (!d) return DIRECT_DMA;
    return {
      map: (gpa, size, prot) => d.map(hpa(gpa) as Hpa, size, prot),
      unmap: (address) => d.unmap(iova(address) as Iova),
    };
  }

  /**
   * The address the guest programs for a device's MSIs to reach `doorbell` (a GPA): mapped by its vIOMMU
   * driver's SW MSI cookie, or the GPA itself without a vIOMMU.
   */
  msiAddress(deviceName: string, doorbell: bigint): bigint {
    const d = this.dmaDomain(deviceName);
    return d ? d.mapMsiDoorbell(hpa(doorbell) as Hpa) : doorbell;
  }

  /** The device's DMA API domain (made on first use, with the firmware's RMRs mapped), or none without a vIOMMU. */
  private dmaDomain(deviceName: string): DmaApiDomain | undefined {
    const device = this.device(deviceName);
    if (this.core.domainAt(device) === undefined) return undefined;
    let domain = this.dmaDomains.get(deviceName);
    if (!domain) {
      domain = new DmaApiDomain(device, this.core);
      for (const rmr of this.rmrs) domain.mapIdentity(rmr.start, rmr.length);
      this.dmaDomains.set(deviceName, domain);
    }
    return domain;
  }

  /** A zeroed, page-aligned buffer in guest RAM; returns its GPA. */
  allocBuffer(bytes: number): bigint {
    return BigInt(this.memory.allocator.allocBytes(bytes));
  }

  write(gpa: bigint, data: Uint8Array): void {
    const r = this.memory.bus.writeBytes(gpa, data, this.memory.bus.counter(`${this.vm}.guest`));
    if (!r.ok) throw new Error(`${this.vm}: guest write at ${toHex(gpa)} aborted`);
  }

  read(gpa: bigint, length: number): Uint8Array {
    const r = this.memory.bus.readBytes(gpa, length, this.memory.bus.counter(`${this.vm}.guest`));
    if (!r.ok) throw new Error(`${this.vm}: guest read at ${toHex(gpa)} aborted`);
    return r.data;
  }
}
