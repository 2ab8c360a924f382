/**
 * The Command queue consumer (SMMUv3 §3.5.1, §4.1.2–4.1.4, §4.7.3, §6.3.9.3, §6.3.26–6.3.28, §7.1).
 *
 * Commands are processed from CMDQ_CONS towards CMDQ_PROD while CR0ACK.CMDQEN == 1 and GERROR.CMDQ_ERR is
 * inactive (§4.1.2). Each entry is read from the queue in memory, decoded (`decodeCommand`, CERROR_ILL)
 * and handed to the device's `execute`, which performs it (cache invalidation, PRI responses, ...) and may
 * fail it with CERROR_ABT or, for a CMD_SYNC, CERROR_ATC_INV_SYNC. CONS advances past each command as it
 * completes; execution is synchronous, so a CMD_SYNC finds everything before it complete.
 *
 * Errors (§4.1.3, §7.1): consumption stops at the first error with CONS.RD still on the offending command
 * (a fetch abort never advances it), CONS.ERR takes the reason code, then GERROR.CMDQ_ERR is activated —
 * in that order, so the code is visible once the error is. Nothing after the command runs. Software fixes
 * or replaces the entry (or moves PROD back to CONS) and acknowledges CMDQ_ERR in GERRORN; processing then
 * resumes from CONS.RD with the entry re-fetched, without a PROD write being needed (§7.1, §6.3.28). This
 * model clears ERR to CERROR_NONE when the next command is consumed (ERR is UNKNOWN while no error is
 * active, §6.3.28).
 *
 * CMD_SYNC completion (§4.7.3): CONS moves past it first, then its signal goes out, so the signal is never
 * observable before the consumption. CS == SIG_IRQ: the CMD_SYNC wired line, plus an MSI of MSIData to
 * MSIAddress with MSIs (see {@link SmmuInterrupts.signalSync}); SIG_SEV: a WFE wake-up event only when
 * IDR0.SEV == 1, otherwise the same as SIG_NONE (§4.7.3). A CMD_SYNC that fails with CERROR_ATC_INV_SYNC
 * is not consumed and sends no signal.
 *
 * WFE wake-up events (IDR0.SEV == 1): CMD_SYNC SIG_SEV, and consuming a command from a full queue — its
 * PROD/CONS showed software it was full — (§4.1.2) send one: counted, and handed to `onWakeup`, which the
 * device connects to the system's event signal (the PEs' event registers).
 *
 * Step mode (for tests that interleave hardware fetches with driver writes): `consume()` does nothing and
 * each `step()` processes exactly one command.
 */
import type { AccessCounter, MemoryBus, RegisterFile } from '@iommukit/core';
import { CMD_SYNC_CS, CMD_WORDS, type Command, decodeCommand } from './commands.js';
import type { Smmuv3Features } from './features.js';
import type { SmmuInterrupts } from './interrupts.js';
import {
  CMDQ_ENTRY_BYTES,
  cmdqConsWithError,
  decodeQueueBase,
  queueEmpty,
  queueEntryAddress,
  queueFull,
  queueIncrement,
  queueIndex,
  queueUsed,
} from './queue-index.js';
import {
  CERROR_ABT,
  CERROR_ATC_INV_SYNC,
  CERROR_ILL,
  CERROR_NONE,
  CR0_CMDQEN,
  GERROR_CMDQ_ERR,
  REG,
} from './regs.js';

/** What the device reports after performing a command. */
export type CommandOutcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** ILL: the executor found the command illegal after decoding (a vSMMU whose host refused it). */
      readonly error: CommandQueueErrorName;
      readonly reason?: string;
    };

/** Performs one decoded command (CMD_SYNC included: it is where ATC invalidation timeouts surface). */
export type CommandExecutor = (command: Command) => CommandOutcome;

export type CommandQueueErrorName = 'ILL' | 'ABT' | 'ATC_INV_SYNC';

