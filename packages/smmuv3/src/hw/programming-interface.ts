/**
 * What software sees of an SMMUv3: the page 0/1 register file with its protocols, and the Command, Event
 * and PRI queues in memory that those registers describe. Both the device model (`Smmuv3Hardware`) and a
 * VMM's vSMMU (`viommu/`) present one, and differ only in what they do with the commands and what they
 * record: the owner supplies the command executor and hears about CR0 and EVENTQ_CONS writes.
 *
 * Register protocols (§6.3): CR0 writes are acknowledged in CR0ACK at once (the model has no delay),
 * IRQ_CTRL in IRQ_CTRLACK, GBPA updates complete immediately; Guarded registers ignore writes while their
 * enable (or its acknowledgement) is set; CMDQ_PROD and GERRORN writes run the command queue.
 */
import { type AccessCounter, type IrqLine, type MemoryBus, RegisterFile } from '@iommukit/core';
import type { CommandExecutor } from './command-queue.js';
import type { Smmuv3Features } from './features.js';
import type { Smmuv3Options } from './options.js';
import { SmmuQueues } from './queues.js';
import { ackFor, gbpaAfterWrite, irqCtrlAckFor } from './register-protocols.js';
import {
  CR0_SMMUEN,
  CR2_E2H,
  CR2_RECINVSID,
  GBPA_ABORT,
  type GuardState,
  guardedValue,
  REG,
  registerTable,
  SMMU_MMIO_SIZE,
} from './regs.js';

/** Registers whose software writes are filtered by the Guarded rule (§6.2). */
const GUARDED = [
  REG.CR1,
  REG.CR2,
  REG.STRTAB_BASE,
  REG.STRTAB_BASE + 4,
  REG.STRTAB_BASE_CFG,
  REG.CMDQ_BASE,
  REG.CMDQ_BASE + 4,
  REG.CMDQ_CONS,
  REG.EVENTQ_BASE,
  REG.EVENTQ_BASE + 4,
  REG.EVENTQ_PROD,
  REG.PRIQ_BASE,
  REG.PRIQ_BASE + 4,
  REG.PRIQ_PROD,
  REG.GERROR_IRQ_CFG0,
  REG.GERROR_IRQ_CFG0 + 4,
  REG.GERROR_IRQ_CFG1,
  REG.GERROR_IRQ_CFG2,
  REG.EVENTQ_IRQ_CFG0,
  REG.EVENTQ_IRQ_CFG0 + 4,
  REG.EVENTQ_IRQ_CFG1,
  REG.EVENTQ_IRQ_CFG2,
  REG.PRIQ_IRQ_CFG0,
  REG.PRIQ_IRQ_CFG0 + 4,
  REG.PRIQ_IRQ_CFG1,
  REG.PRIQ_IRQ_CFG2,
];

/** The register state the rest of an SMMU reads: enable, global bypass, the Stream table's place. */
export interface TranslationState {
  readonly smmuEnabled: boolean;
  readonly gbpaAbort: boolean;
  readonly strtabBase: number;
  readonly strtabFmt: number;
  readonly strtabSplit: number;
  readonly strtabLog2Size: number;
  /** CR2.RECINVSID: C_BAD_STREAMID is recorded only when set (§6.3.12, §7.3.3). */
  readonly recordInvalidStreamIds: boolean;
  /** CR2.E2H: STRW == EL2 selects the EL2-E2H regime, with ASIDs (§6.3.12); RES0 without IDR0.Hyp. */
  readonly e2h: boolean;
}

export interface ProgrammingInterfaceInit {
  readonly features: Smmuv3Features;
  readonly options: Smmuv3Options;
  /** The bus the queues live on (host memory for the device, guest memory for a vSMMU). */
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  readonly execute: CommandExecutor;
  readonly irq?: (name: string) => IrqLine;
  /** The DeviceID the SMMU's own MSI writes carry (its IORT ID mapping); absent: none. */
  readonly msiDeviceId?: number;
  /** After CR0 was written and acknowledged (and command processing restarted). */
  readonly onCr0Written?: (state: TranslationState) => void;
  /** After software moved EVENTQ_CONS (the queue may take records again). */
  readonly onEventqConsumed?: () => void;
  /** A WFE wake-up event from the Command queue (`options.sev`). */
  readonly onWakeup?: () => void;
}

