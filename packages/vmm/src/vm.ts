/**
 * A virtual machine on a host system: guest RAM backed by host pages, an iommufd context with the VM's
 * stage 2 (an IOAS mapping every GPA to its host page), the host devices assigned to it, optionally a
 * vIOMMU (the vendor plugin's personality in a register window on the guest bus), and the guest OS.
 *
 * Power on builds all of it in that order; power off tears it down in reverse, leaf first — the guest
 * first, then the vIOMMU's iommufd objects (its personality frees what it allocated), the devices
 * (unbound: they return to blocked DMA on the host), the stage 2, the iommufd context and guest RAM. A
 * powered-off VM holds nothing on the host, so powering on again with another configuration (no vIOMMU,
 * docs/design.md §7 flow 2) starts from scratch.
 *
 * Assigned devices get guest RIDs 00:01.0, 00:02.0, … in order; emulated devices 00:10.0 upward. A
 * nested or a shadowing vIOMMU fronts the assigned devices (one of the two), an emulated one the emulated
 * devices. Behind a shadowing vIOMMU each assigned device has an IOAS of its own, which the vIOMMU keeps
 * equal to what the guest's tables map; the VM's GPA IOAS then serves only as the guest RAM it maps from.
 */
import {
  EndpointDevice,
  hpa,
  type IFrameAllocator,
  type IMsiController,
  InterruptController,
  type IommuFd,
  IommufdError,
  type IommuPlugin,
  type ITracer,
  IViommuFrontend,
  inject,
  injectable,
  type MemoryBus,
  type MsiControllerModule,
  toHex,
  token,
  type ViommuFrontendModule,
  type ViommuMode,
  type ViommuPersonality,
  type VirtualMachine,
  vendorViommuFrontend,
} from '@iommukit/core';
import { AssignedDevice } from './assigned-device.js';
import { GUEST_RAM_BASE, GuestMemory } from './guest-memory.js';
import { GuestOs } from './guest-os.js';
import { guestTracer } from './guest-tracer.js';
import { VmMsi, type VmMsiSetup } from './vm-msi.js';

/** Guest-physical bases of the vIOMMU register windows (below guest RAM, as on QEMU's `virt`). */
export const VIOMMU_WINDOWS: Readonly<Record<ViommuMode, number>> = {
  nested: 0x0905_0000,
  emulated: 0x0907_0000,
  shadow: 0x0909_0000,
};

/**
 * The requester IDs (DeviceIDs) the vIOMMUs' own MSIs carry on the guest bus, like an IOMMU's own ID in the
 * firmware tables: outside the guest RIDs of assigned (00:01.0…) and emulated (00:10.0…) devices.
 */
export const VIOMMU_MSI_DEVICE_IDS: Readonly<Record<ViommuMode, number>> = {
  nested: 0xfff0,
  emulated: 0xfff1,
  shadow: 0xfff2,
};

/**
 * Where the VMM puts the host's SW MSI window of a VM with a nested vIOMMU (IOMMU_OPTION_SW_MSI_START): a
 * GPA hole below guest RAM, away from the guest's own SW MSI window at 0x8000000.
 */
export const VM_SW_MSI_WINDOW = { start: 0x0c00_0000n, length: 0x10_0000n } as const;

export interface VmSpec {
  readonly name: string;
  /** Guest RAM in bytes (a multiple of 2 MiB). */
  readonly memory: number;
  /** Host devices assigned to the VM, by name (guest RIDs 00:01.0, 00:02.0, … in this order). */
  readonly devices: readonly string[];
  /** Devices the VMM emulates (guest RIDs from 00:10.0). */
  readonly emulatedDevices?: readonly string[];
  /**
   * The vIOMMUs the guest sees: `nested` in front of the assigned devices (the physical IOMMU translates),
   * `emulated` in front of the emulated devices (a model on guest memory translates). Either, both, none.
   */
  readonly viommus?: readonly ViommuMode[];
  /** vCPUs (default 2): the vITS has a redistributor per vCPU. */
  readonly cpus?: number;
  /** How assigned devices' MSIs reach the host (default: the legacy SW MSI cookie, with an RMR). */
  readonly msi?: VmMsiSetup;
}

/** DI tokens of a VM's own child container (docs/architecture.md). */
export const IVmSpec = token<VmSpec>('iommukit.VmSpec');

/** What a VM needs from its host (a `System` provides all of it). */
export interface VmHost {
  readonly bus: MemoryBus;
  readonly memory: IFrameAllocator;
  readonly tracer: ITracer;
  readonly plugin: IommuPlugin;
  device(name: string): EndpointDevice;
  openIommufd(): IommuFd;
  serviceInterrupts(): number;
  /** The host MSI controller and its module (absent: the host has none, and VMs get no vITS). */
  readonly msi?: { readonly controller: IMsiController; readonly module: MsiControllerModule };
}

export const IVmHost = token<VmHost>('iommukit.VmHost');
export const IVm = token<Vm>('iommukit.Vm');

type VmState = 'off' | 'on';

