/**
 * The driver's side of the SMMUv3 Command queue (SMMUv3 §3.5, §4, §7.1; Linux `arm_smmu_cmdq_*`): the
 * driver owns PROD, the SMMU owns CONS. Commands are 16-byte entries the driver writes into the queue in
 * its own memory at its copy of PROD; writing CMDQ_PROD hands them to the SMMU, and CMDQ_CONS reaching
 * PROD means they were all consumed.
 *
 * - Batches (Linux `arm_smmu_cmdq_batch`): at most 64 commands per CMDQ_PROD write; a full batch is
 *   issued without a CMD_SYNC, the last one of a submission ends with CMD_SYNC (completion is seen by
 *   polling CONS, as Linux does without MSI polling). A batch larger than the free space
 *   is split to fit: this model consumes synchronously on the PROD write, so the queue is empty again
 *   before the next piece (Linux refuses queues of 64 entries or fewer; this driver copes with them).
 * - Errors (§7.1, Linux `arm_smmu_cmdq_skip_err`): when CONS stops short of PROD with GERROR.CMDQ_ERR
 *   active, CONS.ERR says why and CONS.RD points at the command. CERROR_ILL: the command is replaced by a
 *   CMD_SYNC. CERROR_ABT (fetch abort) and CERROR_ATC_INV_SYNC (ATC invalidation timeout, CONS on the
 *   CMD_SYNC): retried as Linux does, a few times; a command that keeps failing is replaced by a CMD_SYNC
 *   (ABT) or the rest of the batch is abandoned by moving PROD back to CONS (ATC_INV_SYNC). Only CMDQ_ERR
 *   is acknowledged in GERRORN (toggled to match GERROR), which restarts consumption. The submission runs
 *   to the end (the queue is recovered) and then fails with `EIO` naming the command(s) that failed.
 * - Bounds (Linux ARM_SMMU_POLL_TIMEOUT_US): every wait on CONS is at most POLL_LIMIT polls and then
 *   fails with `ETIMEDOUT` ("CMD_SYNC timeout"), whatever the SMMU (or a guest behind it) keeps doing.
 * - WFE (Linux `queue_poll`): with IDR0.SEV the CMD_SYNCs ask for SIG_SEV and the driver waits between two
 *   polls of CONS with WFE, which an SMMU wake-up event on the system's event signal ends at once (the
 *   event register was set) — otherwise the event stream or the bound ends it; without IDR0.SEV it spins
 *   (cpu_relax). The waits are counted: the model consumes synchronously, so nothing else happens in them.
 */
import {
  type AccessCounter,
  BoundedLog,
  IommufdError,
  type IrqLine,
  type ITracer,
  type MemoryBus,
  type MmioWindow,
  POLL_LIMIT,
  pollTimeout,
  toHex,
} from '@iommukit/core';
import { CFGI_ALL_RANGE, CMD_OPCODE, CMD_SYNC_CS, CMD_WORDS, encodeCmdSync } from '../hw/commands.js';
import {
  CMDQ_ENTRY_BYTES,
  cmdqConsError,
  queueCapacity,
  queueEmpty,
  queueFree,
  queueIncrement,
  queueIndex,
} from '../hw/queue-index.js';
import {
  CERROR_ABT,
  CERROR_ATC_INV_SYNC,
  CERROR_ILL,
  CERROR_NONE,
  GERROR_CMDQ_ERR,
  Q_BASE_HI_ALLOC,
  REG,
} from '../hw/regs.js';

/** Commands per CMDQ_PROD write (Linux CMDQ_BATCH_ENTRIES). */
export const CMDQ_BATCH_ENTRIES = 64;
/** The largest Command queue this driver allocates, as log2 of entries (256 entries, one 4 KiB page). */
export const CMDQ_MAX_LOG2 = 8;
/** Times a fetch abort or an ATC invalidation timeout is retried before the driver gives up on it. */
export const CMDQ_ERROR_RETRIES = 2;

const CERROR_NAMES: Readonly<Record<number, string>> = {
  [CERROR_NONE]: 'CERROR_NONE',
  [CERROR_ILL]: 'CERROR_ILL',
  [CERROR_ABT]: 'CERROR_ABT',
  [CERROR_ATC_INV_SYNC]: 'CERROR_ATC_INV_SYNC',
};

const NAME_BY_OPCODE: ReadonlyMap<number, string> = new Map(
  Object.entries(CMD_OPCODE).map(([name, opcode]) => [opcode, name]),
);

