/**
 * A built system: memory, IOMMU instances with their drivers, devices, and (as later packages arrive) the
 * MSI module and VMs. Everything it owns lives in its own child DI container.
 */

import { hpa } from '../address/address.js';
import type { ValidatedConfig } from '../config/load-config.js';
import type { EndpointDevice } from '../device/endpoint.js';
import { type DependencyContainer, inject, injectable, resolveToken } from '../di/container.js';
import { token } from '../di/token.js';
import { IommufdError } from '../errors/iommufd-error.js';
import { DmaApiDomain } from '../iommu/dma-api.js';
import type { IommuDeviceRef } from '../iommu/driver.js';
import { IIommuCore, type IommuCore } from '../iommu/iommu-core.js';
import { IInterruptController, type InterruptController } from '../iommu/irq.js';
import { IPasidAllocator, type PasidAllocator } from '../iommu/pasid-allocator.js';
import { IommuFd } from '../iommufd/iommufd.js';
import { IFrameAllocator } from '../memory/frame-allocator.js';
import type { MemoryBus } from '../memory/memory-bus.js';
import { IMsiController, type MsiVector } from '../msi/msi-controller.js';
import { ITracer, type Tracer } from '../trace/tracer.js';
import { type Devices, IDevices } from './devices.js';
import type { IommuInstance } from './iommu-instance.js';
import { IIommuInstances, type IommuInstances } from './iommu-instances.js';
import { IMemoryBus, ISystemConfig } from './tokens.js';
import type { VirtualMachine } from './vmm-module.js';

export const ISystem = token<System>('iommukit.System');
/** The system's own child container, registered so `System.dispose()` can release it. */
export const ISystemContainer = token<DependencyContainer>('iommukit.SystemContainer');

@injectable()
export class System {
  private disposed = false;
  private readonly boundToIommufd = new Set<IommuDeviceRef>();
  private vmList: readonly VirtualMachine[] = [];

  constructor(
    @inject(ISystemConfig) readonly validated: ValidatedConfig,
    @inject(IMemoryBus) readonly bus: MemoryBus,
    @inject(IFrameAllocator) readonly memory: IFrameAllocator,
    @inject(IInterruptController) readonly interrupts: InterruptController,
    @inject(IIommuCore) readonly iommuCore: IommuCore,
    @inject(IPasidAllocator) readonly pasids: PasidAllocator,
    @inject(ITracer) readonly tracer: Tracer,
    @inject(IIommuInstances) private readonly instances: IommuInstances,
    @inject(IDevices) private readonly deviceSet: Devices,
    @inject(ISystemContainer) readonly container: DependencyContainer,
  ) {}

  get name(): string {
    return this.validated.config.name;
  }

  get iommus(): IommuInstance[] {
    return this.instances.list();
  }

  get devices(): EndpointDevice[] {
    return this.deviceSet.list();
  }

  /** The config's VMs (built by the VMM, powered off until a scenario or the caller powers them on). */
  get vms(): readonly VirtualMachine[] {
    return this.vmList;
  }

  vm(name: string): VirtualMachine {
    const vm = this.vmList.find((v) => v.name === name);
    if (!vm) throw new IommufdError('ENOENT', `no VM named "${name}"`, { vm: name });
    return vm;
  }

  /** Takes the VMs the VMM built (createSystem calls this once). */
  adoptVms(vms: readonly VirtualMachine[]): void {
    this.vmList = vms;
  }

  /** The MSI controller the config wires (`msi.controller`), if any. */
  get msi(): IMsiController | undefined {
    return this.container.isRegistered(IMsiController)
      ? resolveToken(this.container, IMsiController)
      : undefined;
  }

  /** The MSI controller, for operations that need one. */
  requireMsi(): IMsiController {
    const msi = this.msi;
    if (!msi) throw new IommufdError('ENODEV', 'the system has no MSI controller (msi.controller is "none")');
    return msi;
  }

  iommu(name: string): IommuInstance {
    const instance = this.instances.get(name);
    if (!instance) throw new IommufdError('ENOENT', `no IOMMU instance named "${name}"`, { iommu: name });
    return instance;
  }

  device(name: string): EndpointDevice {
    return this.deviceSet.require(name);
  }

  /**
   * Gives a device to the kernel DMA API: a private paging domain with an IOVA allocator and the SW MSI
   * cookie (what a host driver of the device uses). Release it before binding the device to iommufd.
   */
  kernelDma(deviceName: string): DmaApiDomain {
    return new DmaApiDomain(this.device(deviceName), this.iommuCore);
  }

  /**
   * Sets up MSIs for a device the host kernel drives (Linux `pci_alloc_irq_vectors`): the MSI controller
   * maps `count` events to interrupts, the iommu core maps the doorbell into the device's domain (SW MSI
   * cookie), and the device's MSI-X entries 0 … count − 1 get the resulting address and data.
   */
  setupKernelMsi(deviceName: string, count: number): readonly MsiVector[] {
    const msi = this.requireMsi();
    const device = this.device(deviceName);
    const vectors = msi.allocateVectors({ name: device.name, deviceId: device.streamId }, count);
    try {
      for (const [i, v] of vectors.entries()) {
        const address = this.iommuCore.prepareMsi(device, hpa(v.message.address));
        device.msix.program(i, { address, data: v.message.data });
      }
    } catch (error) {
      msi.freeVectors({ name: device.name, deviceId: device.streamId });
      device.msix.reset();
      throw error;
    }
    return vectors;
  }

  /** Opens an iommufd context ("open /dev/iommu"); a device may be bound to one context at a time. */
  openIommufd(): IommuFd {
    const msiDoorbellOf = this.msi
      ? (device: IommuDeviceRef) =>
          this.requireMsi().doorbellFor({ name: device.name, deviceId: device.streamId })
      : undefined;
    return new IommuFd(this.iommuCore, this.tracer, this.boundToIommufd, msiDoorbellOf, this.pasids);
  }

  /** Runs pending interrupt handlers (drivers draining event queues); call between operations. */
  serviceInterrupts(): number {
    return this.interrupts.service() + (this.msi?.service() ?? 0);
  }

  /** Shuts drivers down, disconnects devices and releases memory. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const vm of this.vmList) if (vm.state === 'on') vm.powerOff();
    for (const instance of this.instances.list()) {
      for (const device of this.deviceSet.list()) {
        if (device.behindIommu === instance.name) {
          instance.driver.releaseDevice(device);
          this.iommuCore.removeDevice(device);
          instance.hardware.disconnectEndpoint(device.streamId);
        }
      }
      instance.driver.shutdown();
    }
    this.msi?.dispose();
    for (const region of [...this.bus.listRegions()]) this.bus.removeRegion(region.name);
    await this.container.dispose();
  }
}
