/**
 * The MSI module contract (core `IMsiController`) over the x86 APIC model and the kernel's APIC driver and
 * MSI domain: the host controller on the physical bus, and the guest's view of a VM's virtual APIC.
 *
 * `intid` is the Linux IRQ number (from 24): vectors are per CPU, so only the IRQ number names an
 * interrupt across the machine. An arrival's `priority` is the vector's priority class (`vector >> 4`,
 * higher is more urgent on x86) and its `eventId` the vector. Handlers registered with `requestIrq` run
 * when the system services interrupts, in arrival order; the kernel's entry has acknowledged them (EOI).
 */
import {
  alignDown,
  hpa,
  type IMsiController,
  type InterruptConfigChange,
  type InterruptHandler,
  InterruptHandlers,
  type InterruptState,
  IommufdError,
  type MsiDoorbell,
  type MsiMessage,
  type MsiOutcome,
  type MsiRequester,
  type MsiVector,
  X86_INTERRUPT_WINDOW,
  type X86Interrupt,
} from '@iommukit/core';
import type { ApicDriver } from './driver/apic-driver.js';
import type { DeviceIrq, MsiDomain } from './driver/msi-domain.js';
import type { ApicPlatform } from './hw/apic-platform.js';

const PAGE = 0x1000n;

export class ApicMsiController implements IMsiController {
  readonly kind = 'x86-apic';
  /** The interrupt window's first page: where a device's MSIs go (each vector's own page is in its doorbell). */
  readonly doorbells: readonly MsiDoorbell[];
  private readonly handlers = new InterruptHandlers('IRQ');

  constructor(
    readonly platform: ApicPlatform,
    readonly driver: ApicDriver,
    readonly domain: MsiDomain,
  ) {
    this.doorbells = [this.doorbellOf(X86_INTERRUPT_WINDOW.base)];
  }

  get cpus() {
    return this.platform.cpus;
  }

  doorbellFor(_device: MsiRequester): MsiDoorbell {
    return this.doorbells[0]!;
  }

  allocateVectors(device: MsiRequester, count: number): readonly MsiVector[] {
    if (!Number.isInteger(count) || count < 1)
      throw new IommufdError('EINVAL', `cannot allocate ${count} vectors`);
    return this.domain.allocate(device, count).map((irq) => this.vectorOf(irq));
  }

  freeVectors(device: MsiRequester): void {
    this.domain.free(device);
  }

  /** Without remapping the IRQ's message changes: {@link messageFor} gives the new one. */
  setAffinity(intid: number, cpu: number): void {
    this.domain.setAffinity(intid, cpu);
  }

  /**
   * `enabled`: Linux's lazy disable (an interrupt that comes is left pending and resent on enable).
   * `priority`: the x86 priority class (2–14), which means a new vector on the same CPU; with remapping
   * the entry is rewritten and `invalidate: false` leaves the remapping unit's cached entry in use.
   */
  configure(
    intid: number,
    change: InterruptConfigChange,
    options: { readonly invalidate?: boolean } = {},
  ): void {
    if (change.priority !== undefined)
      this.domain.setPriorityClass(intid, change.priority, options.invalidate ?? true);
    const { target } = this.domain.irq(intid);
    if (change.enabled === false) this.driver.disableIrq(intid);
    else if (change.enabled === true) this.driver.enableIrq(intid, target.cpu, target.vector);
  }

  stateOf(intid: number): InterruptState {
    const { target } = this.domain.irq(intid);
    return this.driver.isPending(intid, target.cpu, target.vector) ? 'pending' : 'inactive';
  }

  /** The message IRQ `intid`'s device must send now. */
  messageFor(intid: number): MsiMessage {
    return this.domain.messageFor(intid);
  }

  /** The vector of IRQ `intid` as it is now (CPU and message follow `setAffinity` and `configure`). */
  vectorFor(intid: number): MsiVector {
    return this.vectorOf(this.domain.irq(intid));
  }

  requestIrq(intid: number, handler: InterruptHandler): () => void {
    return this.handlers.request(intid, handler);
  }

  /** An interrupt an IOMMU's remapping unit produced for `requester`. */
  deliverRemapped(interrupt: X86Interrupt, requester: MsiRequester): MsiOutcome {
    return this.platform.deliver(interrupt, { deviceId: requester.deviceId, eventId: interrupt.vector });
  }

  takeOutcomes(): MsiOutcome[] {
    return this.platform.takeOutcomes();
  }

  service(): number {
    return this.handlers.service(this.platform.cpus);
  }

  dispose(): void {
    this.platform.remove();
  }

  private vectorOf(irq: DeviceIrq): MsiVector {
    return {
      message: irq.message,
      eventId: irq.target.vector,
      intid: irq.irq,
      cpu: irq.target.cpu,
      doorbell: this.doorbellOf(irq.message.address),
    };
  }

  /** The page of the interrupt window an address falls in: what an IOMMU maps for it. */
  private doorbellOf(address: bigint): MsiDoorbell {
    const at = hpa(address);
    return { name: this.platform.spec.name, address: at, page: alignDown(at, PAGE) };
  }
}
