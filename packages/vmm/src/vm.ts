/**
 * A virtual machine on a host system: guest RAM backed by host pages, an iommufd context with the VM's
 * stage 2 (an IOAS mapping every GPA to its host page), the host devices assigned to it, optionally a
 * vIOMMU (the vendor plugin's personality in a register window on the guest bus), and the guest OS.
 *
 * Power on builds all of it in that order; power off tears it down in reverse, leaf first — the guest
 * first, then the vIOMMU's iommufd objects (its personality frees what it allocated), the devices
 * (unbound: they return to blocked DMA on the host), the stage 2, the iommufd context and guest RAM. A
 * powered-off VM holds nothing on the host, so powering on again with another configuration (no vIOMMU,
 * seed 003) starts from scratch.
 *
 * Guest devices get virtual RIDs 00:01.0, 00:02.0, … in the order they are assigned.
 */
import {
  type EndpointDevice,
  hpa,
  type IFrameAllocator,
  InterruptController,
  type IommuFd,
  type IommuPlugin,
  type ITracer,
  type MemoryBus,
  type ViommuMode,
  type ViommuPersonality,
} from '@iommukit/core';
import { AssignedDevice } from './assigned-device.js';
import { GUEST_RAM_BASE, GuestMemory } from './guest-memory.js';
import { GuestOs } from './guest-os.js';
import { guestTracer } from './guest-tracer.js';

/** Guest-physical base of the vIOMMU register window (below guest RAM, as on QEMU's `virt`). */
export const VIOMMU_WINDOW_BASE = 0x0905_0000;

export interface VmSpec {
  readonly name: string;
  /** Guest RAM in bytes (a multiple of 2 MiB). */
  readonly memory: number;
  /** Host devices assigned to the VM, by name. */
  readonly devices: readonly string[];
  readonly viommu?: { readonly mode: ViommuMode };
}

/** What a VM needs from its host (a `System` provides all of it). */
export interface VmHost {
  readonly bus: MemoryBus;
  readonly memory: IFrameAllocator;
  readonly tracer: ITracer;
  readonly plugin: IommuPlugin;
  device(name: string): EndpointDevice;
  openIommufd(): IommuFd;
  serviceInterrupts(): number;
}

type VmState = 'off' | 'on';

/** What a powered-on VM holds. */
interface Running {
  readonly memory: GuestMemory;
  readonly fd: IommuFd;
  readonly ioasId: number;
  /** The nest-parent HWPT over the IOAS (nested vIOMMU only). */
  readonly s2HwptId: number | undefined;
  readonly assigned: readonly AssignedDevice[];
  readonly viommu: ViommuPersonality | undefined;
  readonly guest: GuestOs;
  readonly interrupts: InterruptController;
}

export class Vm {
  private running: Running | undefined;

