/**
 * An x86 CPU as far as its interrupts go: it takes the vectors its local APIC dispatches by running the
 * kernel's interrupt entry (its IDT gates), and records what arrived. Handlers run later, when the system
 * services interrupts, as a CPU runs them between instructions. NMI, SMI, INIT and ExtINT are not vectored
 * through the APIC's IRR; the CPU records them apart.
 */
import type { CpuInterruptSink, DeliveryMode, InterruptArrival, MsiOutcome } from '@iommukit/core';

/** The IRQ of a vector no kernel IRQ stands behind (Linux: "No irq handler for vector"). */
export const NO_IRQ = -1;

/** The sender of an interrupt as the model tracks it: the requester's ID and the vector it sent. */
export interface InterruptSource {
  /** The MSI's requester ID; {@link NO_REQUESTER} for an IPI or a write without one. */
  readonly deviceId: number;
  /** What the APIC was given: the vector (an x86 message names a vector, not an event). */
  readonly eventId: number;
}

/** The requester of an interrupt no device sent. */
export const NO_REQUESTER = -1;

/** The kernel as the CPU runs it on an interrupt. */
export interface InterruptEntry {
  /** The IRQ behind `vector` on this CPU (Linux's per-CPU `vector_irq`), or {@link NO_IRQ}. */
  irqOf(vector: number): number;
  /**
   * Runs the kernel's entry for `vector`, just taken into service (Linux `common_interrupt` and the flow
   * handler, which acknowledges the APIC); false when the kernel left the IRQ pending (it is disabled).
   */
  enter(vector: number): boolean;
}

/** Before a kernel installs its entry: vectors map to no IRQ and nothing acknowledges the APIC. */
const NO_KERNEL: InterruptEntry = { irqOf: () => NO_IRQ, enter: () => true };

/** An NMI, SMI, INIT or ExtINT the CPU received. */
export interface NonVectoredEvent {
  readonly seq: number;
  readonly kind: Exclude<DeliveryMode, 'fixed' | 'lowest-priority'>;
  readonly deviceId: number;
}

export class X86Cpu implements CpuInterruptSink {
  readonly arrivals: InterruptArrival[] = [];
  readonly events: NonVectoredEvent[] = [];
  entry: InterruptEntry = NO_KERNEL;
  private unserviced: InterruptArrival[] = [];

  constructor(
    readonly cpu: number,
    private readonly controller: string,
    private readonly clock: { next(): number },
  ) {}

  /** The CPU takes `vector` into service: delivered to its handler, or left pending by the kernel. */
  take(vector: number, source: InterruptSource): MsiOutcome {
    const intid = this.entry.irqOf(vector);
    if (!this.entry.enter(vector)) return { kind: 'pending', intid, ...source };
    const arrival: InterruptArrival = {
      seq: this.clock.next(),
      cpu: this.cpu,
      intid,
      // x86 priority is the vector's class (higher is more urgent), SDM §11.8.3.
      priority: vector >>> 4,
      controller: this.controller,
      ...source,
    };
    this.arrivals.push(arrival);
    this.unserviced.push(arrival);
    return { kind: 'delivered', arrival };
  }

  /** Records an interrupt that bypasses the vectored path (SDM §11.6.1 delivery modes). */
  receive(kind: NonVectoredEvent['kind'], source: InterruptSource): NonVectoredEvent {
    const event = { seq: this.clock.next(), kind, deviceId: source.deviceId };
    this.events.push(event);
    return event;
  }

  /** Arrivals whose handlers have not run yet; the queue is emptied. */
  drainUnserviced(): InterruptArrival[] {
    const out = this.unserviced;
    this.unserviced = [];
    return out;
  }
}
