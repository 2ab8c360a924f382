/**
 * Primary fault logging and the fault event (VT-d specification rev 5.10 §7.2.1 "Primary Fault Logging",
 * §7.3 "Non-Recoverable Fault Event", §11.4.7.1 FSTS_REG, §11.4.7.6 FRCD_REG).
 *
 * The unit keeps an internal index of the fault recording register the next fault goes to. A fault is
 * dropped while FSTS.PFO is set; if the record at the index still holds a fault (F = 1) the unit sets PFO
 * and drops it; otherwise it writes the record with F = 1, points FSTS.FRI at it when PPF was clear (FRI
 * names the first pending record), and advances the index, wrapping after CAP.NFR + 1 records. PPF is the
 * OR of every record's F, recomputed when software clears an F (W1C on the record's fourth word).
 *
 * Fault event (§7.3): recording a fault (setting PPF) and the invalidation queue's IQE, ICE and ITE raise
 * it only when none of PPF, PFO, IQE, ICE and ITE was set before — a condition software has not serviced
 * yet already has its interrupt. Setting PFO raises nothing. A pending event (FECTL.IP with IM set) is
 * withdrawn when software has serviced every condition: all those FSTS fields read 0 (§11.4.7.2 FECTL.IP).
 *
 * Not modelled: compression of faults from one source-id (§7.2.1 makes it optional and recommends it for
 * units with few records; QEMU does it, VirtualBox does not) and advanced fault logging (CAP.AFL = 0).
 */
import { type ITracer, type RegisterFile, toHex, writeEntryFields } from '@iommukit/core';
import type { EventInterrupt } from './event-interrupt.js';
import { faultReasonName } from './fault-reasons.js';
import type { VtdFeatures } from './features.js';
import {
  FRCD_LAYOUT,
  FRCD_WORD3_F,
  FSTS_FRI,
  FSTS_ICE,
  FSTS_IQE,
  FSTS_ITE,
  FSTS_PFO,
  FSTS_PPF,
  frcdOffset,
  REG,
} from './regs.js';

/** FRCD.AT: the address type of the faulted request (§11.4.7.6; 11b is reserved). */
export const ADDRESS_TYPE = { UNTRANSLATED: 0, TRANSLATION: 1, TRANSLATED: 2 } as const;
export type AddressType = (typeof ADDRESS_TYPE)[keyof typeof ADDRESS_TYPE];

/** A non-recoverable fault as the fault recording registers take it. */
export interface VtdFaultRecord {
  /** Source-id (requester ID) of the faulted request. */
  readonly sid: number;
  /**
   * DMA faults: the faulted address (the record keeps bits 63:12, and bits at or above the widest AGAW read
   * 0). Interrupt-remapping faults: the FI field as is, `interruptFaultInfo(index)` or 0.
   */
  readonly address: number;
  /** Fault reason (FR or IR_FR). */
  readonly reason: number;
  /** A write (FRCD.T1 = 0) or a read (T1 = 1), unless `requestKind` says otherwise. */
  readonly write: boolean;
  /** The request types FRCD.T2 = 1 encodes: a page request (T1 T2 = 01) or an AtomicOp (11). */
  readonly requestKind?: 'page-request' | 'atomic';
  /** The request's PASID (FRCD.PP = 1, PV), undefined for a request without one. */
  readonly pasid: number | undefined;
  /** Execute requested (FRCD.EXE), privileged mode requested (FRCD.PRIV): meaningful with a PASID. */
  readonly execute: boolean;
  readonly privileged: boolean;
  /** FRCD.AT, for units with Device-TLBs; untranslated when absent. */
  readonly addressType?: AddressType;
}

/** The fault status conditions the invalidation queue reports (FSTS.IQE, ICE, ITE). */
export interface FaultStatus {
  /** Sets the FSTS bit and raises the fault event unless a condition was already pending (§7.3). */
  raiseStatus(bit: number): void;
}

