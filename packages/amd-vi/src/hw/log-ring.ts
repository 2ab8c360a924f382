/**
 * The ring every log the AMD IOMMU writes and software consumes lives in (AMD IOMMU Specification, pub.
 * 48882 rev 3.x, §2.5 "Event Logging" and §2.5.1 "Event Log Restart Procedure", the PPR log alike; §3.4
 * the Event Log / PPR Log Base Address, Head and Tail Pointer, Control and Status registers): 16-byte
 * records in memory at Base[51:12], 2^Length of them (Length, Base[59:56], from 8 to 15: 4 KiB to 512 KiB);
 * Head (software's) and Tail (the unit's) are byte offsets in bits 18:4. Head == Tail is empty; a record
 * goes in at Tail, which then advances modulo the size, so the ring holds at most 2^Length − 1 records.
 *
 * Running (Status.*Run) — Linux, Xen, QEMU and VirtualBox together:
 * - The log runs from the moment Control has both IommuEn and the log's enable (EventLogEn, PprLogEn) set,
 *   and stops when either clears (QEMU `amdvi_handle_control_write`, VirtualBox `iommuAmdCtrl_w`: both gate
 *   the run bit on IommuEn). Only that rising edge starts it: Linux found the hardware resumes after an
 *   overflow only when EventLogEn is written 0 and then 1 (commit "iommu/amd: Recover from event log
 *   overflow"). Enabling resets neither pointer: Linux's restart (`amd_iommu_restart_log`) re-enables with
 *   Head == Tail where it left them, and writes both 0 itself before the first enable.
 * - Full: when advancing Tail would make it equal Head, the record is dropped, the overflow bit (EvtOverflow,
 *   PPROverflow) is set and the log stops (Run clears): §2.5.1 as quoted on qemu-devel ("event logging is
 *   disabled ... when the event log overflows"); Linux's restart returns early while Run is still set, and
 *   Xen's `iommu_reset_log` waits for Run to clear. The spec's software note (quoted in that Linux commit):
 *   no new records while the overflow bit is set; to resume, clear it (W1C) and write 1 to the enable.
 *   Linux: enable 0, W1C overflow, enable 1. So a record is written only while Run is set and the overflow
 *   bit is clear. VirtualBox clears the overflow bit itself on enable and leaves Run set on overflow, as
 *   does QEMU: on either, Linux's restart, which returns while Run is set, never restarts. The model
 *   follows the spec and Linux.
 * - A record write the bus aborts: the record is lost, Tail and Status stay as they were, counted `aborted`
 *   (the model's choice, no source saying what the unit does; QEMU and VirtualBox advance Tail over the
 *   unwritten record, which would hand software a stale entry). No event is logged for it — there is none
 *   for a log write — and PCI status abort bits are not modelled.
 *
 * Registers (VirtualBox's handling of what the spec leaves undefined, §3.4 pointer registers):
 * - Base: ignored while the log runs (QEMU ignores it while EvtLogInt is set instead); a reserved Length
 *   (below 8) in the high half is ignored (the half keeps its value); an accepted write resets Head and
 *   Tail to 0 (VirtualBox citing §2.5; QEMU since its 2025 event-log fixes). Reset leaves Length 0,
 *   reserved: enabling such a log does not start it (the model's choice; VirtualBox asserts).
 * - Head: software's; a value at or past the ring's size is ignored (QEMU keeps any value).
 * - Tail: ignored while the log runs or when at or past the size; otherwise software may set it (Linux
 *   writes 0 before enabling). With Head and Tail always inside the ring (a base write, the only way to
 *   change the size, resets both), the unit never sees an out-of-range pointer.
 *
 * Contract: a LogRing installs the write hooks of its Base, Head and Tail registers (the unit must not
 * hook them); the unit's Control write hook calls {@link LogRing.controlChanged}; the log on top calls
 * {@link LogRing.append}. Status bits are signalled through {@link UnitInterrupts}. The GA log (8-byte
 * entries, its own pointer mask) is not a LogRing yet.
 */
import type { AccessCounter, MemoryBus, RegisterFile } from '@iommukit/core';
import { EVENT_BYTES, EVENT_WORDS } from './events.js';
import {
  CTRL_EVENT_LOG_EN,
  CTRL_IOMMU_EN,
  CTRL_PPR_LOG_EN,
  fieldMask,
  LOG_HI_LEN,
  LOG_LEN_MIN,
  REG,
  STATUS_EVT_LOG_INT,
  STATUS_EVT_LOG_RUN,
  STATUS_EVT_OVERFLOW,
  STATUS_PPR_INT,
  STATUS_PPR_LOG_RUN,
  STATUS_PPR_OVERFLOW,
} from './regs.js';
import type { UnitInterrupts } from './unit-interrupts.js';

/** Where one log's registers and bits are. */
export interface LogRingLayout {
  /** For messages and traces: `event log`. */
  readonly name: string;
  /** Base Address Register (low half; the high half is at +4), Head and Tail Pointer Registers. */
  readonly base: number;
  readonly head: number;
  readonly tail: number;
  /** The Control (low half) bit enabling the log. */
  readonly enable: number;
  /** Status bits: running (read-only), overflow and record-written interrupt (RW1C). */
  readonly run: number;
  readonly overflow: number;
  readonly interrupt: number;
}