const ERROR_CODE: Readonly<Record<CommandQueueErrorName, number>> = {
  ILL: CERROR_ILL,
  ABT: CERROR_ABT,
  ATC_INV_SYNC: CERROR_ATC_INV_SYNC,
};

/** The result of trying to process one command. */
export type CommandStep =
  | { readonly kind: 'consumed'; readonly command: Command; readonly index: number }
  | {
      readonly kind: 'error';
      readonly error: CommandQueueErrorName;
      readonly index: number;
      /** Decode failure reason (ILL only). */
      readonly reason?: string;
    }
  | { readonly kind: 'idle'; readonly why: 'disabled' | 'error-active' | 'empty' | 'busy' };

export interface CommandQueueInit {
  readonly regs: RegisterFile;
  readonly bus: MemoryBus;
  readonly features: Smmuv3Features;
  readonly interrupts: SmmuInterrupts;
  readonly execute: CommandExecutor;
  /** Counts the queue reads on the bus. */
  readonly counter: AccessCounter;
  /** IDR0.SEV: CMD_SYNC SIG_SEV and a queue leaving full send a WFE wake-up event (default false). */
  readonly sev?: boolean;
  /** Receives each WFE wake-up event (IDR0.SEV == 1 only). */
  readonly onWakeup?: () => void;
}

export class CommandQueue {
  /** When set, `consume()` does nothing and only `step()` processes commands. */
  stepMode = false;
  commandsExecuted = 0;
  syncs = 0;
  syncIrqs = 0;
  /** WFE wake-up events sent: CMD_SYNC SIG_SEV and the queue leaving full (IDR0.SEV == 1 only). */
  sevEvents = 0;
  readonly errors: Record<CommandQueueErrorName, number> = { ILL: 0, ABT: 0, ATC_INV_SYNC: 0 };
  private readonly init: CommandQueueInit;
  private readonly words = new Uint32Array(CMD_WORDS);
  private busy = false;
  /** consume() was called while a command was running (a PROD, GERRORN or CR0 write from inside it). */
  private kicked = false;

  constructor(init: CommandQueueInit) {
    this.init = init;
  }

  /**
   * Processes commands until the queue is empty, an error stops it, or it is disabled. The device calls
   * this after a CMDQ_PROD write, a GERRORN write (acknowledging CMDQ_ERR restarts processing, §7.1) and an
   * Update of CR0.CMDQEN to 1 (§6.3.9.3). Does nothing in step mode. Returns the commands consumed.
   */
  consume(): number {
    if (this.stepMode) return 0;
    if (this.busy) {
      // Re-entered from inside a command (execute() or an MSI wrote a register): the running loop or
      // step() picks the new state up when that command is done.
      this.kicked = true;
      return 0;
    }
    let consumed = 0;
    try {
      while (this.runOne().kind === 'consumed') consumed++;
    } finally {
      this.kicked = false;
    }
    return consumed;
  }

  /** Processes exactly one command, if the queue can be processed now (step mode or not). */
  step(): CommandStep {
    if (this.busy) {
      this.kicked = true;
      return { kind: 'idle', why: 'busy' };
    }
    const result = this.runOne();
    // Something published while the command ran (outside step mode): process it now, as the loop would.
    if (this.kicked) this.consume();
    return result;
  }

  /** Why the queue cannot be processed now, or undefined if a command is waiting. */
  blocked(): 'disabled' | 'error-active' | 'empty' | undefined {
    const { regs, interrupts } = this.init;
    if ((regs.get(REG.CR0ACK) & CR0_CMDQEN) === 0) return 'disabled';
    if ((interrupts.activeErrors() & GERROR_CMDQ_ERR) !== 0) return 'error-active';
    const { log2 } = this.geometry();
    return queueEmpty(regs.get(REG.CMDQ_PROD), regs.get(REG.CMDQ_CONS), log2) ? 'empty' : undefined;
  }

