/**
 * SMMUv3 interrupt delivery and global error raising (§3.18, §6.3.16, §6.3.19–6.3.23, §7.5).
 *
 * Sources: the Event queue, the PRI queue and GERROR, each enabled by SMMU_IRQ_CTRL.x_IRQEN (the value in
 * IRQ_CTRLACK is the effective one, §6.3.16), plus CMD_SYNC completion, which has no enable (§3.18.2). An
 * enabled source pulses its own wired line when the platform wires one, and sends an MSI when IDR0.MSI == 1
 * and its *_IRQ_CFG0.ADDR is non-zero — both when both apply (§3.18.2). An MSI is a 32-bit write of
 * *_IRQ_CFG1 to the CFG0 address (§3.18); CFG2's memory type and Shareability change nothing in this model.
 * An MSI write that aborts activates GERROR.MSI_<source>_ABT_ERR (§3.18.1).
 *
 * GERROR (§7.5): raising an error toggles its GERROR bit only while the error is inactive, and every newly
 * activated error except MSI_GERROR_ABT_ERR triggers the GERROR interrupt (§7.5.1), so an aborted GERROR
 * MSI is recorded without sending another.
 *
 * Wired lines are edge events whose handlers run when the system services interrupts, never inside the
 * model. MSIs complete synchronously: the write, or the abort's GERROR bit, is visible on return.
 */
import type { AccessCounter, IrqLine, MemoryBus, RegisterFile } from '@iommukit/core';
import type { Smmuv3Features } from './features.js';
import { activeGlobalErrors, toggleGlobalError } from './register-protocols.js';
import {
  GERROR_MSI_CMDQ_ABT_ERR,
  GERROR_MSI_EVENTQ_ABT_ERR,
  GERROR_MSI_GERROR_ABT_ERR,
  GERROR_MSI_PRIQ_ABT_ERR,
  IRQ_CFG0_ADDR,
  IRQ_CTRL_EVENTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  REG,
  reg64Address,
} from './regs.js';

/** The register-configured interrupt sources. */
export type IrqSource = 'eventq' | 'priq' | 'gerror';

/** Wired line names (as the Linux arm-smmu-v3 binding names them). */
export const SMMU_IRQ_LINES = {
  eventq: 'eventq',
  priq: 'priq',
  gerror: 'gerror',
  cmdqSync: 'cmdq-sync',
} as const;

interface SourceConfig {
  readonly enable: number;
  readonly cfg0: number;
  readonly cfg1: number;
  readonly msiAbort: number;
}

const SOURCES: Readonly<Record<IrqSource, SourceConfig>> = {
  eventq: {
    enable: IRQ_CTRL_EVENTQ_IRQEN,
    cfg0: REG.EVENTQ_IRQ_CFG0,
    cfg1: REG.EVENTQ_IRQ_CFG1,
    msiAbort: GERROR_MSI_EVENTQ_ABT_ERR,
  },
  priq: {
    enable: IRQ_CTRL_PRIQ_IRQEN,
    cfg0: REG.PRIQ_IRQ_CFG0,
    cfg1: REG.PRIQ_IRQ_CFG1,
    msiAbort: GERROR_MSI_PRIQ_ABT_ERR,
  },
  gerror: {
    enable: IRQ_CTRL_GERROR_IRQEN,
    cfg0: REG.GERROR_IRQ_CFG0,
    cfg1: REG.GERROR_IRQ_CFG1,
    msiAbort: GERROR_MSI_GERROR_ABT_ERR,
  },
};

export interface SmmuInterruptsInit {
  readonly regs: RegisterFile;
  readonly bus: MemoryBus;
  readonly features: Smmuv3Features;
  /** Counts the MSI writes on the bus. */
  readonly counter: AccessCounter;
  /** Creates a wired line by name; lines are created only when `features.wiredIrqs`. */
  readonly irq?: (name: string) => IrqLine;
  /** The DeviceID the SMMU's own MSI writes carry (its IORT ID mapping); absent: none. */
  readonly msiDeviceId?: number;
}

export class SmmuInterrupts {
  /** Wired lines by source (absent without wired interrupts). */
  readonly lines: Readonly<Partial<Record<IrqSource | 'cmdqSync', IrqLine>>>;
  private readonly regs: RegisterFile;
  private readonly bus: MemoryBus;
  private readonly features: Smmuv3Features;
  private readonly counter: AccessCounter;
  private readonly addressLimit: number;
  private readonly msiDeviceId: number | undefined;
  /** Interrupts signalled per source (an enabled source triggered: wired and/or MSI). */
  readonly signalled: Record<IrqSource | 'cmdqSync', number> = { eventq: 0, priq: 0, gerror: 0, cmdqSync: 0 };
  msiWrites = 0;
  msiAborts = 0;
  /** Errors that became active (a raise of an already-active error does not count). */
  globalErrors = 0;