export const EVENT_LOG_LAYOUT: LogRingLayout = {
  name: 'event log',
  base: REG.EVT_LOG_BASE,
  head: REG.EVT_HEAD,
  tail: REG.EVT_TAIL,
  enable: CTRL_EVENT_LOG_EN,
  run: STATUS_EVT_LOG_RUN,
  overflow: STATUS_EVT_OVERFLOW,
  interrupt: STATUS_EVT_LOG_INT,
};

export const PPR_LOG_LAYOUT: LogRingLayout = {
  name: 'PPR log',
  base: REG.PPR_LOG_BASE,
  head: REG.PPR_HEAD,
  tail: REG.PPR_TAIL,
  enable: CTRL_PPR_LOG_EN,
  run: STATUS_PPR_LOG_RUN,
  overflow: STATUS_PPR_OVERFLOW,
  interrupt: STATUS_PPR_INT,
};

/**
 * What became of a record: written at Tail; dropped because the log is not running or its overflow bit is
 * set; dropped because the ring was full (the overflow bit is now set); lost to a bus abort.
 */
export type AppendOutcome = 'written' | 'stopped' | 'full' | 'aborted';

export interface LogRingInit {
  readonly regs: RegisterFile;
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  readonly layout: LogRingLayout;
  readonly interrupts: UnitInterrupts;
}

/** Base address bits 31:12 in the low half, 51:32 in the high half. */
const BASE_LO = 0xffff_f000;
const BASE_HI = 0x000f_ffff;
const LEN_MASK = fieldMask(LOG_HI_LEN);

/** The ring's size in bytes for a Length field, 0 for a reserved one. */
function ringBytes(length: number): number {
  // The field has 4 bits: 15 (LOG_LEN_MAX) is its largest value.
  return length >= LOG_LEN_MIN ? EVENT_BYTES * 2 ** length : 0;
}

export class LogRing {
  /** Records written; dropped while stopped; dropped because full (each sets the overflow bit); aborted. */
  written = 0;
  stopped = 0;
  overflows = 0;
  aborted = 0;
  /** Byte offset of the last record written. */
  lastOffset = 0;
  readonly layout: LogRingLayout;
  private readonly regs: RegisterFile;
  private readonly bus: MemoryBus;
  private readonly counter: AccessCounter;
  private readonly interrupts: UnitInterrupts;

  constructor(init: LogRingInit) {
    const { regs, layout } = init;
    this.regs = regs;
    this.bus = init.bus;
    this.counter = init.counter;
    this.layout = layout;
    this.interrupts = init.interrupts;
    regs.onWrite(layout.base, (value, old) => this.baseWritten(layout.base, value, old));
    regs.onWrite(layout.base + 4, (value, old) => this.baseWritten(layout.base + 4, value, old));
    regs.onWrite(layout.head, (value, old) => {
      if (value >= this.size) regs.set(layout.head, old);
    });
    regs.onWrite(layout.tail, (value, old) => {
      if (this.running || value >= this.size) regs.set(layout.tail, old);
    });
  }

  /** Status.*Run. */
  get running(): boolean {
    return (this.regs.get(REG.STATUS) & this.layout.run) !== 0;
  }

  /** The ring's size in bytes (0 while Length is reserved, as after reset). */
  get size(): number {
    return ringBytes((this.regs.get(this.layout.base + 4) & LEN_MASK) >>> LOG_HI_LEN.lsb);
  }

  /** The ring's physical address. */
  get address(): number {
    const { regs, layout } = this;
    return (regs.get(layout.base + 4) & BASE_HI) * 2 ** 32 + ((regs.get(layout.base) & BASE_LO) >>> 0);
  }

  /** Control (low half) changed from `old` to `control`: the log starts or stops. */
  controlChanged(control: number, old: number): void {
    const on = this.enabledBy(control);
    if (on === this.enabledBy(old)) return;
    const status = this.regs.get(REG.STATUS);
    if (on && this.size !== 0) this.regs.set(REG.STATUS, status | this.layout.run);
    else if (!on) this.regs.set(REG.STATUS, status & ~this.layout.run);
  }

  /** Appends the record in `words[0..3]` at Tail (the hot path: nothing is allocated). */
  append(words: Uint32Array): AppendOutcome {
    const { regs, layout } = this;
    const status = regs.get(REG.STATUS);
    if ((status & layout.run) === 0 || (status & layout.overflow) !== 0) {
      this.stopped++;
      return 'stopped';
    }
    const size = this.size;
    const tail = regs.get(layout.tail);
    const next = (tail + EVENT_BYTES) % size;
    if (next === regs.get(layout.head)) {
      this.overflows++;
      regs.set(REG.STATUS, status & ~layout.run);
      this.interrupts.signal(layout.overflow);
      return 'full';
    }
    if (!this.bus.writeWords(this.address + tail, words, EVENT_WORDS, this.counter)) {
      this.aborted++;
      return 'aborted';
    }
    regs.set(layout.tail, next);
    this.lastOffset = tail;
    this.written++;
    this.interrupts.signal(layout.interrupt);
    return 'written';
  }

  private enabledBy(control: number): boolean {
    return (control & CTRL_IOMMU_EN) !== 0 && (control & this.layout.enable) !== 0;
  }

  private baseWritten(offset: number, value: number, old: number): void {
    const { regs, layout } = this;
    const reservedLength = offset !== layout.base && ringBytes((value & LEN_MASK) >>> LOG_HI_LEN.lsb) === 0;
    if (this.running || reservedLength) {
      regs.set(offset, old);
      return;
    }
    regs.set(layout.head, 0);
    regs.set(layout.tail, 0);
  }
}
