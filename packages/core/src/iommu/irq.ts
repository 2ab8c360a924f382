/**
 * Wired interrupt lines. A hardware model raises a line; the handler (a driver's ISR) runs when the
 * system next services interrupts, between operations, as a CPU takes interrupts between instructions.
 * Running ISRs synchronously inside a DMA translation would let a driver touch the model mid-walk.
 */
import { token } from '../di/token.js';

export class IrqLine {
  private handler: (() => void) | undefined;
  private pending = false;
  raised = 0;

  constructor(
    readonly name: string,
    private readonly controller: InterruptController,
  ) {}

  /** Installs the interrupt handler (one per line, like a non-shared IRQ). */
  connect(handler: () => void): void {
    this.handler = handler;
  }

  disconnect(): void {
    this.handler = undefined;
  }

  /** Asserts the line; the handler runs at the next {@link InterruptController.service}. */
  raise(): void {
    this.raised++;
    if (this.pending) return;
    this.pending = true;
    this.controller.markPending(this);
  }

  /** Runs the handler if pending; returns whether it ran. */
  deliver(): boolean {
    if (!this.pending) return false;
    this.pending = false;
    this.handler?.();
    return this.handler !== undefined;
  }
}

export const IInterruptController = token<InterruptController>('iommukit.InterruptController');

/** Owns the wired lines of one system and delivers pending ones in the order they were raised. */
export class InterruptController {
  private readonly lines = new Map<string, IrqLine>();
  private readonly queue: IrqLine[] = [];

  line(name: string): IrqLine {
    let line = this.lines.get(name);
    if (line === undefined) {
      line = new IrqLine(name, this);
      this.lines.set(name, line);
    }
    return line;
  }

  markPending(line: IrqLine): void {
    this.queue.push(line);
  }

  /** Delivers pending interrupts (including ones raised by handlers) until none remain. */
  service(maxRounds = 1024): number {
    let delivered = 0;
    for (let i = 0; i < maxRounds && this.queue.length > 0; i++) {
      if (this.queue.shift()!.deliver()) delivered++;
    }
    return delivered;
  }
}