  constructor(init: SmmuInterruptsInit) {
    this.regs = init.regs;
    this.bus = init.bus;
    this.features = init.features;
    this.counter = init.counter;
    this.addressLimit = 2 ** init.features.oasBits;
    this.msiDeviceId = init.msiDeviceId;
    const irq = init.features.wiredIrqs ? init.irq : undefined;
    this.lines =
      irq === undefined
        ? {}
        : {
            eventq: irq(SMMU_IRQ_LINES.eventq),
            gerror: irq(SMMU_IRQ_LINES.gerror),
            cmdqSync: irq(SMMU_IRQ_LINES.cmdqSync),
            ...(init.features.pri ? { priq: irq(SMMU_IRQ_LINES.priq) } : {}),
          };
  }

  /** Whether a source is enabled (IRQ_CTRLACK.x_IRQEN). */
  enabled(source: IrqSource): boolean {
    return (this.regs.get(REG.IRQ_CTRLACK) & SOURCES[source].enable) !== 0;
  }

  /**
   * Triggers a source's interrupt if IRQ_CTRL enables it: its wired line, and its MSI when MSIs are
   * implemented and *_IRQ_CFG0.ADDR != 0. Returns whether the source was enabled.
   */
  signal(source: IrqSource): boolean {
    if (!this.enabled(source)) return false;
    this.signalled[source]++;
    this.lines[source]?.raise();
    if (!this.features.msi) return true;
    const cfg = SOURCES[source];
    const address = reg64Address(this.regs.get(cfg.cfg0), this.regs.get(cfg.cfg0 + 4), IRQ_CFG0_ADDR);
    if (address !== 0) this.sendMsi(address, this.regs.get(cfg.cfg1), cfg.msiAbort);
    return true;
  }

  /**
   * CMD_SYNC completion with CS == SIG_IRQ (§4.7.3): the CMD_SYNC wired line is asserted regardless of
   * MSIAddress; with MSIs implemented, MSIData is written to MSIAddress (truncated to the OAS, §3.4.3) if
   * it is non-zero. Without MSIs, MSIAddress and MSIData are IGNORED. An abort activates MSI_CMDQ_ABT_ERR.
   */
  signalSync(msiAddress: number, msiData: number): void {
    this.signalled.cmdqSync++;
    this.lines.cmdqSync?.raise();
    // The zero check covers the whole field, before truncation to the OAS (§4.7.3).
    if (this.features.msi && msiAddress !== 0) {
      this.sendMsi(msiAddress % this.addressLimit, msiData, GERROR_MSI_CMDQ_ABT_ERR);
    }
  }

  /** Global errors active now (GERROR ^ GERRORN). */
  activeErrors(): number {
    return activeGlobalErrors(this.regs.get(REG.GERROR), this.regs.get(REG.GERRORN));
  }

  /**
   * Raises the global errors in `bits`: each toggles in GERROR only if it is not already active (§7.5), and
   * the GERROR interrupt is triggered if any error other than MSI_GERROR_ABT_ERR became active (§7.5.1).
   * Returns the bits that became active.
   */
  raiseGlobalError(bits: number): number {
    const gerror = this.regs.get(REG.GERROR);
    const next = toggleGlobalError(gerror, this.regs.get(REG.GERRORN), bits);
    const activated = (gerror ^ next) >>> 0;
    if (activated === 0) return 0;
    this.regs.set(REG.GERROR, next);
    for (let b = activated; b !== 0; b &= b - 1) this.globalErrors++;
    if ((activated & ~GERROR_MSI_GERROR_ABT_ERR) !== 0) this.signal('gerror');
    return activated;
  }

  /** A 32-bit MSI write (§3.18); bits [1:0] of the address are zero by the register and command layouts. */
  private sendMsi(address: number, data: number, abortBit: number): void {
    this.msiWrites++;
    const result = this.bus.write(address, 4, data >>> 0, this.counter, this.msiDeviceId);
    if (!result.ok) {
      this.msiAborts++;
      this.raiseGlobalError(abortBit);
    }
  }
}
