/**
 * The contract between a VMM's vIOMMU front-end and a vendor's vIOMMU personality (the guest-facing half
 * of a vendor plugin). The VMM owns the VM — its GPA space, its iommufd context, the devices assigned to
 * it — and gives the personality a window on the guest's bus; the personality is what the guest sees
 * there (registers, queues in guest memory) and turns the guest's programming into iommufd calls
 * (nested mode), into IOAS maps and unmaps that shadow the guest's tables (shadow mode: VT-d caching mode,
 * AMD's dma-remap), or into translations of the VM's emulated devices (emulated mode).
 */
import type { Hpa } from '../address/address.js';
import type { HwInfo } from '../iommu/driver.js';
import type { IommuHardware } from '../iommu/hardware.js';
import type { IrqLine } from '../iommu/irq.js';
import type { IommuFd } from '../iommufd/iommufd.js';
import type { UserMemory } from '../iommufd/user-memory.js';
import type { MemoryBus } from '../memory/memory-bus.js';
import type { InstanceMsi } from '../plugin/plugin.js';
import type { ITracer } from '../trace/tracer.js';

export type ViommuMode = 'emulated' | 'nested' | 'shadow';

/** What a nested personality works with: the VM's iommufd context and its stage 2. */
export interface NestedViommuBackend {
  readonly fd: IommuFd;
  /** The VM's stage 2: a nest-parent paging HWPT over the VM's IOAS (GPA → HPA). */
  readonly s2HwptId: number;
  /** `IOMMU_GET_HW_INFO` of the physical IOMMU the VM's assigned devices sit behind. */
  readonly hwInfo: HwInfo;
  /** iommufd device ID of any assigned device (vIOMMU allocation names one). */
  readonly anyDevId: number;
}

/**
 * What a shadowing personality works with: the VM's iommufd context and guest RAM. Each assigned device has
 * an IOAS of its own (`AssignedDeviceView.shadowIoasId`), empty at first; the personality keeps it equal to
 * what the guest's tables map, replaying every invalidation the guest sends (the guest invalidates after
 * maps too, as caching mode obliges it) as IOAS maps and unmaps of guest RAM.
 */
export interface ShadowViommuBackend {
  readonly fd: IommuFd;
  /** Guest RAM: its guest-physical base and the host memory behind it (what IOAS maps take). */
  readonly guestRam: { readonly gpa: bigint; readonly memory: UserMemory };
}

/** A device assigned to the VM (VFIO cdev bound to the VM's iommufd), as the guest will address it. */
export interface AssignedDeviceView {
  readonly name: string;
  /** iommufd device ID. */
  readonly devId: number;
  /** The ID the guest uses for it in the vIOMMU's structures and commands (vSID, vRID, vDeviceID). */
  readonly virtualId: number;
  /** Shadow mode: the device's own IOAS, which the personality keeps in step with the guest's tables. */
  readonly shadowIoasId?: number;
  /**
   * The function can send PCIe page requests (ATS and PRI capabilities, as the VMM reads its config
   * space): its HWPTs may take a fault queue, whose attach enables its PRI on the host.
   */
  readonly pageRequests?: boolean;
}

export interface ViommuContext {
  /** Instance name for traces (`vm0.viommu`). */
  readonly name: string;
  readonly mode: ViommuMode;
  /** The guest's physical address space; the personality adds its register window here. */
  readonly bus: MemoryBus;
  /** Guest-physical base of the register window. */
  readonly base: Hpa;
  readonly tracer: ITracer;
  /** The guest's interrupt lines by name (the guest driver connects to the same names). */
  irq(name: string): IrqLine;
  /**
   * The guest's MSI controller and the DeviceID the vIOMMU's own MSIs carry, when the VM has one: a
   * personality whose hardware signals by MSI only (VT-d, AMD-Vi) writes its events to it on the guest bus.
   */
  readonly msi?: InstanceMsi;
  /** Present in nested mode. */
  readonly nested?: NestedViommuBackend;
  /** Present in shadow mode. */
  readonly shadow?: ShadowViommuBackend;
}

export interface ViommuPersonality {
  readonly mode: ViommuMode;
  /** The register window it placed on the guest bus. */
  readonly mmio: { readonly base: bigint; readonly size: number };
  /** Emulated mode: the model the VM's emulated devices DMA through (it reads guest memory). */
  readonly hardware?: IommuHardware;
  /** Nested and shadow mode: an assigned device appears behind the vIOMMU under its virtual ID. */
  addDevice?(device: AssignedDeviceView): void;
  /**
   * Nested mode: moves what the host reported for the VM's devices (vEVENTQ records) into the guest's
   * structures and raises the guest's interrupts. The VMM calls it after servicing host interrupts.
   * Returns the records delivered.
   */
  service?(): number;
  /** Power-off: frees everything it allocated (iommufd objects leaf first) and leaves the guest bus. */
  destroy(): void;
}
