/**
 * The queued invalidation interface (VT-d specification §6.5.2; registers IQH, IQT, IQA, ICS, IECTL,
 * IQERCD): software writes descriptors into the queue at IQA_REG and moves IQT; the unit fetches them from
 * IQH towards IQT while queued invalidation is enabled (GSTS.QIES) and FSTS.IQE is clear, and performs
 * each (invalidation.ts) in order.
 *
 * Head and errors (§6.5.2, as Intel's VT-d maintainers quote it: IQH "is incremented by hardware after
 * fetching a valid descriptor", "only after verifying the fetched descriptor to be valid"): a descriptor
 * that fails is not consumed. IQH stays on it, IQERCD.IQEI takes the reason and then FSTS.IQE is raised
 * (with the fault event) — in that order, so the reason is there once the error is visible. Nothing more
 * is fetched until software clears IQE (Linux: "the head points to the descriptor associated with the
 * error. No new descriptors are fetched until the IQE is cleared"); the descriptor is then fetched again.
 * IQEI codes (§11.4.11, subsection unchecked; Intel datasheets' IQERCD_REG): 1 a tail beyond the queue
 * (QEMU, VirtualBox), 2 a descriptor fetch that aborts, 3/4 what decoding or the unit refuses
 * (inv-descriptors.ts, invalidation.ts), 5 128-bit descriptors (IQA.DW = 0) while RTADDR.TTM selects
 * scalable mode, 6 IQT bit 4 set with 256-bit descriptors (VirtualBox). IQEI 5 for DW = 0 in scalable mode
 * is unconfirmed: VirtualBox reports a 128-bit wait descriptor there as IQEI 3 and notes hardware may
 * report 5, which the IQEI 5 description ("invalid descriptor width programmed in the IQA register")
 * matches. IQEI 7 (invalid TTM) is never reported: the queue sees only whether the unit is in scalable
 * mode.
 *
 * The tail is checked when the queue is processed, not when IQT is written, so a tail made invalid by a
 * later IQA change is caught too; VirtualBox instead clears a misaligned IQT bit 4 when it is written.
 * IQH is taken as it stands (an IQA.DW change while enabled, which software does not do, is not checked).
 *
 * Invalidation wait (§6.5.2.8): SW writes the 32-bit status data to the status address, then IF sets
 * ICS.IWC and raises the completion event (IECTL) — unless IWC is already set, when no new event is
 * generated (QEMU, VirtualBox). A status write that aborts is counted and otherwise lost, as a posted DMA
 * write would be (QEMU reports IQE; the spec text was not available). FN (fence) and PD (page-request
 * drain) need nothing: every descriptor completes before the next is fetched, the endpoints take
 * device-TLB invalidations synchronously, and page requests reach the page request queue as they arrive.
 * For the same reason the invalidation time-out (ITE) and completion (ICE) errors never occur.
 *
 * Enabling (GCMD.QIE, §11.4.4): `setEnabled` sets or clears GSTS.QIES; disabling resets IQH to 0 (Intel
 * datasheets' IQH_REG: "Hardware resets this field to 0 whenever the queued invalidation is disabled").
 * QEMU refuses to disable while descriptors are pending; the model disables at once (nothing is ever in
 * flight between two register writes).
 *
 * Bounded work: one `process()` performs at most one queue's worth of descriptors (2^(QS+8) 128-bit or
 * 2^(QS+7) 256-bit ones), however software moves IQT meanwhile (a status write may target IQT itself), so
 * no guest can keep the model busy; what is left runs on the next trigger. Calls made while a descriptor
 * runs (a status or event write reaching the unit's registers) return at once: the running loop re-reads
 * IQT, QIES and IQE before each descriptor.
 */
import { type AccessCounter, type MemoryBus, type RegisterFile, toHex } from '@iommukit/core';
import type { EventInterrupt } from './event-interrupt.js';
import type { FaultStatus } from './fault-recording.js';
import type { VtdFeatures } from './features.js';
import {
  decodeInvDescriptor,
  INV_DESC_WORDS,
  INV_TYPE,
  type InvType,
  IQEI,
  type Iqei,
  type WaitInv,
  WIDE_INV_DESC_WORDS,
} from './inv-descriptors.js';
import { InvalidationDispatcher, type InvalidationTargets } from './invalidation.js';
import { FSTS_IQE, GSTS_QIES, ICS_IWC, IQ_INDEX_MASK, IQA_DW, IQA_QS, REG } from './regs.js';