/** `CMD_<name>` of an encoded command (CMD_CFGI_ALL for CFGI_STE_RANGE with Range 31). */
export function commandLabel(words: ArrayLike<number>): string {
  const opcode = words[0]! & 0xff;
  if (opcode === CMD_OPCODE.CFGI_STE_RANGE && (words[2]! & 0x1f) === CFGI_ALL_RANGE) return 'CMD_CFGI_ALL';
  const name = NAME_BY_OPCODE.get(opcode);
  return name === undefined ? `opcode ${toHex(opcode)}` : `CMD_${name}`;
}

/** A command the SMMU refused, as the driver reports it. */
export interface CommandFailure {
  readonly command: string;
  readonly error: string;
  /** Queue index the command sat at. */
  readonly index: number;
  readonly words: readonly number[];
  /** What the driver did about it. */
  readonly action: 'replaced-with-sync' | 'retried' | 'abandoned';
}

export interface CmdqInit {
  readonly instance: string;
  readonly regs: MmioWindow;
  readonly bus: MemoryBus;
  /** The driver's counter: queue writes are its memory accesses. */
  readonly counter: AccessCounter;
  /** Physical address of the queue, aligned to its size. */
  readonly base: number;
  /** log2 of the entries. */
  readonly log2: number;
  readonly tracer?: ITracer;
  /** IDR0.SEV: the system's WFE wake-up event signal, which the SMMU raises; absent: no WFE. */
  readonly wfeEvents?: IrqLine;
}

export class Smmuv3Cmdq {
  readonly base: number;
  readonly log2: number;
  readonly capacity: number;
  /** CMD_SYNCs issued. */
  syncs = 0;
  /** Entries written (CMD_SYNCs included). */
  entries = 0;
  /** CMDQ_PROD writes. */
  prodWrites = 0;
  /** Commands the SMMU reported in error. */
  errors = 0;
  /** Waits between polls: WFEs (IDR0.SEV), those an SMMU wake-up event ended, and spins (no SEV). */
  wfes = 0;
  wfeWakeups = 0;
  spins = 0;
  /** Entries written, by command name (`CMD_TLBI_NH_VA` → count). */
  readonly issued = new Map<string, number>();
  /**
   * Commands refused so far, oldest first: the first ones up to the log's capacity, the rest counted in
   * `failures.lost` (a guest can make every command fail, forever).
   */
  readonly failures = new BoundedLog<CommandFailure>();
  /** The commands refused since the last submission began. */
  private submissionFailures: CommandFailure[] = [];
  private readonly init: CmdqInit;
  /** The driver's copy of PROD and its last view of CONS (index and wrap bits only). */
  private prod = 0;
  private cons = 0;
  private disabled = false;
  /** SIG_SEV asks for a wake-up event at completion (Linux's CMD_SYNC without MSI polling). */
  private readonly sync: Uint32Array;
  /** The event signal's count when the last WFE looked: a higher count is a set event register. */
  private eventsSeen: number;
  private readonly scratch = new Uint32Array(CMD_WORDS);

  constructor(init: CmdqInit) {
    this.init = init;
    this.base = init.base;
    this.log2 = init.log2;
    this.capacity = queueCapacity(init.log2);
    this.sync = encodeCmdSync({ cs: init.wfeEvents ? CMD_SYNC_CS.SEV : CMD_SYNC_CS.NONE });
    this.eventsSeen = init.wfeEvents?.raised ?? 0;
  }

  /** The CMDQ_BASE value: address, LOG2SIZE and RA (read-allocate, as Linux's Q_BASE_RWA). */
  get baseRegister(): bigint {
    return (BigInt(Q_BASE_HI_ALLOC) << 32n) | BigInt(this.base) | BigInt(this.log2);
  }

  /** The commands the SMMU refused since the last submission began, in order (retried ones included). */
  get lastFailures(): readonly CommandFailure[] {
    return this.submissionFailures;
  }

  /** The driver's PROD (what it last wrote to CMDQ_PROD). */
  get producer(): number {
    return this.prod;
  }

  /** Programs CMDQ_BASE, CMDQ_PROD and CMDQ_CONS (CMDQEN must be 0) and empties the driver's copy. */
  program(): void {
    const { regs } = this.init;
    this.prod = 0;
    this.cons = 0;
    regs.write64(REG.CMDQ_BASE, this.baseRegister);
    regs.write32(REG.CMDQ_PROD, this.prod);
    regs.write32(REG.CMDQ_CONS, this.cons);
  }

  /**
   * The SMMU was shut down: submissions do nothing from now on (there is nothing left to invalidate, and
   * CMDQEN is 0, so nothing would be consumed).
   */
  disable(): void {
    this.disabled = true;
  }

  /** Issues one command, followed by a CMD_SYNC unless `sync` is false. */
  issue(command: Uint32Array, sync = true): void {
    this.submit([command], sync);
  }

