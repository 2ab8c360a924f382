/**
 * The handlers a controller's kernel driver installs (Linux `request_irq`), one per interrupt, run when the
 * system services interrupts — after the operation that raised them, in the order the CPUs took them.
 */
import { IommufdError } from '../errors/iommufd-error.js';
import type { InterruptArrival, InterruptHandler } from './msi-controller.js';

/** A CPU as the handlers see it: the arrivals it took that no handler has run for yet. */
export interface ServicedCpu {
  drainUnserviced(): InterruptArrival[];
}

export class InterruptHandlers {
  private readonly handlers = new Map<number, InterruptHandler>();

  /** `kind` names the controller's interrupts in messages (`LPI`, `IRQ`). */
  constructor(private readonly kind: string) {}

  /** Installs `handler` for `intid`; `EBUSY` if it has one. Returns its release (a no-op once replaced). */
  request(intid: number, handler: InterruptHandler): () => void {
    if (this.handlers.has(intid))
      throw new IommufdError('EBUSY', `${this.kind} ${intid} already has a handler`);
    this.handlers.set(intid, handler);
    return () => {
      if (this.handlers.get(intid) === handler) this.handlers.delete(intid);
    };
  }

  /** Runs the handlers of what the CPUs took since the last call, in arrival order; returns how many ran. */
  service(cpus: readonly ServicedCpu[]): number {
    const due = cpus.flatMap((cpu) => cpu.drainUnserviced());
    due.sort((a, b) => a.seq - b.seq);
    let ran = 0;
    for (const arrival of due) {
      const handler = this.handlers.get(arrival.intid);
      if (!handler) continue;
      handler(arrival);
      ran++;
    }
    return ran;
  }
}
