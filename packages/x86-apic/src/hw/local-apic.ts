/**
 * One CPU's local APIC (Intel SDM vol. 3A ch. 11): its ID, version, task and processor priority, the
 * IRR/ISR/TMR vector arrays, EOI, the spurious-vector register (software enable), the logical destination
 * registers and the ICR. Software reaches it through the CPU-local xAPIC page (`mmio`: offsets, not a bus
 * address — the page is per CPU) or, in x2APIC mode, through MSRs 0x800 + offset / 16 (`readMsr`,
 * `writeMsr`). A wrong-mode MSR access is the #GP the CPU would raise: an `EINVAL` for the driver.
 *
 * Acceptance sets the vector's IRR bit (and its TMR bit for level trigger); the CPU then takes the highest
 * IRR vector whose priority class is above the PPR's into the ISR, running the kernel's entry (§11.8.3,
 * §11.8.4). EOI clears the highest ISR bit, which lets the next vector in.
 */
import { IommufdError, type MmioHandler, type MsiOutcome, toHex } from '@iommukit/core';
import type { InterruptSource, X86Cpu } from './cpu.js';
import {
  APIC,
  APIC_BASE_BSP,
  APIC_BASE_ENABLE,
  APIC_BASE_EXTD,
  APIC_DEFAULT_BASE,
  APIC_VERSION_VALUE,
  DFR_CLUSTER,
  ESR_RECEIVE_ILLEGAL_VECTOR,
  FIRST_LEGAL_VECTOR,
  IA32_APIC_BASE,
  SVR_APIC_ENABLED,
  SVR_RESET,
  X2APIC_MSR_BASE,
} from './registers.js';
import { VectorSet } from './vector-set.js';

export type ApicMode = 'disabled' | 'xapic' | 'x2apic';

/** What an ICR write asks the platform to send (SDM §11.6.1). */
export interface IpiRequest {
  /** ICR bits 31:0 (vector, delivery mode, destination mode, level, trigger, shorthand). */
  readonly command: number;
  /** The destination: ICR[63:56] in xAPIC mode, ICR[63:32] in x2APIC mode. */
  readonly destination: number;
}

const VECTOR_REGISTERS = 8;

export class LocalApic {
  readonly irr = new VectorSet();
  readonly isr = new VectorSet();
  readonly tmr = new VectorSet();
  /** The CPU-local xAPIC register page. */
  readonly mmio: MmioHandler;
  private apicBase: number;
  private tpr = 0;
  private svr = SVR_RESET;
  private ldr = 0;
  private dfr = 0xffff_ffff;
  private esr = 0;
  private errors = 0;
  private icrLow = 0;
  private icrHigh = 0;
  private dispatching = false;
  /** Who sent each vector last: what the CPU reports when it takes it. */
  private readonly sources = new Map<number, InterruptSource>();

  constructor(
    /** The initial APIC ID (CPUID leaf 0xB's x2APIC ID). */
    readonly initialId: number,
    readonly cpu: X86Cpu,
    private readonly sendIpi: (from: LocalApic, request: IpiRequest) => void,
  ) {
    this.apicBase = APIC_DEFAULT_BASE | APIC_BASE_ENABLE | (cpu.cpu === 0 ? APIC_BASE_BSP : 0);
    this.mmio = {
      read: (offset) => (this.mode === 'xapic' ? this.readRegister(offset & ~0xf, false) : 0),
      write: (offset, _size, value) => {
        if (this.mode === 'xapic') this.writeRegister(offset & ~0xf, value >>> 0, false);
      },
    };
  }

  get mode(): ApicMode {
    if (!(this.apicBase & APIC_BASE_ENABLE)) return 'disabled';
    return this.apicBase & APIC_BASE_EXTD ? 'x2apic' : 'xapic';
  }

  /** The APIC ID destinations are matched against: 8 bits in xAPIC mode, 32 in x2APIC mode. */
  get id(): number {
    return this.mode === 'x2apic' ? this.initialId : this.initialId & 0xff;
  }

  /** SVR bit 8: without it the APIC takes no fixed or lowest-priority interrupts (SDM §11.4.7.2). */
  get softwareEnabled(): boolean {
    return (this.svr & SVR_APIC_ENABLED) !== 0;
  }

  /** The processor priority (SDM §11.8.3.1): the TPR, or the class of the highest vector in service. */
  get ppr(): number {
    const isrv = Math.max(this.isr.highest(), 0);
    return this.tpr >>> 4 >= isrv >>> 4 ? this.tpr : isrv & 0xf0;
  }