/** What a powered-on VM holds. */
interface Running {
  readonly memory: GuestMemory;
  readonly fd: IommuFd;
  readonly ioasId: number;
  /** The nest-parent HWPT over the IOAS (nested vIOMMU only). */
  readonly s2HwptId: number | undefined;
  /** Each assigned device's own IOAS behind a shadowing vIOMMU, by name. */
  readonly shadowIoas: ReadonlyMap<string, number>;
  readonly assigned: readonly AssignedDevice[];
  readonly emulated: readonly EndpointDevice[];
  /** The vIOMMUs by mode. */
  readonly viommus: ReadonlyMap<ViommuMode, ViommuPersonality>;
  readonly guest: GuestOs;
  readonly interrupts: InterruptController;
  /** The vITS and the assigned devices' MSIs (when the host has an MSI controller). */
  readonly msi: VmMsi | undefined;
}

@injectable()
export class Vm implements VirtualMachine {
  private running: Running | undefined;

  constructor(
    @inject(IVmHost) readonly host: VmHost,
    @inject(IVmSpec) readonly spec: VmSpec,
    /** What builds the VM's vIOMMUs: the vendor plugin's own personality unless the config chose another. */
    @inject(IViommuFrontend) readonly frontend: ViommuFrontendModule = vendorViommuFrontend,
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

  /** The vIOMMU of a mode (the nested one by default). */
  viommu(mode: ViommuMode = 'nested'): ViommuPersonality | undefined {
    return this.require().viommus.get(mode);
  }

  /** An emulated device (DMA from it goes through the emulated vIOMMU, if the VM has one). */
  emulatedDevice(name: string): EndpointDevice {
    const device = this.require().emulated.find((d) => d.name === name);
    if (!device) throw new Error(`${this.name}: no emulated device "${name}"`);
    return device;
  }

  /** The VM's MSI plumbing: its vITS and its devices' vectors (undefined when the host has no MSI controller). */
  get msi(): VmMsi | undefined {
    return this.require().msi;
  }

  /** The IOAS a shadowing vIOMMU keeps for an assigned device (`ENOENT` without one). */
  shadowIoas(deviceName: string): number {
    const id = this.require().shadowIoas.get(deviceName);
    if (id === undefined)
      throw new IommufdError('ENOENT', `${this.name}: ${deviceName} has no shadow IOAS`, {
        device: deviceName,
      });
    return id;
  }

  get assigned(): readonly AssignedDevice[] {
    return this.require().assigned;
  }

  assignedDevice(name: string): AssignedDevice {
    const device = this.require().assigned.find((d) => d.name === name);
    if (!device) throw new Error(`${this.name}: no assigned device "${name}"`);
    return device;
  }

  /** Builds and boots the VM; `viommus` overrides the spec's (a restart with another setup, docs/design.md §7 flow 2). */
  powerOn(override?: { readonly viommus?: readonly ViommuMode[]; readonly msi?: VmMsiSetup }): void {
    if (this.running) throw new Error(`${this.name} is already on`);
    const { host, spec } = this;
    const modes = override?.viommus ?? spec.viommus ?? [];
    const msiSetup = override?.msi ?? spec.msi ?? { mode: 'sw-msi', rmr: true };
    if (modes.includes('nested') && modes.includes('shadow'))
      throw new Error(`${this.name}: a nested and a shadowing vIOMMU cannot both front the assigned devices`);
    for (const mode of modes) {
      if (this.frontend.modes(host.plugin).includes(mode)) continue;
      const who = this.frontend === vendorViommuFrontend ? '' : `vIOMMU front-end ${this.frontend.name} on `;
      throw new Error(`${this.name}: ${who}plugin ${host.plugin.meta.name} has no ${mode} vIOMMU`);
    }
    const memory = new GuestMemory(this.name, host, spec.memory);
    const fd = host.openIommufd();
    const interrupts = new InterruptController();
    const viommus = new Map<ViommuMode, ViommuPersonality>();
    const parts: Partial<Running> = { memory, fd, viommus };
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
      Object.assign(parts, { ioasId, assigned });
      // With a nested vIOMMU the VM's stage 2 is a nest-parent HWPT the vIOMMU builds on; otherwise the
      // devices attach to the IOAS itself (iommufd picks the domain).
      const nested = modes.includes('nested') && assigned.length > 0;
      const s2HwptId = nested
        ? fd.hwptAlloc({ devId: assigned[0]!.devId, ptId: ioasId, flags: { nestParent: true } })
        : undefined;
      // Behind a shadowing vIOMMU a device starts on an empty IOAS of its own: no DMA until the guest maps.
      const shadowIoas = new Map<string, number>();
      if (modes.includes('shadow'))
        for (const device of assigned) shadowIoas.set(device.name, fd.ioasAlloc());
      Object.assign(parts, { s2HwptId, shadowIoas });
      for (const device of assigned)
        fd.attach(device.devId, shadowIoas.get(device.name) ?? s2HwptId ?? ioasId);

      // Legacy SW MSI behind a nested vIOMMU: the VMM moves the host's SW MSI window out of the guest's
      // way (the guest's own SMMU driver uses the default window for its MSI cookie), and the firmware
      // (an IORT RMR) has the guest identity-map it, so the device's writes pass stage 1 unchanged and
      // stage 2 takes them to the physical doorbell.
      const legacyNested = nested && host.msi !== undefined && msiSetup.mode === 'sw-msi';
      if (legacyNested) fd.setSwMsiWindow(VM_SW_MSI_WINDOW.start, VM_SW_MSI_WINDOW.length);
      const rmrs = legacyNested && msiSetup.rmr ? [VM_SW_MSI_WINDOW] : [];
      const guest = new GuestOs(this.name, memory, guestTracer(host.tracer), rmrs);
      // The VM's MSI controller comes first: the guest's IOMMU drivers and the vIOMMUs may signal by MSI.
      const msi = host.msi
        ? new VmMsi(
            {
              vm: this.name,
              fd,
              ioasId,
              guest,
              setup: msiSetup,
              nested: s2HwptId !== undefined,
              shadow: shadowIoas.size > 0,
              tracer: host.tracer,
            },
            host.msi.controller,
            host.msi.module,
            memory,
            spec.cpus ?? 2,
          )
        : undefined;
      Object.assign(parts, { msi });
      for (const mode of modes) {
        if (mode === 'nested' && s2HwptId === undefined) continue; // nothing to nest
        if (mode === 'shadow' && assigned.length === 0) continue; // nothing to shadow
        const name = `${this.name}.viommu-${mode}`;
        const irq = (line: string) => interrupts.line(`${name}.${line}`);
        const base = VIOMMU_WINDOWS[mode];
        const viommuMsi = msi ? { controller: msi.guest, deviceId: VIOMMU_MSI_DEVICE_IDS[mode] } : undefined;
        const personality = this.frontend.create(
          {
            name,
            mode,
            bus: memory.bus,
            base: hpa(base),
            tracer: host.tracer,
            irq,
            ...(viommuMsi ? { msi: viommuMsi } : {}),
            ...(mode === 'nested'
              ? {
                  nested: {
                    fd,
                    s2HwptId: s2HwptId!,
                    hwInfo: fd.hwInfo(assigned[0]!.devId),
                    anyDevId: assigned[0]!.devId,
                  },
                }
              : {}),
            ...(mode === 'shadow'
              ? { shadow: { fd, guestRam: { gpa: BigInt(GUEST_RAM_BASE), memory: memory.userMemory() } } }
              : {}),
          },
          host.plugin,
        );
        viommus.set(mode, personality);
        guest.addIommu({
          plugin: host.plugin,
          base: BigInt(base),
          name,
          irq,
          ...(viommuMsi ? { msi: viommuMsi } : {}),
        });
      }
      // The vIOMMU in front of the assigned devices, nested or shadowing.
      const frontingMode = viommus.has('shadow') ? 'shadow' : 'nested';
      const frontingViommu = viommus.get(frontingMode);
      for (const device of assigned) {
        const shadowIoasId = shadowIoas.get(device.name);
        frontingViommu?.addDevice?.({
          name: device.name,
          devId: device.devId,
          virtualId: device.virtualRid,
          pageRequests: device.host.pci.hasAts && device.host.pci.hasPri,
          ...(shadowIoasId === undefined ? {} : { shadowIoasId }),
        });
      }
      const emulatedViommu = viommus.get('emulated');
      const emulated = (spec.emulatedDevices ?? []).map(
        (name, i) =>
          new EndpointDevice(
            { name, rid: (0x10 + i) << 3, streamId: (0x10 + i) << 3 },
            memory.bus,
            emulatedViommu?.hardware,
            host.tracer,
          ),
      );
      this.running = { ...(parts as Running), emulated, guest, interrupts, msi };
      this.log(
        'vm.power-on',
        `${this.name} on: ${memory.size / 2 ** 20} MiB at GPA ${toHex(GUEST_RAM_BASE)}, ${assigned.length} assigned and ${emulated.length} emulated device(s)${modes.length ? `, vIOMMU ${modes.join(' + ')}` : ''}`,
      );
      guest.boot([
        ...assigned.map((d) => ({
          ref: d.guestView,
          ...(frontingViommu ? { iommu: `${this.name}.viommu-${frontingMode}` } : {}),
        })),
        ...emulated.map((d) => ({
          ref: d,
          ...(emulatedViommu ? { iommu: `${this.name}.viommu-emulated` } : {}),
        })),
      ]);
    } catch (error) {
      this.running = undefined;
      this.teardown(parts);
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
    for (const personality of running.viommus.values()) n += personality.service?.() ?? 0;
    n += running.interrupts.service();
    n += running.msi?.guest.service() ?? 0;
    return n;
  }

  private teardown(parts: Partial<Running>): void {
    parts.msi?.teardown();
    for (const personality of parts.viommus?.values() ?? []) personality.destroy();
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
