/**
 * One of the remapping unit's own interrupts (VT-d specification §7.4 fault events, §6.5.2.8 invalidation
 * completion events, page request events): a control register with the interrupt mask (IM) and
 * interrupt pending (IP) bits, a data register and a message address (upper half with EIM). All three
 * event kinds work the same way:
 * - an event sets IP; if IM is clear the unit sends the message (a 32-bit write of the data register to the
 *   address) and clears IP at once;
 * - with IM set the event stays pending (IP = 1); when software clears IM, the unit sends it then.
 * Software never writes IP (it is read-only), so the register table leaves it out of FECTL/IECTL/PECTL's
 * writable bits and this unit sets and clears it.
 */
import type { AccessCounter, MemoryBus, RegisterFile } from '@iommukit/core';
import { EVENT_ADDR_MASK, EVENT_CTL_IM, EVENT_CTL_IP, EVENT_DATA_MASK } from './regs.js';

/** Where an event's registers are (FECTL/FEDATA/FEADDR/FEUADDR and their IE*, PE* siblings). */
export interface EventRegisters {
  readonly control: number;
  readonly data: number;
  readonly address: number;
  /** The upper address register, or undefined when the unit has none (no EIM). */
  readonly upperAddress: number | undefined;
}

export class EventInterrupt {
  /** Messages sent, and those whose write aborted (the unit has nowhere to report those). */
  sent = 0;
  aborted = 0;

  constructor(
    private readonly regs: RegisterFile,
    private readonly at: EventRegisters,
    private readonly bus: MemoryBus,
    private readonly counter: AccessCounter,
    /** The requester ID the unit's own writes carry. */
    private readonly requesterId: number,
  ) {
    regs.onWrite(at.control, (value, old) => {
      // Clearing IM releases a pending event.
      if ((old & EVENT_CTL_IM) !== 0 && (value & EVENT_CTL_IM) === 0 && this.pending) this.send();
    });
  }

  /** Whether an event is waiting for IM to clear (control register IP). */
  get pending(): boolean {
    return (this.regs.get(this.at.control) & EVENT_CTL_IP) !== 0;
  }

  /**
   * Software serviced every condition behind a pending event while it was masked: IP clears without a
   * message (FSTS, PRS or ICS cleared with IM set, §11.4.7.2).
   */
  withdraw(): void {
    if (this.pending) this.regs.set(this.at.control, this.regs.get(this.at.control) & ~EVENT_CTL_IP);
  }

  /** An event: sent now, or left pending while masked. */
  raise(): void {
    const control = this.regs.get(this.at.control);
    this.regs.set(this.at.control, control | EVENT_CTL_IP);
    if ((control & EVENT_CTL_IM) === 0) this.send();
  }

  private send(): void {
    this.regs.set(this.at.control, this.regs.get(this.at.control) & ~EVENT_CTL_IP);
    const upper = this.at.upperAddress === undefined ? 0 : this.regs.get(this.at.upperAddress);
    const address = upper * 2 ** 32 + ((this.regs.get(this.at.address) & EVENT_ADDR_MASK) >>> 0);
    const data = this.regs.get(this.at.data) & EVENT_DATA_MASK;
    this.sent++;
    if (!this.bus.write(address, 4, data, this.counter, this.requesterId).ok) this.aborted++;
  }
}