  constructor(
    readonly host: VmHost,
    readonly spec: VmSpec,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  get state(): VmState {
    return this.running ? 'on' : 'off';
  }

  /** The guest OS of a running VM. */
  get guest(): GuestOs {
    return this.require().guest;
  }

  get memory(): GuestMemory {
    return this.require().memory;
  }

  get fd(): IommuFd {
    return this.require().fd;
  }

  get viommu(): ViommuPersonality | undefined {
    return this.require().viommu;
  }

  get assigned(): readonly AssignedDevice[] {
    return this.require().assigned;
  }

  assignedDevice(name: string): AssignedDevice {
    const device = this.require().assigned.find((d) => d.name === name);
    if (!device) throw new Error(`${this.name}: no assigned device "${name}"`);
    return device;
  }

  powerOn(): void {
    if (this.running) throw new Error(`${this.name} is already on`);
    const { host, spec } = this;
    const mode = spec.viommu?.mode;
    if (mode && !host.plugin.createViommu) {
      throw new Error(`${this.name}: plugin ${host.plugin.meta.name} has no vIOMMU personality`);
    }
    if (mode && !host.plugin.capabilities.viommuModes.includes(mode)) {
      throw new Error(`${this.name}: plugin ${host.plugin.meta.name} has no ${mode} vIOMMU`);
    }
    const memory = new GuestMemory(this.name, host, spec.memory);
    const fd = host.openIommufd();
    const interrupts = new InterruptController();
    const trace = guestTracer(host.tracer);
    const built: Partial<Running> & { memory: GuestMemory; fd: IommuFd } = { memory, fd };
    try {
      const ioasId = fd.ioasAlloc();
      fd.ioasMap({
        ioasId,
        memory: memory.userMemory(),
        iova: BigInt(GUEST_RAM_BASE),
        length: BigInt(memory.size),
        readable: true,
        writeable: true,
      });
      const assigned = spec.devices.map((name, i) => new AssignedDevice(host.device(name), fd, (i + 1) << 3));
      Object.assign(built, { ioasId, assigned });
      // Nested: the VM's stage 2 is a nest-parent HWPT the vIOMMU builds on; otherwise the IOAS itself.
      const s2HwptId =
        mode === 'nested' && assigned.length > 0
          ? fd.hwptAlloc({ devId: assigned[0]!.devId, ptId: ioasId, flags: { nestParent: true } })
          : undefined;
      Object.assign(built, { s2HwptId });
      for (const device of assigned) fd.attach(device.devId, s2HwptId ?? ioasId);
      const viommuName = `${this.name}.viommu`;
      const irq = (name: string) => interrupts.line(`${viommuName}.${name}`);
      const viommu =
        mode && host.plugin.createViommu
          ? host.plugin.createViommu({
              name: viommuName,
              mode,
              bus: memory.bus,
              base: hpa(VIOMMU_WINDOW_BASE),
              tracer: host.tracer,
              irq,
              ...(s2HwptId !== undefined
                ? {
                    nested: {
                      fd,
                      s2HwptId,
                      hwInfo: fd.hwInfo(assigned[0]!.devId),
                      anyDevId: assigned[0]!.devId,
                    },
                  }
                : {}),
            })
          : undefined;
      Object.assign(built, { viommu });
      for (const device of assigned)
        viommu?.addDevice?.({ name: device.name, devId: device.devId, virtualId: device.virtualRid });
      const guest = new GuestOs(
        this.name,
        memory,
        trace,
        viommu ? { plugin: host.plugin, base: BigInt(VIOMMU_WINDOW_BASE), name: viommuName, irq } : undefined,
      );
      this.running = { ...(built as Running), guest, interrupts };
      this.log(
        'vm.power-on',
        `${this.name} on: ${memory.size / 2 ** 20} MiB at GPA ${GUEST_RAM_BASE.toString(16)}, ${assigned.length} assigned device(s)${mode ? `, ${mode} vIOMMU` : ''}`,
      );
      guest.boot(assigned.map((d) => d.guestView));
    } catch (error) {
      this.teardown(built);
      this.running = undefined;
      throw error;
    }
  }

  powerOff(): void {
    const running = this.require();
    this.running = undefined;
    this.teardown(running);
    this.log('vm.power-off', `${this.name} off: everything it held on the host released`);
  }

  reset(): void {
    this.powerOff();
    this.powerOn();
  }

  /** Host interrupts, then what the vIOMMU has for the guest, then the guest's interrupts. */
  serviceInterrupts(): number {
    const running = this.require();
    let n = this.host.serviceInterrupts();
    n += running.viommu?.service?.() ?? 0;
    n += running.interrupts.service();
    return n;
  }

  private teardown(parts: Partial<Running>): void {
    parts.viommu?.destroy();
    for (const device of parts.assigned ?? []) device.unbind();
    parts.fd?.close();
    parts.memory?.release();
  }

  private require(): Running {
    if (!this.running) throw new Error(`${this.name} is off`);
    return this.running;
  }

  private log(name: string, message: string): void {
    if (this.host.tracer.enabled) this.host.tracer.trace('frontend', this.name, name, message);
  }
}
