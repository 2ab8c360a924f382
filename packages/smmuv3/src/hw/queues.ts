/**
 * The queue machinery of one SMMUv3 instance, for the device model to own: interrupt delivery and GERROR
 * raising ({@link SmmuInterrupts}), the Command queue consumer ({@link CommandQueue}) and the Event and
 * PRI queue producers ({@link OutputQueue}). Everything works on the instance's RegisterFile and the
 * system's MemoryBus; the device keeps its own write hooks and calls in here from them:
 *
 * - CMDQ_PROD written → `onCmdqProdWrite()` (§4.1.2: the SMMU considers new commands);
 * - GERRORN written → `onGerrornWrite()` (§7.1: acknowledging CMDQ_ERR restarts consumption);
 * - CR0 written, after CR0ACK is updated → `onCr0Updated()` (§6.3.9.3: CMDQEN 0 → 1 starts processing);
 * - EVENTQ_CONS / PRIQ_CONS written: nothing is needed here — the producers read CONS (and OVACKFLG) when
 *   they next record; a device that holds stall records back checks `eventq.writable()` then.
 *
 * The device records events with `eventq.record(words, { stall })`, PRI requests with `priq.record(words)`
 * and raises its own global errors (SFM_ERR, ...) with `interrupts.raiseGlobalError(bits)`.
 */
import type { AccessCounter, IrqLine, MemoryBus, RegisterFile } from '@iommukit/core';
import { type CommandExecutor, CommandQueue } from './command-queue.js';
import type { Smmuv3Features } from './features.js';
import { SmmuInterrupts } from './interrupts.js';
import { OutputQueue } from './output-queue.js';

export interface SmmuQueuesInit {
  readonly regs: RegisterFile;
  readonly bus: MemoryBus;
  readonly features: Smmuv3Features;
  /** Performs each decoded command (invalidations, PRI responses, resumes, CMD_SYNC's ATC check). */
  readonly execute: CommandExecutor;
  /** Counts the queue and MSI accesses on the bus. */
  readonly counter: AccessCounter;
  /** Creates wired lines by name (`eventq`, `priq`, `gerror`, `cmdq-sync`) when `features.wiredIrqs`. */
  readonly irq?: (name: string) => IrqLine;
  /** The DeviceID the SMMU's own MSI writes carry (its IORT ID mapping); absent: none. */
  readonly msiDeviceId?: number;
  /** IDR0.SEV (default false). */
  readonly sev?: boolean;
  /** Receives the Command queue's WFE wake-up events (IDR0.SEV == 1). */
  readonly onWakeup?: () => void;
}

export class SmmuQueues {
  readonly interrupts: SmmuInterrupts;
  readonly cmdq: CommandQueue;
  readonly eventq: OutputQueue;
  readonly priq: OutputQueue;

  constructor(init: SmmuQueuesInit) {
    const { regs, bus, features, counter } = init;
    this.interrupts = new SmmuInterrupts({
      regs,
      bus,
      features,
      counter,
      ...(init.irq ? { irq: init.irq } : {}),
      ...(init.msiDeviceId === undefined ? {} : { msiDeviceId: init.msiDeviceId }),
    });
    const interrupts = this.interrupts;
    this.cmdq = new CommandQueue({
      regs,
      bus,
      features,
      interrupts,
      counter,
      execute: init.execute,
      ...(init.sev !== undefined ? { sev: init.sev } : {}),
      ...(init.onWakeup ? { onWakeup: init.onWakeup } : {}),
    });
    this.eventq = new OutputQueue({ kind: 'eventq', regs, bus, features, interrupts, counter });
    this.priq = new OutputQueue({ kind: 'priq', regs, bus, features, interrupts, counter });
  }

  /** CMDQ_PROD was written. Returns the commands consumed (0 in step mode). */
  onCmdqProdWrite(): number {
    return this.cmdq.consume();
  }

  /** GERRORN was written: consumption resumes if CMDQ_ERR is no longer active. */
  onGerrornWrite(): number {
    return this.cmdq.consume();
  }

  /** CR0ACK was updated after a CR0 write: starts consumption when CMDQEN became 1. */
  onCr0Updated(): number {
    return this.cmdq.consume();
  }

  /** Counters for the device's `stats()`. */
  stats(): Readonly<Record<string, number>> {
    const irq = this.interrupts;
    return {
      ...this.cmdq.stats(),
      ...this.eventq.stats(),
      ...this.priq.stats(),
      msiWrites: irq.msiWrites,
      msiAborts: irq.msiAborts,
      globalErrors: irq.globalErrors,
      irqEventq: irq.signalled.eventq,
      irqPriq: irq.signalled.priq,
      irqGerror: irq.signalled.gerror,
      irqCmdqSync: irq.signalled.cmdqSync,
    };
  }
}
