/**
 * The SMMU-produced queues: the Event queue (SMMUv3 §3.5.3, §7.2, §7.4) and the PRI queue (§8, §8.1,
 * §8.2). The SMMU writes an entry at PROD.WR and then advances PROD, so an entry is never visible before
 * the index covers it (§3.5.2); software consumes by writing CONS.
 *
 * Writable (§7.2.1, §8.2): the queue is enabled — CR0ACK.EVENTQEN; for the PRI queue the effective PRIQEN,
 * CR0ACK.PRIQEN and CR0ACK.SMMUEN (§6.3.9.5) — no GERROR.<queue>_ABT_ERR is active, and it is not full. The
 * PRI queue is also unwritable while its overflow condition is active (§8.1); the Event queue is not (§7.4).
 *
 * A record that cannot be written is discarded. Only a discard because the queue is full is an overflow:
 * PROD.OVFLG toggles if no overflow condition (PROD.OVFLG != CONS.OVACKFLG) is present (§7.4, §8.1), and
 * software acknowledges by copying OVFLG into CONS.OVACKFLG. Stall event records never overflow: the
 * caller passes `stall` and keeps the record until the queue is writable again (§3.5.3, §7.4).
 *
 * A write that aborts activates GERROR.EVENTQ_ABT_ERR / PRIQ_ABT_ERR, which stops delivery until software
 * acknowledges it (§7.5). The abort is synchronous here (§7.2.2 lets the implementation choose): PROD does
 * not advance past the entry, so every entry below PROD stays valid.
 *
 * Interrupts (§3.18.2, §6.3.36): the Event queue's fires when the queue goes from empty to non-empty; the
 * PRI queue's too, unless PRIQ_IRQ_CFG2.LO == 1: then it fires for each entry with Last == 1 — written, or
 * discarded because of an overflow, but not discarded for another reason.
 *
 * The caller does what the architecture makes of a discard: e.g. PRG auto-responses for the PRI queue
 * (§8.1: Success for a Last request lost to overflow; §8.2: Response Failure when disabled or after an
 * abort), using the `reason` of the {@link RecordOutcome}.
 */
import type { AccessCounter, MemoryBus, RegisterFile } from '@iommukit/core';
import { EVENT_WORDS } from './events.js';
import type { Smmuv3Features } from './features.js';
import type { SmmuInterrupts } from './interrupts.js';
import { decodePriEntry, PRI_ENTRY_WORDS } from './priq.js';
import {
  decodeQueueBase,
  EVENTQ_ENTRY_BYTES,
  PRIQ_ENTRY_BYTES,
  queueEmpty,
  queueEntryAddress,
  queueFull,
  queueIncrement,
  queueIndex,
  queueOverflowPending,
  queueRecordOverflow,
  queueUsed,
} from './queue-index.js';
import {
  CR0_EVENTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  GERROR_EVENTQ_ABT_ERR,
  GERROR_PRIQ_ABT_ERR,
  PRIQ_IRQ_CFG2_LO,
  REG,
} from './regs.js';

export type OutputQueueKind = 'eventq' | 'priq';

/** Why a record cannot be written now. */
export type OutputQueueBlock = 'disabled' | 'abort-active' | 'overflow-active' | 'full';

export type RecordOutcome =
  | { readonly recorded: true; readonly index: number; readonly address: number }
  | {
      readonly recorded: false;
      /** `write-abort`: the write aborted (GERROR.<queue>_ABT_ERR is now active). */
      readonly reason: OutputQueueBlock | 'write-abort';
      /** This discard toggled PROD.OVFLG (entered the overflow condition). */
      readonly overflowed: boolean;
    };

export interface RecordOptions {
  /** An Event queue record of a stalled transaction: never discarded into an overflow (§7.4). */
  readonly stall?: boolean;
}

interface QueueSpec {
  readonly base: number;
  readonly prod: number;
  readonly cons: number;
  readonly entryBytes: number;
  readonly entryWords: number;
  /** CR0ACK bits that must all be set. */
  readonly enable: number;
  readonly abortError: number;
  readonly maxLog2: (f: Smmuv3Features) => number;
}

const SPECS: Readonly<Record<OutputQueueKind, QueueSpec>> = {
  eventq: {
    base: REG.EVENTQ_BASE,
    prod: REG.EVENTQ_PROD,
    cons: REG.EVENTQ_CONS,
    entryBytes: EVENTQ_ENTRY_BYTES,
    entryWords: EVENT_WORDS,
    enable: CR0_EVENTQEN,
    abortError: GERROR_EVENTQ_ABT_ERR,
    maxLog2: (f) => f.evtqLog2,
  },
  priq: {
    base: REG.PRIQ_BASE,
    prod: REG.PRIQ_PROD,
    cons: REG.PRIQ_CONS,
    entryBytes: PRIQ_ENTRY_BYTES,
    entryWords: PRI_ENTRY_WORDS,
    // The effective PRIQEN is 0 while SMMUEN is 0 (§6.3.9.5).
    enable: CR0_PRIQEN | CR0_SMMUEN,
    abortError: GERROR_PRIQ_ABT_ERR,
    maxLog2: (f) => f.priqLog2,
  },
};

export interface OutputQueueInit {
  readonly kind: OutputQueueKind;
  readonly regs: RegisterFile;
  readonly bus: MemoryBus;
  readonly features: Smmuv3Features;
  readonly interrupts: SmmuInterrupts;
  /** Counts the queue writes on the bus. */
  readonly counter: AccessCounter;
}