  /** The logical APIC ID register; in x2APIC mode derived from the ID (SDM §11.12.10.2). */
  get logicalId(): number {
    if (this.mode !== 'x2apic') return this.ldr;
    return (((this.initialId >>> 4) & 0xffff) << 16) | (1 << (this.initialId & 0xf));
  }

  /** The DFR: its model bits 31:28 are flat (0xF) or cluster (0x0). */
  get destinationFormat(): number {
    return this.dfr;
  }

  readMsr(msr: number): bigint {
    if (msr === IA32_APIC_BASE) return BigInt(this.apicBase >>> 0);
    const offset = this.x2apicOffset(msr);
    if (offset === APIC.ICR_LOW) return (BigInt(this.icrHigh) << 32n) | BigInt(this.icrLow);
    return BigInt(this.readRegister(offset, true));
  }

  writeMsr(msr: number, value: bigint): void {
    if (msr === IA32_APIC_BASE) {
      this.writeApicBase(Number(value & 0xffff_ffffn));
      return;
    }
    const offset = this.x2apicOffset(msr);
    if (offset !== APIC.ICR_LOW) {
      this.writeRegister(offset, Number(value & 0xffff_ffffn), true);
      return;
    }
    this.icrHigh = Number(value >> 32n) >>> 0;
    this.icrLow = Number(value & 0xffff_ffffn);
    this.sendIpi(this, { command: this.icrLow, destination: this.icrHigh });
  }

  /**
   * Accepts a fixed or lowest-priority interrupt: sets IRR (and TMR for level trigger) and lets the CPU
   * take what it can. The outcome says whether the CPU took this vector or it waits in the IRR.
   */
  accept(vector: number, trigger: 'edge' | 'level', source: InterruptSource): MsiOutcome {
    const dropped = (reason: string): MsiOutcome => ({ kind: 'dropped', ...source, reason });
    if (this.mode === 'disabled')
      return dropped(`CPU${this.cpu.cpu}'s local APIC is disabled (IA32_APIC_BASE.EN clear)`);
    if (!this.softwareEnabled)
      return dropped(`CPU${this.cpu.cpu}'s local APIC is software-disabled (SVR bit 8 clear)`);
    if (vector < FIRST_LEGAL_VECTOR) {
      this.errors |= ESR_RECEIVE_ILLEGAL_VECTOR;
      return dropped(`illegal vector ${toHex(vector)} (ESR: Receive Illegal Vector)`);
    }
    this.irr.add(vector);
    if (trigger === 'level') this.tmr.add(vector);
    else this.tmr.delete(vector);
    this.sources.set(vector, source);
    return this.dispatch(vector) ?? { kind: 'pending', intid: this.cpu.entry.irqOf(vector), ...source };
  }

  /** Clears the highest vector in service and lets the next one in (SDM §11.8.5). */
  eoi(): void {
    const vector = this.isr.highest();
    // Stryker disable next-line ConditionalExpression,EqualityOperator: vectors 0–15 never reach the ISR, and deleting -1 changes no bit
    if (vector >= 0) this.isr.delete(vector);
    this.dispatch();
  }

  /**
   * The CPU takes IRR vectors whose class is above the PPR's, highest first, while there are any. The
   * kernel's entry may EOI from inside (Linux acknowledges edge interrupts before their handlers): the loop
   * here then takes the next vector rather than the EOI recursing. Returns what became of `watch`.
   */
  private dispatch(watch = -1): MsiOutcome | undefined {
    if (this.dispatching) return undefined;
    this.dispatching = true;
    let watched: MsiOutcome | undefined;
    try {
      for (
        let vector = this.irr.highest();
        // Stryker disable next-line EqualityOperator: vector 0 never reaches the IRR (vectors 0–15 are illegal)
        vector >= 0 && vector >>> 4 > this.ppr >>> 4;
        vector = this.irr.highest()
      ) {
        this.irr.delete(vector);
        this.isr.add(vector);
        const outcome = this.cpu.take(vector, this.sources.get(vector)!);
        if (vector === watch) watched = outcome;
      }
    } finally {
      this.dispatching = false;
    }
    return watched;
  }