  /** Commands between CONS and PROD (produced, not yet consumed). */
  pending(): number {
    const { regs } = this.init;
    return queueUsed(regs.get(REG.CMDQ_PROD), regs.get(REG.CMDQ_CONS), this.geometry().log2);
  }

  stats(): Readonly<Record<string, number>> {
    return {
      commandsExecuted: this.commandsExecuted,
      syncs: this.syncs,
      syncIrqs: this.syncIrqs,
      sevEvents: this.sevEvents,
      cmdqErrIll: this.errors.ILL,
      cmdqErrAbt: this.errors.ABT,
      cmdqErrAtcInvSync: this.errors.ATC_INV_SYNC,
    };
  }

  private geometry(): { base: number; log2: number } {
    const { regs, features } = this.init;
    return decodeQueueBase(
      regs.get(REG.CMDQ_BASE),
      regs.get(REG.CMDQ_BASE + 4),
      features.cmdqLog2,
      CMDQ_ENTRY_BYTES,
    );
  }

  private runOne(): CommandStep {
    this.busy = true;
    try {
      return this.processOne();
    } finally {
      this.busy = false;
    }
  }

  private processOne(): CommandStep {
    const why = this.blocked();
    if (why !== undefined) return { kind: 'idle', why };
    const { regs, bus, features, counter } = this.init;
    const { base, log2 } = this.geometry();
    const cons = regs.get(REG.CMDQ_CONS);
    const index = queueIndex(cons, log2);
    const address = queueEntryAddress(base, cons, log2, CMDQ_ENTRY_BYTES);
    if (!bus.readWords(address, this.words, CMD_WORDS, counter)) return this.fail('ABT', index);
    const decoded = decodeCommand(this.words, features);
    if (!decoded.ok) return this.fail('ILL', index, decoded.reason);
    const { command } = decoded;
    const outcome = this.init.execute(command);
    if (!outcome.ok) return this.fail(outcome.error, index, outcome.reason);
    // Consumed: CONS passes the command (and ERR, UNKNOWN with no error active, reads CERROR_NONE).
    const current = regs.get(REG.CMDQ_CONS);
    const wasFull = queueFull(regs.get(REG.CMDQ_PROD), current, log2);
    regs.set(REG.CMDQ_CONS, queueIncrement(cmdqConsWithError(current, CERROR_NONE), log2));
    this.commandsExecuted++;
    // §4.1.2: a queue software could see full has room again.
    if (wasFull) this.wakeup();
    if (command.op === 'SYNC') this.completeSync(command.cs, command.msiAddress, command.msiData);
    return { kind: 'consumed', command, index };
  }

  /** §4.7.3: the completion signal, after the CMD_SYNC's consumption is visible in CONS. */
  private completeSync(cs: number, msiAddress: number, msiData: number): void {
    this.syncs++;
    if (cs === CMD_SYNC_CS.IRQ) {
      this.syncIrqs++;
      this.init.interrupts.signalSync(msiAddress, msiData);
    } else if (cs === CMD_SYNC_CS.SEV) {
      this.wakeup();
    }
  }

  /** A WFE wake-up event to the PEs, when the SMMU and system support them (IDR0.SEV, §6.3.1). */
  private wakeup(): void {
    if (this.init.sev !== true) return;
    this.sevEvents++;
    this.init.onWakeup?.();
  }

  /** §7.1: RD stays on the command, ERR takes the code, then CMDQ_ERR activates. */
  private fail(error: CommandQueueErrorName, index: number, reason?: string): CommandStep {
    const { regs, interrupts } = this.init;
    regs.set(REG.CMDQ_CONS, cmdqConsWithError(regs.get(REG.CMDQ_CONS), ERROR_CODE[error]));
    this.errors[error]++;
    interrupts.raiseGlobalError(GERROR_CMDQ_ERR);
    return reason === undefined ? { kind: 'error', error, index } : { kind: 'error', error, index, reason };
  }
}