/** Where a hardware unit's trace records go. */
export interface HwTrace {
  readonly tracer: ITracer;
  /** The instance named in each record (`iommu0`). */
  readonly source: string;
}

/** The FSTS fields that are unserviced interrupt conditions (§7.3). */
const CONDITIONS = FSTS_PPF | FSTS_PFO | FSTS_IQE | FSTS_ICE | FSTS_ITE;
const FRI_MASK = 0xff << FSTS_FRI.lsb;
/** The fourth word of a record, where F is. */
const WORD3 = 12;

/**
 * Interrupt-remapping reasons lie in 20h–2Fh: §5.1.4.1 defines 20h–26h and §11.4.7.6 names 29h–2Bh; that
 * the range ends at 2Fh is this model's assumption.
 */
function isInterruptReason(reason: number): boolean {
  return reason >= 0x20 && reason <= 0x2f;
}

/** FRCD.FI of an interrupt-remapping fault: the interrupt_index in bits 63:48, bits 47:12 clear (§11.4.7.6). */
export function interruptFaultInfo(index: number): number {
  if (!Number.isInteger(index) || index < 0 || index > 0xffff)
    throw new RangeError(`interrupt index ${index} is not a 16-bit index`);
  return index * 2 ** 48;
}

export class FaultRecorder implements FaultStatus {
  /** Faults written to a record, and those lost (PFO already set, or the record at the index full). */
  recorded = 0;
  dropped = 0;
  /** Times a full record set PFO. */
  overflows = 0;
  /** The internal index: the record the next fault goes to. */
  private next = 0;
  private readonly words = new Uint32Array(4);
  /** 2^N, N the widest AGAW: FI bits 63:N of a DMA fault read 0 (§11.4.7.6). */
  private readonly faultInfoLimit: number;
  private readonly clearedListeners: ((cleared: number) => void)[] = [];

  constructor(
    private readonly regs: RegisterFile,
    private readonly features: VtdFeatures,
    private readonly event: EventInterrupt,
    private readonly trace?: HwTrace,
  ) {
    this.faultInfoLimit = 2 ** Math.max(...features.sagaw.map((levels) => 12 + 9 * levels));
    for (let i = 0; i < features.faultRecords; i++)
      regs.onWrite(frcdOffset(i) + WORD3, (value, old) => {
        if ((old & ~value & FRCD_WORD3_F) !== 0) this.faultCleared();
      });
    regs.onWrite(REG.FSTS, (value, old) => {
      const cleared = (old & ~value) >>> 0;
      if (cleared === 0) return;
      this.withdrawIfServiced();
      for (const listener of this.clearedListeners) listener(cleared);
    });
  }

  /**
   * Records a fault (§7.2.1): true when it was written to a record, false when it was lost to an overflow.
   * `EINVAL` for a field value its FRCD field cannot hold.
   */
  record(fault: VtdFaultRecord): boolean {
    const { regs } = this;
    const status = regs.get(REG.FSTS);
    if ((status & FSTS_PFO) !== 0) return this.drop(fault, 'PFO set');
    const index = this.next;
    const at = frcdOffset(index);
    if ((regs.get(at + WORD3) & FRCD_WORD3_F) !== 0) {
      regs.set(REG.FSTS, status | FSTS_PFO);
      this.overflows++;
      return this.drop(fault, `FRCD[${index}] full, PFO set`);
    }
    this.encode(fault);
    for (let w = 0; w < 4; w++) regs.set(at + 4 * w, this.words[w]!);
    const first = (status & FSTS_PPF) === 0;
    const fri = first ? index << FSTS_FRI.lsb : status & FRI_MASK;
    regs.set(REG.FSTS, (status & ~FRI_MASK) | FSTS_PPF | fri);
    this.next = (index + 1) % this.features.faultRecords;
    this.recorded++;
    if ((status & CONDITIONS) === 0) this.event.raise();
    if (this.trace?.tracer.enabled)
      this.trace.tracer.trace(
        'hw',
        this.trace.source,
        'fault.record',
        `FRCD[${index}] ${faultReasonName(fault.reason)} sid ${toHex(fault.sid)} FI ${toHex(this.faultInfo(fault))}${first ? ', PPF set' : ''}`,
      );
    return true;
  }