export class Smmuv3ProgrammingInterface {
  /** The 128 KiB register window (pages 0 and 1), to place on a bus as an MMIO handler. */
  readonly regs: RegisterFile;
  readonly queues: SmmuQueues;
  readonly size = SMMU_MMIO_SIZE;
  private current!: TranslationState;

  constructor(private readonly init: ProgrammingInterfaceInit) {
    this.regs = new RegisterFile(SMMU_MMIO_SIZE, registerTable(init.features, init.options));
    this.queues = new SmmuQueues({
      regs: this.regs,
      bus: init.bus,
      features: init.features,
      counter: init.counter,
      execute: init.execute,
      ...(init.irq ? { irq: init.irq } : {}),
      ...(init.msiDeviceId === undefined ? {} : { msiDeviceId: init.msiDeviceId }),
      sev: init.options.sev,
      ...(init.onWakeup ? { onWakeup: init.onWakeup } : {}),
    });
    this.installHooks();
    // From the reset values: GBPA.ABORT resets as configured, and applies before any write (§6.3.14).
    this.refreshState();
  }

  /** The register state as software last left it. */
  get state(): TranslationState {
    return this.current;
  }

  private installHooks(): void {
    const regs = this.regs;
    const guard = (): GuardState => ({
      cr0: regs.get(REG.CR0),
      cr0ack: regs.get(REG.CR0ACK),
      irqCtrl: regs.get(REG.IRQ_CTRL),
      irqCtrlAck: regs.get(REG.IRQ_CTRLACK),
      gbpa: regs.get(REG.GBPA),
    });
    for (const offset of GUARDED) {
      if (!regs.definitionAt(offset)) continue;
      regs.onWrite(offset, (value, old) => {
        regs.set(offset, guardedValue(offset, value, old, guard()));
        this.refreshState();
      });
    }
    regs.onWrite(REG.CR0, (value) => {
      regs.set(REG.CR0ACK, ackFor(value));
      this.refreshState();
      this.queues.onCr0Updated();
      this.init.onCr0Written?.(this.current);
    });
    regs.onWrite(REG.EVENTQ_CONS, () => this.init.onEventqConsumed?.());
    regs.onWrite(REG.IRQ_CTRL, (value) => regs.set(REG.IRQ_CTRLACK, irqCtrlAckFor(value)));
    regs.onWrite(REG.GBPA, (value, old) => {
      // An update completes at once, so GBPA never holds Update and the state's other fields are not read:
      // the guard rule is applied as written for the register it names.
      // Stryker disable next-line ObjectLiteral: see above
      regs.set(REG.GBPA, gbpaAfterWrite(guardedValue(REG.GBPA, value, old, { ...guard(), gbpa: old }), old));
      this.refreshState();
    });
    regs.onWrite(REG.CMDQ_PROD, () => this.queues.onCmdqProdWrite());
    regs.onWrite(REG.GERRORN, () => this.queues.onGerrornWrite());
  }

  private refreshState(): void {
    const regs = this.regs;
    const cfg = regs.get(REG.STRTAB_BASE_CFG);
    const cr2 = regs.get(REG.CR2);
    const baseLo = regs.get(REG.STRTAB_BASE) & 0xffff_ffc0;
    const baseHi = regs.get(REG.STRTAB_BASE + 4) & 0x00ff_ffff;
    this.current = {
      smmuEnabled: (regs.get(REG.CR0ACK) & CR0_SMMUEN) !== 0,
      gbpaAbort: (regs.get(REG.GBPA) & GBPA_ABORT) !== 0,
      strtabBase: baseHi * 2 ** 32 + (baseLo >>> 0),
      strtabFmt: (cfg >>> 16) & 0b11,
      strtabSplit: (cfg >>> 6) & 0x1f,
      strtabLog2Size: cfg & 0x3f,
      // CR2 is Guarded by SMMUEN, so it cannot change under translations that use it (§6.3.12).
      recordInvalidStreamIds: (cr2 & CR2_RECINVSID) !== 0,
      // Stryker disable next-line ConditionalExpression: CR2.E2H is RES0 while IDR0.Hyp is 0, which the register table reports for every instance
      e2h: (cr2 & CR2_E2H) !== 0,
    };
  }
}
