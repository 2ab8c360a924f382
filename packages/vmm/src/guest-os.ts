/**
 * The guest operating system, as far as IOMMUs go: its page allocator over guest RAM, and — when the VM
 * has a vIOMMU — the vendor's own IOMMU driver (the same code as the host driver) bound to the vIOMMU's
 * register window and to guest memory, with an iommu core and the DMA API on top, as a guest kernel has.
 * Its device drivers map buffers with `dma(device).map(gpa, …)` and hand the returned IOVA to the device.
 * Without a vIOMMU the guest's DMA addresses are its GPAs (the host's stage 2 translates them).
 */
import {
  DmaApiDomain,
  type Hpa,
  hpa,
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
}

export class GuestOs {
  readonly core = new IommuCore();
  /** Faults the guest's IOMMU driver drained from its event queue, in order. */
  readonly faults: { fault: IommuFault; device: string | undefined }[] = [];
  readonly driver: IommuDriver | undefined;
  private readonly dmaDomains = new Map<string, DmaApiDomain>();
  private readonly devices = new Map<string, IommuDeviceRef>();

  constructor(
    readonly vm: string,
    readonly memory: GuestMemory,
    tracer: ITracer,
    iommu: GuestIommu | undefined,
  ) {
    if (!iommu) return;
    this.driver = iommu.plugin.createDriver({
      instance: `${vm}.guest`,
      base: hpa(iommu.base),
      options: iommu.plugin.optionsSchema?.parse({}) ?? {},
      bus: memory.bus,
      tracer,
      irq: (name) => iommu.irq(name),
      memory: memory.allocator,
      reportFault: (fault, device) => this.faults.push({ fault, device: device?.name }),
      reportPageRequest: (device, request) => this.core.reportPageRequest(device, request),
    });
  }

  /** Boots: probes the IOMMU driver (it programs the vIOMMU) and the devices behind it. */
  boot(devices: readonly IommuDeviceRef[]): void {
    this.driver?.probe();
    for (const device of devices) {
      this.devices.set(device.name, device);
      if (!this.driver) continue;
      this.driver.probeDevice(device);
      this.core.addDevice(device, this.driver);
    }
  }

  /** The DMA API for a device: a DMA domain of the guest's IOMMU driver, or direct GPAs without one. */
  dma(deviceName: string): GuestDma {
    const device = this.devices.get(deviceName);
    if (!device) throw new Error(`${this.vm}: the guest has no device "${deviceName}"`);
    if (!this.driver) return DIRECT_DMA;
    let domain = this.dmaDomains.get(deviceName);
    if (!domain) {
      domain = new DmaApiDomain(device, this.core);
      this.dmaDomains.set(deviceName, domain);
    }
    const d = domain;
    return {
      map: (gpa, size, prot) => d.map(hpa(gpa) as Hpa, size, prot),
      unmap: (address) => d.unmap(iova(address) as Iova),
    };
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
