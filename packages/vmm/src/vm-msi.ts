/**
 * A VM's MSIs (docs/msi.md): a virtual ITS on the guest bus — the host MSI module's own model, programmed
 * by the guest's copy of the driver — and, for each assigned device whose vectors the guest sets up, what
 * VFIO and KVM do on the host:
 *
 * 1. The guest maps the device's events on its vITS (DeviceID = the device's virtual RID) and programs
 *    an MSI address: the vITS doorbell GPA as its DMA API sees it (through its vIOMMU's SW MSI cookie, or
 *    the GPA itself without a vIOMMU or when firmware declares the window direct-mapped).
 * 2. The host MSI controller maps physical vectors for the device (DeviceID = its StreamID), and the VMM
 *    programs the physical MSI-X table with the host's data and an address chosen by the VM's MSI mode:
 *    - `sw-msi` (legacy cookie): iommufd maps the physical doorbell at the SW MSI window of the device's
 *      stage 2 and the device writes that IOVA. With a nested vIOMMU the write goes through the guest's
 *      stage 1 first, so it only works if the guest identity-maps the window (IORT RMR).
 *    - `passthrough`: `ioasMapMsi` maps the physical doorbell page at the vITS doorbell page's GPA and the
 *      device writes the guest's own address: guest IOVA → stage 1 → vITS GPA → stage 2 → physical ITS.
 *      Two devices of one domain behind different physical ITSes collide (`EEXIST`); the VMM then gives
 *      the second device its own HWPT on the IOAS and maps again.
 * 3. The physical interrupt's handler (VFIO's eventfd, KVM's irqfd) injects the guest's (DeviceID, data)
 *    into the vITS, which delivers the LPI the guest mapped to the vCPU the guest chose.
 */
import {
  hpa,
  type IMsiController,
  type IommuFd,
  IommufdError,
  type ITracer,
  isIommufdError,
  type MsiControllerModule,
  type MsiDoorbell,
  type MsiOutcome,
  type MsiRequester,
  type MsiVector,
  toHex,
  type VirtualMsiController,
} from '@iommukit/core';
import type { AssignedDevice } from './assigned-device.js';
import type { GuestMemory } from './guest-memory.js';
import type { GuestOs } from './guest-os.js';

/** Guest-physical base of the virtual ITS (QEMU `virt` places its ITS here); redistributors follow it. */
export const VITS_BASE = 0x0808_0000;

export type VmMsiMode = 'sw-msi' | 'passthrough';

export interface VmMsiSetup {
  readonly mode: VmMsiMode;
  /** With `sw-msi` and a nested vIOMMU: firmware tells the guest to identity-map the SW MSI window. */
  readonly rmr: boolean;
}

/** What the VM's MSI plumbing needs from the VM. */
export interface VmMsiContext {
  readonly vm: string;
  readonly fd: IommuFd;
  readonly ioasId: number;
  readonly guest: GuestOs;
  readonly setup: VmMsiSetup;
  /** The nest-parent HWPT when a nested vIOMMU fronts the devices (their own HWPTs are then not an option). */
  readonly nested: boolean;
  /** A shadowing vIOMMU fronts the devices: each is on an IOAS of its own, not the VM's. */
  readonly shadow: boolean;
  readonly tracer: ITracer;
}

interface DeviceMsi {
  readonly device: AssignedDevice;
  /** The device as the host controller knows it. */
  readonly hostRequester: MsiRequester;
  readonly guest: readonly MsiVector[];
  readonly host: readonly MsiVector[];
  readonly releases: readonly (() => void)[];
}

export class VmMsi {
  readonly vits: VirtualMsiController;
  private readonly devices = new Map<string, DeviceMsi>();
  /** The last injection into the vITS (what a `guest-msi` step checks). */
  private injected: MsiOutcome | undefined;

  constructor(
    private readonly context: VmMsiContext,
    private readonly host: IMsiController,
    module: MsiControllerModule,
    memory: GuestMemory,
    cpus: number,
  ) {
    this.vits = module.createVirtual({
      name: `${context.vm}.vits`,
      bus: memory.bus,
      base: hpa(BigInt(VITS_BASE)),
      memory: memory.allocator,
      cpus,
      tracer: context.tracer,
    });
  }

  /** The guest's MSI controller (its ITS driver on the vITS). */
  get guest(): IMsiController {
    return this.vits.guest;
  }