export class OutputQueue {
  readonly kind: OutputQueueKind;
  recorded = 0;
  /** Discards by reason (stall records kept back by the caller are counted in `deferred`). */
  readonly dropped: Record<OutputQueueBlock | 'write-abort', number> = {
    disabled: 0,
    'abort-active': 0,
    'overflow-active': 0,
    full: 0,
    'write-abort': 0,
  };
  /** Times PROD.OVFLG toggled. */
  overflows = 0;
  /** Stall records refused because the queue was not writable. */
  deferred = 0;
  private readonly spec: QueueSpec;
  private readonly init: OutputQueueInit;

  constructor(init: OutputQueueInit) {
    this.kind = init.kind;
    this.spec = SPECS[init.kind];
    this.init = init;
  }

  /** Why a record cannot be written now, or undefined when the queue is writable. */
  blocked(): OutputQueueBlock | undefined {
    const { regs, interrupts } = this.init;
    const { enable, abortError, prod, cons } = this.spec;
    if ((regs.get(REG.CR0ACK) & enable) !== enable) return 'disabled';
    if ((interrupts.activeErrors() & abortError) !== 0) return 'abort-active';
    const p = regs.get(prod);
    const c = regs.get(cons);
    if (this.kind === 'priq' && queueOverflowPending(p, c)) return 'overflow-active';
    return queueFull(p, c, this.geometry().log2) ? 'full' : undefined;
  }

  /** Whether a record would be written now. */
  writable(): boolean {
    return this.blocked() === undefined;
  }

  /** Entries written and not yet consumed. */
  pending(): number {
    const { regs } = this.init;
    return queueUsed(regs.get(this.spec.prod), regs.get(this.spec.cons), this.geometry().log2);
  }

  /** Whether the overflow condition is present (PROD.OVFLG != CONS.OVACKFLG). */
  overflowPending(): boolean {
    const { regs } = this.init;
    return queueOverflowPending(regs.get(this.spec.prod), regs.get(this.spec.cons));
  }

  /**
   * Writes one entry (8 words for an event record, 4 for a PRI queue entry) at PROD, advances PROD and
   * signals the queue's interrupt; or discards it as the module comment describes.
   */
  record(words: ArrayLike<number>, options: RecordOptions = {}): RecordOutcome {
    const { regs, bus, counter, interrupts } = this.init;
    const spec = this.spec;
    if (words.length !== spec.entryWords) {
      throw new RangeError(`a ${this.kind} entry is ${spec.entryWords} words, not ${words.length}`);
    }
    const last = this.kind === 'priq' && decodePriEntry(words).last;
    const block = this.blocked();
    if (block !== undefined) {
      if (options.stall === true) {
        this.deferred++;
        return { recorded: false, reason: block, overflowed: false };
      }
      let overflowed = false;
      if (block === 'full') {
        const prod = regs.get(spec.prod);
        const next = queueRecordOverflow(prod, regs.get(spec.cons));
        overflowed = next !== prod;
        if (overflowed) {
          regs.set(spec.prod, next);
          this.overflows++;
        }
      }
      this.dropped[block]++;
      // PRIQ_IRQ_CFG2.LO: a Last request discarded because of an overflow still interrupts (§6.3.36).
      if (last && this.lastOnly() && (block === 'full' || block === 'overflow-active')) {
        interrupts.signal('priq');
      }
      return { recorded: false, reason: block, overflowed };
    }
    const { base, log2 } = this.geometry();
    const prod = regs.get(spec.prod);
    const address = queueEntryAddress(base, prod, log2, spec.entryBytes);
    if (!bus.writeWords(address, words, spec.entryWords, counter)) {
      this.dropped['write-abort']++;
      interrupts.raiseGlobalError(spec.abortError);
      return { recorded: false, reason: 'write-abort', overflowed: false };
    }
    const wasEmpty = queueEmpty(prod, regs.get(spec.cons), log2);
    regs.set(spec.prod, queueIncrement(prod, log2));
    this.recorded++;
    if (this.lastOnly() ? last : wasEmpty) interrupts.signal(this.kind);
    return { recorded: true, index: queueIndex(prod, log2), address };
  }

  /**
   * Enters the overflow condition as a discard on a full queue would (PROD.OVFLG toggles unless an
   * overflow is already pending): for a vSMMU whose host reported lost events. Returns whether it toggled.
   */
  markOverflow(): boolean {
    const { regs } = this.init;
    const prod = regs.get(this.spec.prod);
    const next = queueRecordOverflow(prod, regs.get(this.spec.cons));
    if (next === prod) return false;
    regs.set(this.spec.prod, next);
    this.overflows++;
    return true;
  }

  stats(): Readonly<Record<string, number>> {
    const k = this.kind;
    return {
      [`${k}Recorded`]: this.recorded,
      [`${k}Dropped`]: Object.values(this.dropped).reduce((a, b) => a + b, 0),
      [`${k}DroppedFull`]: this.dropped.full,
      [`${k}DroppedDisabled`]: this.dropped.disabled,
      [`${k}DroppedAbort`]: this.dropped['abort-active'] + this.dropped['write-abort'],
      [`${k}DroppedOverflow`]: this.dropped['overflow-active'],
      [`${k}Overflows`]: this.overflows,
      [`${k}Deferred`]: this.deferred,
    };
  }

  private lastOnly(): boolean {
    return this.kind === 'priq' && (this.init.regs.get(REG.PRIQ_IRQ_CFG2) & PRIQ_IRQ_CFG2_LO) !== 0;
  }

  private geometry(): { base: number; log2: number } {
    const { regs, features } = this.init;
    const spec = this.spec;
    return decodeQueueBase(
      regs.get(spec.base),
      regs.get(spec.base + 4),
      spec.maxLog2(features),
      spec.entryBytes,
    );
  }
}