  /** A Linux-style batch: `add` issues every 64 commands without a sync, `submit` issues the rest with one. */
  batch(): CmdqBatch {
    return new CmdqBatch(this);
  }

  /**
   * Issues `commands` in batches of at most 64 per CMDQ_PROD write, the last one followed by a CMD_SYNC
   * unless `sync` is false, and waits for each to be consumed. Throws `EIO` after the whole submission if
   * the SMMU refused any command (see the module comment for the recovery).
   */
  submit(commands: readonly Uint32Array[], sync = true): void {
    if (this.disabled) return;
    this.submissionFailures = [];
    if (commands.length === 0) {
      if (sync) this.issueChunk([this.sync]);
    } else {
      for (let i = 0; i < commands.length; i += CMDQ_BATCH_ENTRIES) {
        const chunk = commands.slice(i, i + CMDQ_BATCH_ENTRIES);
        if (sync && i + CMDQ_BATCH_ENTRIES >= commands.length) chunk.push(this.sync);
        this.issueChunk(chunk);
      }
    }
    // A retry that then went through is not a failure of the submission.
    const failed = this.submissionFailures.filter((f) => f.action !== 'retried');
    if (failed.length > 0) {
      const what = failed.map((f) => `${f.command} at index ${f.index} (${f.error}, ${f.action})`).join('; ');
      const first = failed[0]!;
      throw new IommufdError('EIO', `${this.init.instance}: the SMMU refused ${what}`, {
        instance: this.init.instance,
        command: first.command,
        error: first.error,
        index: first.index,
      });
    }
  }

  /**
   * The GERROR handler's part (Linux `arm_smmu_cmdq_skip_err`): a CMDQ_ERR found active outside a
   * submission. Replaces an illegal command with a CMD_SYNC (fetch aborts and ATC timeouts are retried);
   * the caller acknowledges GERRORN. Returns the failure, if there was one.
   */
  skipError(): CommandFailure | undefined {
    const cons = this.init.regs.read32(REG.CMDQ_CONS);
    const code = cmdqConsError(cons);
    if (code === CERROR_NONE) return undefined;
    return this.recordFailure(cons, code === CERROR_ILL ? 'replaced-with-sync' : 'retried');
  }

  private issueChunk(entries: readonly Uint32Array[]): void {
    const { regs, bus, counter } = this.init;
    let offset = 0;
    while (offset < entries.length) {
      let free = queueFree(this.prod, this.cons, this.log2);
      if (free === 0) {
        // Full: look at CONS again (Linux polls until the SMMU frees space).
        this.pollWait();
        this.cons = this.position(regs.read32(REG.CMDQ_CONS));
        free = queueFree(this.prod, this.cons, this.log2);
        // Consumption is synchronous in the model: a queue still full now never drains (Linux
        // `arm_smmu_cmdq_poll_until_not_full` would time out).
        if (free === 0)
          throw pollTimeout(this.init.instance, 'CMDQ timeout: the queue is full and not draining');
      }
      const count = Math.min(free, entries.length - offset);
      const names: string[] = [];
      for (let i = 0; i < count; i++) {
        const words = entries[offset + i]!;
        const address = this.base + queueIndex(this.prod, this.log2) * CMDQ_ENTRY_BYTES;
        bus.writeWords(address, words, CMD_WORDS, counter);
        this.prod = queueIncrement(this.prod, this.log2);
        const name = commandLabel(words);
        this.issued.set(name, (this.issued.get(name) ?? 0) + 1);
        if (name === 'CMD_SYNC') this.syncs++;
        this.entries++;
        names.push(name);
      }
      regs.write32(REG.CMDQ_PROD, this.prod);
      this.prodWrites++;
      if (this.init.tracer?.enabled) {
        this.init.tracer.trace(
          'driver',
          this.init.instance,
          'cmdq.submit',
          `CMDQ_PROD ← ${toHex(this.prod)}: ${names.join(', ')}`,
        );
      }
      this.waitConsumed();
      offset += count;
    }
  }