  /** The guest sets up `count` vectors of an assigned device; returns a summary of both sides. */
  setupDevice(device: AssignedDevice, count: number): string {
    if (this.devices.has(device.name)) throw new IommufdError('EEXIST', `${device.name} already has MSIs`);
    const { fd, guest, setup } = this.context;
    const requester = { name: device.name, deviceId: device.virtualRid };
    const guestVectors = this.vits.guest.allocateVectors(requester, count);
    const guestAddress = guest.msiAddress(device.name, this.vits.doorbell.address);
    const physical = device.host;
    const hostRequester = { name: physical.name, deviceId: physical.streamId };
    const hostVectors = this.host.allocateVectors(hostRequester, count);
    const releases: (() => void)[] = [];
    try {
      const doorbell = hostVectors[0]!.doorbell;
      let how: string;
      let addresses: bigint[];
      if (setup.mode === 'sw-msi') {
        // Each vector's own host message: on x86 its address carries a destination or a remapping handle.
        addresses = hostVectors.map((v) => fd.deviceSetupSwMsi(device.devId, hpa(v.message.address)));
        how =
          addresses[0] === hostVectors[0]!.message.address
            ? `the host messages go untranslated (a hardware MSI window)`
            : `iommufd mapped doorbell ${toHex(doorbell.address)} at SW MSI IOVA ${toHex(addresses[0]!)} of its stage 2`;
      } else {
        // The guest's MSI address is an IOVA its shadow maps only to guest RAM; the vITS is not RAM.
        if (this.context.shadow)
          throw new IommufdError(
            'EOPNOTSUPP',
            `${device.name}: MSI passthrough behind a shadowing vIOMMU (the guest's doorbell IOVA leads to no guest RAM)`,
          );
        how = this.mapPassthrough(device, doorbell);
        addresses = hostVectors.map(() => guestAddress);
      }
      hostVectors.forEach((v, i) => {
        physical.msix.program(i, { address: addresses[i]!, data: v.message.data });
        const guestVector = guestVectors[i]!;
        releases.push(
          this.host.requestIrq(v.intid, () => {
            const { tracer, vm } = this.context;
            if (tracer.enabled) {
              tracer.trace(
                'frontend',
                vm,
                'msi.inject',
                `host LPI ${v.intid} (${device.name} vector ${i}) → inject DeviceID ${toHex(device.virtualRid)} EventID ${guestVector.message.data} into ${this.vits.doorbell.name}`,
                { intid: v.intid, deviceId: device.virtualRid, eventId: guestVector.message.data },
              );
            }
            this.injected = this.vits.inject(
              device.virtualRid,
              guestVector.message.data,
              guestVector.message.address,
            );
          }),
        );
      });
      this.devices.set(device.name, {
        device,
        hostRequester,
        guest: guestVectors,
        host: hostVectors,
        releases,
      });
      const guestSide = guestVectors
        .map((v) => `event ${v.eventId} → vINTID ${v.intid} on vCPU${v.cpu}`)
        .join(', ');
      const hostSide = hostVectors.map((v) => `INTID ${v.intid}`).join(', ');
      return `${device.name}: guest vITS ${guestSide}, guest MSI address ${toHex(guestAddress)}; host ${doorbell.name} ${hostSide}; ${how}; the device writes ${[...new Set(addresses)].map(toHex).join(', ')}`;
    } catch (error) {
      for (const release of releases) release();
      this.host.freeVectors(hostRequester);
      this.vits.guest.freeVectors(requester);
      physical.msix.reset();
      throw error;
    }
  }

  /** The guest's vector `vector` of a device (its vINTID). */
  guestVector(deviceName: string, vector: number): MsiVector {
    const v = this.require(deviceName).guest[vector];
    if (!v) throw new IommufdError('EINVAL', `${deviceName} has no MSI vector ${vector}`);
    return v;
  }

  /** What the last injection into the vITS did, once (undefined if nothing was injected since). */
  takeInjection(): MsiOutcome | undefined {
    const out = this.injected;
    this.injected = undefined;
    return out;
  }

  /** Power off: handlers released, physical vectors freed, the vITS taken off the guest bus. */
  teardown(): void {
    for (const d of this.devices.values()) {
      for (const release of d.releases) release();
      this.host.freeVectors(d.hostRequester);
      d.device.host.msix.reset();
    }
    this.devices.clear();
    this.vits.dispose();
  }

  /** Maps the physical doorbell page at the vITS doorbell page; on EEXIST moves the device to its own HWPT. */
  private mapPassthrough(device: AssignedDevice, doorbell: MsiDoorbell): string {
    const { fd, ioasId, nested } = this.context;
    const doorbellPage = doorbell.page;
    const gpa = this.vits.doorbell.page;
    const done = `ioasMapMsi put doorbell page ${toHex(doorbellPage)} at GPA ${toHex(gpa)}`;
    try {
      fd.ioasMapMsi(ioasId, device.devId, gpa);
      return done;
    } catch (error) {
      if (!isIommufdError(error, 'EEXIST') || nested) throw error;
      const own = fd.hwptAlloc({ devId: device.devId, ptId: ioasId });
      fd.replace(device.devId, own);
      fd.ioasMapMsi(ioasId, device.devId, gpa);
      return `${(error as Error).message}; the VMM moved ${device.name} to its own HWPT ${own}, then ${done}`;
    }
  }

  private require(deviceName: string): DeviceMsi {
    const d = this.devices.get(deviceName);
    if (!d) throw new IommufdError('ENOENT', `${this.context.vm}: ${deviceName} has no MSIs set up`);
    return d;
  }
}
