/**
 * The MSI module contract (docs/design.md §7 flow 5): an interrupt controller that turns a device's MSI — a
 * 32-bit write of `data` to a doorbell `address`, tagged with the requester's DeviceID — into an
 * interrupt at a CPU. A GICv3 ITS implements it on Arm, the local APICs on x86 (the interrupt window
 * 0xFEE0_0000 is their doorbell; an IOMMU's interrupt remapping, interrupt-remapping.ts, hands them
 * remapped interrupts through `deliverRemapped`).
 *
 * The IOMMU layer needs only the doorbells: the pages an MSI write must reach, which the kernel maps into
 * a device's SW MSI window (the SW MSI cookie) or a VMM maps at its virtual controller's address (MSI
 * passthrough). Everything else — tables, commands, caches — stays inside the controller's package.
 */
import type { Hpa } from '../address/address.js';
import { token } from '../di/token.js';
import type { X86Interrupt } from './interrupt-remapping.js';

/** An MSI as the device sends it: a 32-bit little-endian write of `data` to `address`. */
export interface MsiMessage {
  readonly address: bigint;
  readonly data: number;
}

/** A doorbell on the physical (or guest-physical) bus. */
export interface MsiDoorbell {
  /** The controller instance it belongs to (`its0`). */
  readonly name: string;
  /** The register MSIs are written to (GITS_TRANSLATER). */
  readonly address: Hpa;
  /** The 4 KiB page holding it: the unit an IOMMU maps for MSIs. */
  readonly page: Hpa;
}

/** The device an MSI comes from, as the interrupt controller identifies it. */
export interface MsiRequester {
  readonly name: string;
  /** The ID the controller indexes its device table with (Arm: the StreamID, as IORT maps it). */
  readonly deviceId: number;
}

/** One interrupt as a CPU took it. */
export interface InterruptArrival {
  /** Order of arrival across all CPUs of the controller, from 1. */
  readonly seq: number;
  readonly cpu: number;
  /** The interrupt ID (an LPI INTID from 8192 on a GIC). */
  readonly intid: number;
  /** Priority the controller used, on its own scale (GIC: lower is more urgent; x86: the vector's class, higher is more urgent). */
  readonly priority: number;
  /** The controller instance that translated the MSI, and what it translated. */
  readonly controller: string;
  readonly deviceId: number;
  readonly eventId: number;
}

export type InterruptHandler = (arrival: InterruptArrival) => void;

/** A CPU's interrupt interface: what arrived, in order. */
export interface CpuInterruptSink {
  readonly cpu: number;
  readonly arrivals: readonly InterruptArrival[];
}

/** One interrupt vector a controller set up for a device. */
export interface MsiVector {
  /** What the device must write: the physical doorbell and the data (GIC: the EventID). */
  readonly message: MsiMessage;
  readonly eventId: number;
  readonly intid: number;
  /** The CPU it is routed to. */
  readonly cpu: number;
  readonly doorbell: MsiDoorbell;
}

export interface InterruptConfigChange {
  readonly enabled?: boolean;
  /** On the controller's scale (GIC: lower is more urgent, the top six bits of a byte; x86: a priority class 2–14). */
  readonly priority?: number;
}

/** The state of an interrupt: pending while it waits for its CPU (it arrived disabled). */
export type InterruptState = 'inactive' | 'pending';

/** What became of one MSI write the controller received. */
export type MsiOutcome =
  | { readonly kind: 'delivered'; readonly arrival: InterruptArrival }
  /** Translated, but the interrupt is disabled: it stays pending until enabled. */
  | { readonly kind: 'pending'; readonly intid: number; readonly deviceId: number; readonly eventId: number }
  /** Not translated (unmapped device or event, or the controller is off): the write is dropped. */
  | {
      readonly kind: 'dropped';
      readonly deviceId: number;
      readonly eventId: number;
      readonly reason: string;
    };

export interface IMsiController {
  /** The controller architecture (`gic-its`). */
  readonly kind: string;
  /** Every doorbell the controller has. */
  readonly doorbells: readonly MsiDoorbell[];
  /** The doorbell a device's MSIs must reach (its `msi-parent`). */
  doorbellFor(device: MsiRequester): MsiDoorbell;
  readonly cpus: readonly CpuInterruptSink[];
  /**
   * The kernel's MSI domain (Linux `msi_domain_alloc_irqs`): programs the controller so `count` events of
   * the device raise interrupts, spread over the CPUs, and returns the messages the device must send.
   * The message addresses are the controller's own (physical) doorbell; an IOMMU in front of the device
   * needs them mapped (see {@link MsiDoorbell.page}).
   */
  allocateVectors(device: MsiRequester, count: number): readonly MsiVector[];
  /** Tears down what `allocateVectors` set up for a device. */
  freeVectors(device: MsiRequester): void;
  /** Routes an interrupt to another CPU (Linux `irq_set_affinity`). */
  setAffinity(intid: number, cpu: number): void;
  /**
   * Changes an interrupt's configuration (Linux `irq_mask` / `irq_unmask`, priority). Controllers cache
   * configuration (the GIC's LPI configuration cache, the remapping unit's interrupt entry cache), so the
   * change is followed by the invalidation the controller needs — unless `invalidate` is false, which
   * leaves the stale cached configuration in effect (a driver bug a model should make visible).
   */
  configure(intid: number, change: InterruptConfigChange, options?: { readonly invalidate?: boolean }): void;
  /** Whether an interrupt is pending (it arrived while disabled). */
  stateOf(intid: number): InterruptState;
  /** Installs the handler for an interrupt (Linux `request_irq`); returns its release. */
  requestIrq(intid: number, handler: InterruptHandler): () => void;
  /**
   * Takes an interrupt an IOMMU's remapping unit produced (x86: the remapped entry's vector and
   * destination) from `requester`. Controllers that never sit behind interrupt remapping leave it out.
   */
  deliverRemapped?(interrupt: X86Interrupt, requester: MsiRequester): MsiOutcome;
  /** What became of each MSI write received since the last call, in order. */
  takeOutcomes(): MsiOutcome[];
  /** Runs the handlers of interrupts that arrived since the last call; returns how many ran. */
  service(): number;
  /** Removes the controller's regions from the bus. */
  dispose(): void;
}

export const IMsiController = token<IMsiController>('iommukit.MsiController');