  private readRegister(offset: number, x2apic: boolean): number {
    const vectorRegister = (base: number, set: VectorSet) => set.word((offset - base) >>> 4);
    if (offset >= APIC.ISR && offset < APIC.ISR + VECTOR_REGISTERS * 0x10)
      return vectorRegister(APIC.ISR, this.isr);
    if (offset >= APIC.TMR && offset < APIC.TMR + VECTOR_REGISTERS * 0x10)
      return vectorRegister(APIC.TMR, this.tmr);
    if (offset >= APIC.IRR && offset < APIC.IRR + VECTOR_REGISTERS * 0x10)
      return vectorRegister(APIC.IRR, this.irr);
    switch (offset) {
      case APIC.ID:
        return x2apic ? this.initialId : (this.initialId & 0xff) << 24;
      case APIC.VERSION:
        return APIC_VERSION_VALUE;
      case APIC.TPR:
        return this.tpr;
      case APIC.PPR:
        return this.ppr;
      case APIC.LDR:
        return this.logicalId;
      case APIC.DFR:
        return x2apic ? this.generalProtection(`read of the DFR`) : this.dfr;
      case APIC.SVR:
        return this.svr;
      case APIC.ESR:
        return this.esr;
      case APIC.ICR_LOW:
        return this.icrLow;
      case APIC.ICR_HIGH:
        return this.icrHigh;
      default:
        // Unimplemented offsets and the write-only EOI.
        return x2apic
          ? this.generalProtection(`read of x2APIC MSR ${toHex(X2APIC_MSR_BASE + (offset >> 4))}`)
          : 0;
    }
  }

  private writeRegister(offset: number, value: number, x2apic: boolean): void {
    switch (offset) {
      case APIC.TPR:
        this.tpr = value & 0xff;
        this.dispatch();
        return;
      case APIC.EOI:
        // x2APIC: a non-zero EOI write is a #GP (SDM §11.12.1.2).
        if (x2apic && value !== 0) this.generalProtection('non-zero EOI write');
        this.eoi();
        return;
      case APIC.LDR:
        if (x2apic) this.generalProtection('write of the read-only x2APIC LDR');
        this.ldr = value & 0xff00_0000;
        return;
      case APIC.DFR:
        if (x2apic) this.generalProtection('write of the DFR');
        this.dfr = (value | DFR_CLUSTER) >>> 0;
        return;
      case APIC.SVR:
        this.svr = value & 0x1ff;
        return;
      case APIC.ESR:
        // A write latches the errors seen since the last one (SDM §11.5.3).
        this.esr = this.errors;
        this.errors = 0;
        return;
      case APIC.ICR_HIGH:
        this.icrHigh = (value & 0xff00_0000) >>> 0;
        return;
      case APIC.ICR_LOW:
        this.icrLow = value;
        this.sendIpi(this, { command: value, destination: this.icrHigh >>> 24 });
        return;
      default:
        if (x2apic) this.generalProtection(`write of x2APIC MSR ${toHex(X2APIC_MSR_BASE + (offset >> 4))}`);
    }
  }

  /** IA32_APIC_BASE: EN and EXTD; the transitions the SDM forbids (§11.12.5, figure 11-27) are a #GP. */
  private writeApicBase(value: number): void {
    const next = value & (APIC_BASE_ENABLE | APIC_BASE_EXTD);
    const from = this.mode;
    const to: ApicMode | undefined =
      next === APIC_BASE_ENABLE
        ? 'xapic'
        : next === (APIC_BASE_ENABLE | APIC_BASE_EXTD)
          ? 'x2apic'
          : next === 0
            ? 'disabled'
            : undefined;
    if (to === undefined || (from === 'x2apic' && to === 'xapic') || (from === 'disabled' && to === 'x2apic'))
      this.generalProtection(`IA32_APIC_BASE transition from ${from} to ${to ?? 'EXTD without EN'}`);
    this.apicBase = (this.apicBase & ~(APIC_BASE_ENABLE | APIC_BASE_EXTD)) | next;
    if (to === 'disabled') this.reset();
  }

  /** Disabling the APIC (EN clear) puts its registers back to their power-up state (SDM §11.4.3). */
  private reset(): void {
    for (const set of [this.irr, this.isr, this.tmr]) set.clear();
    this.tpr = 0;
    this.svr = SVR_RESET;
    this.ldr = 0;
    this.dfr = 0xffff_ffff;
  }

  private x2apicOffset(msr: number): number {
    if (this.mode !== 'x2apic') this.generalProtection(`MSR ${toHex(msr)} access outside x2APIC mode`);
    const offset = (msr - X2APIC_MSR_BASE) << 4;
    // 0x831 (ICR high) has no MSR: the x2APIC ICR is the one 64-bit MSR 0x830. MSRs outside 0x800–0x8FF
    // give offsets no register has, which the register switch refuses.
    if (offset === APIC.ICR_HIGH) this.generalProtection(`MSR ${toHex(msr)} is not an x2APIC register`);
    return offset;
  }

  private generalProtection(what: string): never {
    throw new IommufdError('EINVAL', `#GP on CPU${this.cpu.cpu}: ${what}`, { cpu: this.cpu.cpu });
  }
}
