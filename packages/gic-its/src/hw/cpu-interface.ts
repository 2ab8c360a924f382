/**
 * A CPU's interrupt interface as far as LPIs go: it takes every interrupt its redistributor signals
 * (priority mask open, interrupts unmasked), in order, and records it. Handlers run later, when the
 * system services interrupts, as a CPU runs its handlers between instructions.
 */
import type { CpuInterruptSink, InterruptArrival } from '@iommukit/core';

export class CpuInterface implements CpuInterruptSink {
  readonly arrivals: InterruptArrival[] = [];
  private unserviced: InterruptArrival[] = [];

  constructor(readonly cpu: number) {}

  take(arrival: InterruptArrival): void {
    this.arrivals.push(arrival);
    this.unserviced.push(arrival);
  }

  /** Arrivals whose handlers have not run yet; the queue is emptied. */
  drainUnserviced(): InterruptArrival[] {
    const out = this.unserviced;
    this.unserviced = [];
    return out;
  }
}