  /** Sets FSTS.IQE, ICE or ITE for the invalidation queue and raises the fault event as §7.3 says. */
  raiseStatus(bit: number): void {
    const implemented =
      (this.features.queuedInvalidation ? FSTS_IQE : 0) | (this.features.deviceTlb ? FSTS_ICE | FSTS_ITE : 0);
    if ((bit !== FSTS_IQE && bit !== FSTS_ICE && bit !== FSTS_ITE) || (bit & implemented) === 0)
      throw new RangeError(`FSTS bit ${toHex(bit)} is not an invalidation error this unit reports`);
    const status = this.regs.get(REG.FSTS);
    this.regs.set(REG.FSTS, status | bit);
    if ((status & CONDITIONS) === 0) this.event.raise();
  }

  /**
   * Calls `listener` with the FSTS bits a software write cleared (the invalidation queue resumes when IQE or
   * ITE clears). The recorder owns FSTS's write hook, since a register has one.
   */
  onStatusCleared(listener: (cleared: number) => void): void {
    this.clearedListeners.push(listener);
  }

  /** Resets the internal index to record 0: when GSTS.TES and IRES are both clear (§7.2.1). */
  resetIndex(): void {
    this.next = 0;
  }

  stats(): Readonly<Record<string, number>> {
    return { faultsRecorded: this.recorded, faultsDropped: this.dropped, faultOverflows: this.overflows };
  }

  private drop(fault: VtdFaultRecord, why: string): false {
    this.dropped++;
    if (this.trace?.tracer.enabled)
      this.trace.tracer.trace(
        'hw',
        this.trace.source,
        'fault.drop',
        `${faultReasonName(fault.reason)} sid ${toHex(fault.sid)} not recorded: ${why}`,
      );
    return false;
  }

  /** The record's four words (§11.4.7.6); PP, PV, EXE, PRIV are RsvdZ without PASIDs, AT without DT. */
  private encode(fault: VtdFaultRecord): void {
    const pp = this.features.pasidBits > 0 && fault.pasid !== undefined;
    const kind = fault.requestKind;
    this.words.fill(0);
    writeEntryFields(
      this.words,
      FRCD_LAYOUT,
      {
        sid: fault.sid,
        t2: kind !== undefined,
        priv: pp && fault.privileged,
        exe: pp && fault.execute,
        pp,
        fr: fault.reason,
        pasid: pp ? fault.pasid : 0,
        at: this.features.deviceTlb ? (fault.addressType ?? ADDRESS_TYPE.UNTRANSLATED) : 0,
        t: kind === undefined ? !fault.write : kind === 'atomic',
        f: true,
        fi: this.faultInfo(fault),
      },
      'FRCD_REG',
    );
  }

  private faultInfo(fault: VtdFaultRecord): number {
    const page = fault.address - (fault.address % 4096);
    return isInterruptReason(fault.reason) ? page : page % this.faultInfoLimit;
  }

  /** Software cleared a record's F: PPF is recomputed (§7.2.1). */
  private faultCleared(): void {
    let pending = false;
    for (let i = 0; i < this.features.faultRecords && !pending; i++)
      pending = (this.regs.get(frcdOffset(i) + WORD3) & FRCD_WORD3_F) !== 0;
    const status = this.regs.get(REG.FSTS);
    this.regs.set(REG.FSTS, pending ? status | FSTS_PPF : status & ~FSTS_PPF);
    this.withdrawIfServiced();
  }

  /** FECTL.IP clears once every condition is serviced (§11.4.7.2). */
  private withdrawIfServiced(): void {
    if ((this.regs.get(REG.FSTS) & CONDITIONS) === 0) this.event.withdraw();
  }
}
