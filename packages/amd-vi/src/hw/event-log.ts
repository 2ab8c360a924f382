/**
 * The event log (AMD IOMMU Specification, pub. 48882 rev 3.x, §2.5 "Event Logging"; §3.4 Event Log Base
 * Address 0010h, Head/Tail Pointer 2010h/2018h, Control.EventLogEn/EventIntEn, Status.EvtOverflow/
 * EvtLogInt/EvtLogRun): the unit's events, encoded by `encodeEvent`, appended to a {@link LogRing}.
 *
 * A record written sets Status.EvtLogInt whether or not Control.EventIntEn is set; EventIntEn gates only the
 * message (VirtualBox `iommuAmdEvtLogEntryWrite`; the spec's "an interrupt is generated when [the bit] = 1b
 * and EventIntEn = 1b", see unit-interrupts.ts). QEMU sets EvtLogInt only while EventIntEn is set. A record
 * the ring cannot take is lost (log stopped or overflowed, ring full, write aborted): see log-ring.ts.
 *
 * Contract: the unit calls {@link EventLog.record} for every event it raises and forwards its Control write
 * hook to {@link EventLog.controlChanged}; the ring owns the Event Log Base, Head and Tail write hooks.
 * With the tracer on, each event is one `evtlog.write` or `evtlog.drop` record, its `describeEvent` line.
 */
import { type AccessCounter, type ITracer, type MemoryBus, type RegisterFile, toHex } from '@iommukit/core';
import { type AmdEvent, describeEvent, EVENT_WORDS, encodeEvent } from './events.js';
import { type AppendOutcome, EVENT_LOG_LAYOUT, LogRing } from './log-ring.js';
import type { UnitInterrupts } from './unit-interrupts.js';

export interface EventLogInit {
  readonly regs: RegisterFile;
  readonly bus: MemoryBus;
  /** The counter the unit's log writes are charged to. */
  readonly counter: AccessCounter;
  readonly interrupts: UnitInterrupts;
  readonly tracer: ITracer;
  /** The instance named in trace records (`iommu0`). */
  readonly instance: string;
}

/** Why a record was not written, for traces. */
const DROPPED: Readonly<Record<Exclude<AppendOutcome, 'written'>, string>> = {
  stopped: 'event log not running or EvtOverflow set',
  full: 'event log full, EvtOverflow set',
  aborted: 'record write aborted',
};

export class EventLog {
  /** Events written to the log, and events lost (log off, overflowed, full or its write aborted). */
  recorded = 0;
  dropped = 0;
  readonly ring: LogRing;
  private readonly words = new Uint32Array(EVENT_WORDS);
  private readonly tracer: ITracer;
  private readonly instance: string;

  constructor(init: EventLogInit) {
    this.ring = new LogRing({ ...init, layout: EVENT_LOG_LAYOUT });
    this.tracer = init.tracer;
    this.instance = init.instance;
  }

  /**
   * Logs `event` (§2.5): true when its record was written. `EINVAL` for an event its record cannot hold,
   * whether or not the log is on.
   */
  record(event: AmdEvent): boolean {
    encodeEvent(event, this.words, 0);
    const outcome = this.ring.append(this.words);
    if (outcome === 'written') this.recorded++;
    else this.dropped++;
    if (this.tracer.enabled)
      this.tracer.trace(
        'hw',
        this.instance,
        outcome === 'written' ? 'evtlog.write' : 'evtlog.drop',
        outcome === 'written'
          ? `${describeEvent(event)} at event log offset ${toHex(this.ring.lastOffset)}`
          : `${describeEvent(event)} dropped: ${DROPPED[outcome]}`,
      );
    return outcome === 'written';
  }

  /** Control (low half) changed from `old` to `control` (EventLogEn, IommuEn). */
  controlChanged(control: number, old: number): void {
    this.ring.controlChanged(control, old);
  }

  stats(): Readonly<Record<string, number>> {
    return {
      eventsRecorded: this.recorded,
      eventsDropped: this.dropped,
      eventLogOverflows: this.ring.overflows,
      eventLogAborts: this.ring.aborted,
    };
  }
}