export interface InvalidationQueueInit {
  readonly regs: RegisterFile;
  readonly bus: MemoryBus;
  /** Counts the descriptor fetches and status writes on the bus. */
  readonly counter: AccessCounter;
  readonly features: VtdFeatures;
  readonly targets: InvalidationTargets;
  readonly status: FaultStatus;
  /** The invalidation completion event (IECTL, IEDATA, IEADDR, IEUADDR). */
  readonly completion: EventInterrupt;
  /** The requester ID the unit's status writes carry. */
  readonly requesterId?: number;
}

/** Descriptor counters, by type. */
const TYPE_NAMES: Readonly<Record<InvType, string>> = {
  [INV_TYPE.CONTEXT_CACHE]: 'contextCache',
  [INV_TYPE.IOTLB]: 'iotlb',
  [INV_TYPE.DEVICE_TLB]: 'deviceTlb',
  [INV_TYPE.IEC]: 'iec',
  [INV_TYPE.WAIT]: 'wait',
  [INV_TYPE.PASID_IOTLB]: 'pasidIotlb',
  [INV_TYPE.PASID_CACHE]: 'pasidCache',
  [INV_TYPE.PASID_DEVICE_TLB]: 'pasidDeviceTlb',
  [INV_TYPE.PAGE_GROUP_RESPONSE]: 'pageGroupResponse',
};

/** IQT bit 4: must be 0 with 256-bit descriptors (IQH/IQT count 32-byte slots then). */
const IQT_ODD_SLOT = 0x10;
/** Bytes per 4 KiB page of queue (IQA.QS: 2^QS pages). */
const QUEUE_PAGE = 4096;
/** IQA bits 31:12: the low half of the queue base. */
const IQA_BASE_LO = 0xffff_f000;

export class InvalidationQueue {
  /** Descriptors performed, by type (`TYPE_NAMES`). */
  readonly performed: Record<string, number> = Object.fromEntries(
    Object.values(TYPE_NAMES).map((name) => [name, 0]),
  );
  /** IQEs raised, by IQEI. */
  readonly errors = new Array<number>(16).fill(0);
  statusWrites = 0;
  statusWriteAborts = 0;
  completionEvents = 0;
  /** `process()` calls that stopped at the bound with descriptors left. */
  boundReached = 0;
  private readonly dispatcher: InvalidationDispatcher;
  private readonly words = new Uint32Array(WIDE_INV_DESC_WORDS);
  private busy = false;

  constructor(private readonly init: InvalidationQueueInit) {
    this.dispatcher = new InvalidationDispatcher(init.targets, init.features);
    const { regs } = init;
    regs.onWrite(REG.IQT, () => this.process());
    // IECTL.IP clears when software services the condition by clearing ICS.IWC (VirtualBox, QEMU).
    regs.onWrite(REG.ICS, () => {
      if ((regs.get(REG.ICS) & ICS_IWC) === 0) init.completion.withdraw();
    });
  }

  /** GSTS.QIES: queued invalidation is enabled. */
  get enabled(): boolean {
    return (this.init.regs.get(REG.GSTS) & GSTS_QIES) !== 0;
  }

  /**
   * GCMD.QIE changed (the global command has already updated GSTS.QIES): enabling processes what IQT
   * already holds (Windows programs IQT before QIE, QEMU notes); disabling resets IQH to 0.
   */
  setEnabled(enabled: boolean): void {
    if (enabled) this.process();
    else this.init.regs.set(REG.IQH, 0);
  }

  /**
   * Performs descriptors from IQH towards IQT, at most one queue's worth, until the queue is empty,
   * disabled or stopped by an error. The unit calls it when IQT is written (the hook this class installs),
   * when queued invalidation is enabled (`setEnabled`) and when software clears FSTS.IQE. Returns the
   * descriptors performed.
   */
  process(): number {
    if (this.busy) return 0;
    this.busy = true;
    try {
      const bound = this.geometry().bytes / this.descriptorBytes();
      let performed = 0;
      while (this.step()) {
        if (++performed === bound) {
          if (!this.empty()) this.boundReached++;
          break;
        }
      }
      return performed;
    } finally {
      this.busy = false;
    }
  }