  /**
   * Polls CMDQ_CONS until it reaches PROD, recovering from Command queue errors on the way, at most
   * POLL_LIMIT times: an error that recurs on every poll (software moved CMDQ_BASE behind the driver, so
   * the entry it replaced is not the one the SMMU fetches) ends in `ETIMEDOUT`, as Linux's CMD_SYNC poll
   * does after ARM_SMMU_POLL_TIMEOUT_US while its GERROR handler keeps skipping.
   */
  private waitConsumed(): void {
    const { regs } = this.init;
    const retries = new Map<number, number>();
    for (let polls = 0; polls < POLL_LIMIT; polls++) {
      const cons = regs.read32(REG.CMDQ_CONS);
      this.cons = this.position(cons);
      if (queueEmpty(this.prod, cons, this.log2)) return;
      const gerror = regs.read32(REG.GERROR);
      const gerrorn = regs.read32(REG.GERRORN);
      if (((gerror ^ gerrorn) & GERROR_CMDQ_ERR) === 0) {
        // The model consumes on the PROD write: a queue that stopped without an error is not running
        // (CMDQEN off) and no later poll would see progress.
        throw this.syncTimeout(cons);
      }
      const code = cmdqConsError(cons);
      const index = queueIndex(cons, this.log2);
      const tries = (retries.get(index) ?? 0) + 1;
      retries.set(index, tries);
      if (code === CERROR_ABT || code === CERROR_ATC_INV_SYNC) {
        if (tries <= CMDQ_ERROR_RETRIES) {
          this.recordFailure(cons, 'retried');
        } else if (code === CERROR_ABT) {
          this.recordFailure(cons, 'replaced-with-sync');
        } else {
          // The CMD_SYNC keeps timing out on an ATC invalidation: abandon what is left of the batch.
          this.recordFailure(cons, 'abandoned');
          this.prod = this.position(cons);
          regs.write32(REG.CMDQ_PROD, this.prod);
        }
      } else if (code !== CERROR_NONE) {
        this.recordFailure(cons, 'replaced-with-sync');
      }
      // Acknowledge CMDQ_ERR only (toggle GERRORN to match GERROR): the SMMU resumes from CONS.
      regs.write32(REG.GERRORN, (gerrorn & ~GERROR_CMDQ_ERR) | (gerror & GERROR_CMDQ_ERR));
      this.pollWait();
    }
    throw this.syncTimeout(regs.read32(REG.CMDQ_CONS));
  }

  /** The wait before the next poll of CONS (Linux `queue_poll`): WFE with IDR0.SEV, else a spin. */
  private pollWait(): void {
    const events = this.init.wfeEvents;
    if (!events) {
      this.spins++;
      return;
    }
    this.wfes++;
    // WFE returns at once when the event register is set (clearing it), which the SMMU's event did.
    if (events.raised !== this.eventsSeen) {
      this.eventsSeen = events.raised;
      this.wfeWakeups++;
    }
  }

  /** Linux `arm_smmu_cmdq_poll_until_sync` failing: "CMD_SYNC timeout" (-ETIMEDOUT). */
  private syncTimeout(cons: number): IommufdError {
    return pollTimeout(
      this.init.instance,
      `CMD_SYNC timeout: CONS ${toHex(cons)} stopped short of PROD ${toHex(this.prod)}`,
    );
  }

  /** Reads the command CONS points at, records the failure, and rewrites it as CMD_SYNC if asked. */
  private recordFailure(cons: number, action: CommandFailure['action']): CommandFailure {
    const { bus, counter } = this.init;
    const code = cmdqConsError(cons);
    const index = queueIndex(cons, this.log2);
    const address = this.base + index * CMDQ_ENTRY_BYTES;
    bus.readWords(address, this.scratch, CMD_WORDS, counter);
    const failure: CommandFailure = {
      command: commandLabel(this.scratch),
      error: CERROR_NAMES[code] ?? `CERROR ${toHex(code)}`,
      index,
      words: [...this.scratch],
      action,
    };
    this.failures.push(failure);
    this.submissionFailures.push(failure);
    this.errors++;
    if (action === 'replaced-with-sync') bus.writeWords(address, this.sync, CMD_WORDS, counter);
    if (this.init.tracer?.enabled) {
      this.init.tracer.trace(
        'driver',
        this.init.instance,
        'cmdq.error',
        `${failure.error} on ${failure.command} at index ${index} [${failure.words.map((w) => toHex(w)).join(' ')}]: ${action}`,
      );
    }
    return failure;
  }

  /** Index and wrap bits of a PROD/CONS value. */
  private position(value: number): number {
    return (value & (2 * this.capacity - 1)) >>> 0;
  }
}

/** Commands gathered for one submission (Linux `arm_smmu_cmdq_batch`). */
export class CmdqBatch {
  private commands: Uint32Array[] = [];

  constructor(private readonly cmdq: Smmuv3Cmdq) {}

  get length(): number {
    return this.commands.length;
  }

  /** Adds a command; a full batch of 64 is issued at once, without a CMD_SYNC. */
  add(command: Uint32Array): void {
    this.commands.push(command);
    if (this.commands.length === CMDQ_BATCH_ENTRIES) {
      const full = this.commands;
      this.commands = [];
      this.cmdq.submit(full, false);
    }
  }

  /** Issues what is left, followed by a CMD_SYNC. */
  submit(): void {
    const rest = this.commands;
    this.commands = [];
    this.cmdq.submit(rest, true);
  }
}