  stats(): Readonly<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [name, count] of Object.entries(this.performed))
      out[`qi${name[0]!.toUpperCase()}${name.slice(1)}`] = count;
    out.qiErrors = this.errors.reduce((sum, n) => sum + n, 0);
    out.qiStatusWrites = this.statusWrites;
    out.qiStatusWriteAborts = this.statusWriteAborts;
    out.qiCompletionEvents = this.completionEvents;
    out.qiBoundReached = this.boundReached;
    return out;
  }

  private wide(): boolean {
    return (this.init.regs.get(REG.IQA) & IQA_DW) !== 0;
  }

  private descriptorBytes(): number {
    return this.wide() ? 4 * WIDE_INV_DESC_WORDS : 4 * INV_DESC_WORDS;
  }

  /** The queue's base address and size in bytes (IQA_REG). */
  private geometry(): { base: number; bytes: number } {
    const { regs } = this.init;
    const lo = regs.get(REG.IQA);
    const qs = (lo >>> IQA_QS.lsb) & (2 ** IQA_QS.width - 1);
    return {
      base: regs.get(REG.IQA + 4) * 2 ** 32 + ((lo & IQA_BASE_LO) >>> 0),
      bytes: QUEUE_PAGE * 2 ** qs,
    };
  }

  private empty(): boolean {
    const { regs } = this.init;
    return regs.get(REG.IQH) === (regs.get(REG.IQT) & IQ_INDEX_MASK);
  }

  /** Performs the descriptor at IQH if the queue can go on; false when it cannot (nothing performed). */
  private step(): boolean {
    const { regs, bus, counter, features } = this.init;
    if (!this.enabled || (regs.get(REG.FSTS) & FSTS_IQE) !== 0 || this.empty()) return false;
    const wide = this.wide();
    const { base, bytes } = this.geometry();
    const head = regs.get(REG.IQH);
    const tail = regs.get(REG.IQT) & IQ_INDEX_MASK;
    if (wide && (tail & IQT_ODD_SLOT) !== 0)
      return this.fail(IQEI.TAIL_MISALIGNED, `IQT ${toHex(tail)} is not 256-bit aligned`);
    if (tail >= bytes)
      return this.fail(IQEI.INVALID_TAIL, `IQT ${toHex(tail)} is beyond the ${bytes}-byte queue`);
    if (!wide && this.init.targets.scalable())
      return this.fail(IQEI.INVALID_WIDTH, '128-bit descriptors in scalable mode');
    const count = wide ? WIDE_INV_DESC_WORDS : INV_DESC_WORDS;
    if (!bus.readWords(base + head, this.words, count, counter))
      return this.fail(IQEI.FETCH_ERROR, `descriptor fetch at ${toHex(base + head)} aborted`);
    const d = decodeInvDescriptor(this.words, 0, wide, features);
    if ('invalid' in d) return this.fail(d.iqei, d.invalid);
    const refused = this.dispatcher.refusal(d, wide);
    if (refused !== undefined) return this.fail(refused.iqei, refused.invalid);
    // Valid: the head passes it before it is performed (§6.5.2).
    regs.set(REG.IQH, (head + 4 * count) % bytes);
    if (d.type === INV_TYPE.WAIT) this.wait(d);
    else {
      this.dispatcher.perform(d);
      const rejected = this.init.targets.forward?.(d);
      if (rejected !== undefined) {
        regs.set(REG.IQH, head);
        return this.fail(rejected.iqei, rejected.invalid);
      }
    }
    this.performed[TYPE_NAMES[d.type]]!++;
    return true;
  }

  private wait(d: WaitInv): void {
    const { bus, counter, regs, requesterId } = this.init;
    if (d.sw) {
      this.statusWrites++;
      if (!bus.write(d.statusAddr, 4, d.statusData, counter, requesterId).ok) this.statusWriteAborts++;
    }
    if (d.iflag && (regs.get(REG.ICS) & ICS_IWC) === 0) {
      regs.set(REG.ICS, regs.get(REG.ICS) | ICS_IWC);
      this.completionEvents++;
      this.init.completion.raise();
    }
    if (this.init.targets.tracer?.enabled)
      this.trace(
        'wait',
        `${d.sw ? `sw ${toHex(d.statusData)} to ${toHex(d.statusAddr)} ` : ''}${d.iflag ? 'if' : ''}`,
      );
  }

  /** IQERCD.IQEI takes the reason, then FSTS.IQE is raised; IQH stays on the descriptor. */
  private fail(iqei: Iqei, reason: string): false {
    const { regs, status } = this.init;
    regs.set(REG.IQERCD, iqei);
    this.errors[iqei]!++;
    status.raiseStatus(FSTS_IQE);
    if (this.init.targets.tracer?.enabled)
      this.trace('iqe', `IQEI ${iqei} at IQH ${toHex(regs.get(REG.IQH))}: ${reason}`);
    return false;
  }

  /** Callers check it first, so no message is built while nobody listens. */
  /** Only called when the tracer is enabled. */
  private trace(name: string, message: string): void {
    this.init.targets.tracer!.trace(name, message);
  }
}
