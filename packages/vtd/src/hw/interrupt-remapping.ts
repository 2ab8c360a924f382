/**
 * The VT-d interrupt remapping unit (VT-d specification §5.1 "Interrupt Remapping", §5.2 "Interrupt
 * Posting"): what a device's write into the interrupt window becomes, behind core's
 * `InterruptRemappingHardware`.
 *
 * - Remapping off (GSTS.IRES = 0): every request passes through unchanged.
 * - Compatibility format (address bit 4 clear, §5.1.5.1): passes through when GSTS.CFIS = 1 and the
 *   latched IRTA.EIME = 0; otherwise it is blocked with fault 0x25. GCMD.CFI is "effective only when
 *   interrupt-remapping is enabled and Extended Interrupt Mode (x2APIC mode) is disabled" (GCMD_REG field
 *   text, as Intel datasheets reproduce it); QEMU and VirtualBox block on EIME the same way.
 * - Remappable format (§5.1.5.2): data bits 31:16 set → 0x20; handle (+ subhandle with SHV) beyond the
 *   table → 0x21; the IRTE (16 bytes at IRTA + 16·index, §9.10/§9.11) through the interrupt entry cache;
 *   a bus abort → 0x23; `checkIrte` (0x22, 0x24); source validation → 0x26. A remapped entry gives its
 *   interrupt; a posted one (IM = 1, CAP.PI) is recorded in its posted-interrupt descriptor (§5.2.3).
 *
 * The table is the one latched by SIRTP (§11.4.12 IRTA_REG: address, size 2^(S+1), EIME), not the live
 * register: software can rewrite IRTA without effect until the next SIRTP. Before the first SIRTP the unit
 * knows no table (0 entries), so every remappable request faults 0x21 — a model choice; the spec only
 * says SIRTP must precede IRE.
 *
 * Qualified faults (suppressed by the IRTE's FPD) are every fault found once the entry has been read:
 * 0x22, 0x24, 0x26, and the posted-interrupt descriptor faults 0x27/0x28. 0x20, 0x21, 0x23 and 0x25 have
 * no entry and are always recorded. QEMU ("intel-iommu: Report interrupt remapping faults", 2023: "the
 * remaining potential fault conditions are qualified by the FPD bit in the IRTE. Even not present") and
 * VirtualBox (`vtdIrFaultIsQualified`) agree. A recorded IR fault carries the interrupt index in FRCD.FI
 * (QEMU `VTD_FRCD_IR_IDX`, bits 63:48); 0x20 and 0x25 have none (`index` undefined; VirtualBox writes 0
 * for both, QEMU for 0x25).
 * An index past 0xFFFF (handle + subhandle) is reported as its low 16 bits.
 *
 * Interrupt entry cache (IEC, §6 "Caching Translation Information"; its invalidation descriptor §6.5.2.7):
 * IRTEs by index, only those `checkIrte` accepts, so a driver may make a not-present entry present without
 * an invalidation. Caching mode does not change that: caching mode (§6.1) lets hardware cache not-present
 * and erroneous root, context and PASID entries and second-stage entries, and names no IRTEs; no source
 * found says either way for the IEC.
 * Linux flushes the IEC after every IRTE write, so it does not depend on the answer. A cached entry is
 * re-checked on every use, against the EIME latched now.
 *
 * SIRTP invalidates the IEC only with CAP.ESIRTPS; without it "software must globally invalidate the
 * interrupt entry cache" after SIRTP (GCMD_REG.SIRTP text), and a driver that does not keeps using
 * entries of the old table.
 */
import {
  type AccessCounter,
  type CacheGeometry,
  EntryCache,
  type InterruptRemappingHardware,
  type InterruptRequestOutcome,
  type ITracer,
  type MemoryBus,
  NO_PASID,
  PERM_WRITE,
  type PostedInterrupt,
  toHex,
  type X86Interrupt,
} from '@iommukit/core';
import { IR_FR } from './fault-reasons.js';
import type { VtdFeatures } from './features.js';
import {
  checkIrte,
  decodeIrte,
  decodeRemappableMsi,
  IRTE_BYTES,
  IRTE_WORDS,
  type Irte,
  irteInterrupt,
  type PostedIrte,
  postedDescriptorAddress,
  type RemappedIrte,
  sourceAllowed,
} from './irte.js';
import { IRTA_EIME, IRTA_IRTA, IRTA_S } from './regs.js';

/** An interrupt-remapping fault as the fault recorder takes it (FRCD.SID, FRCD.FI[63:48], FRCD.FR). */
export interface IrFaultRecord {
  readonly sid: number;
  readonly index: number | undefined;
  readonly reason: number;
}

export interface VtdInterruptRemappingContext {
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  readonly features: VtdFeatures;
  readonly iecGeometry: CacheGeometry;
  /** Records a fault in the fault recording registers; returns whether it was recorded. */
  recordFault(fault: IrFaultRecord): boolean;
  readonly tracer?: ITracer;
  readonly instance: string;
}

/** IRTA_REG as SIRTP latched it. */
export interface LatchedIrta {
  /** The table's byte address (IRTA bits 63:12). */
  readonly base: number;
  /** 2^(S + 1) entries; 0 before the first SIRTP. */
  readonly entries: number;
  /** EIME: x2APIC (32-bit) destinations, and compatibility-format interrupts blocked. */
  readonly eim: boolean;
}

const NO_TABLE: LatchedIrta = Object.freeze({ base: 0, entries: 0, eim: false });

/**
 * The posted-interrupt descriptor (§9.12) as far as the unit uses it: PIR (bits 255:0, one bit per vector)
 * and the control qword (Linux `struct pi_desc`): ON 256, SN 257, NV 279:272, NDST 319:288; bits 271:258
 * and 287:280 reserved. Bits 511:320 are not read (whether hardware checks them is not confirmed).
 */
const PID_WORDS = 10;
const PID_CONTROL = 8;
const PID_NDST = 9;
const PID_ON = 1 << 0;
const PID_SN = 1 << 1;
const PID_NV_SHIFT = 16;
const PID_CONTROL_RESERVED = 0xff00_fffc;

const PASSTHROUGH: InterruptRequestOutcome = Object.freeze({ kind: 'passthrough' });

export class VtdInterruptRemapping implements InterruptRemappingHardware {
  /** IRTEs by interrupt index. */
  readonly iec: EntryCache<Irte>;
  private table: LatchedIrta = NO_TABLE;
  private enabled = false;
  private compatibilityAllowed = false;
  private readonly words = new Uint32Array(IRTE_WORDS);
  private readonly pid = new Uint32Array(PID_WORDS);
  private requests = 0;
  private remapped = 0;
  private posted = 0;
  private blocked = 0;

  constructor(private readonly ctx: VtdInterruptRemappingContext) {
    this.iec = new EntryCache('vtd interrupt entry cache', ctx.iecGeometry);
  }

  /** The table SIRTP latched last. */
  get latchedTable(): LatchedIrta {
    return this.table;
  }

  /** GCMD.SIRTP: latches IRTA_REG (both halves as software wrote them); with CAP.ESIRTPS also flushes the IEC. */
  latchTable(irtaLo: number, irtaHi: number): void {
    const s = (irtaLo >>> IRTA_S.lsb) & (2 ** IRTA_S.width - 1);
    this.table = {
      base: ((irtaLo & ~(2 ** IRTA_IRTA.lsb - 1)) >>> 0) + irtaHi * 2 ** 32,
      entries: 2 ** (s + 1),
      eim: this.ctx.features.extendedInterruptMode && (irtaLo & IRTA_EIME) !== 0,
    };
    const flushed = this.ctx.features.sirtpInvalidates ? this.iec.clear() : 0;
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'ir.sirtp',
        `SIRTP: table at ${toHex(this.table.base)}, ${this.table.entries} entries, EIME ${this.table.eim ? 1 : 0}${this.ctx.features.sirtpInvalidates ? `, IEC flushed (${flushed})` : ''}`,
      );
  }

  /** GSTS.IRES. */
  setEnabled(on: boolean): void {
    this.enabled = on;
  }

  /** GSTS.CFIS. */
  setCompatibilityAllowed(on: boolean): void {
    this.compatibilityAllowed = on;
  }

  request(sid: number, address: bigint, data: number): InterruptRequestOutcome {
    this.requests++;
    if (!this.enabled) return PASSTHROUGH;
    const msi = decodeRemappableMsi(address, data);
    const table = this.table;
    if (!msi.remappable)
      return this.compatibilityAllowed && !table.eim
        ? PASSTHROUGH
        : this.block(sid, address, IR_FR.COMPAT_BLOCKED, undefined, undefined);
    if (msi.reservedData) return this.block(sid, address, IR_FR.REQUEST_RESERVED, undefined, undefined);
    const index = msi.index;
    if (index >= table.entries)
      return this.block(sid, address, IR_FR.INDEX_BEYOND_TABLE, index & 0xffff, undefined);
    const irte = this.entry(index);
    if (irte === undefined) return this.block(sid, address, IR_FR.IRTE_ACCESS_ERROR, index, undefined);
    const check = checkIrte(irte, this.ctx.features, table.eim);
    if (check !== 0) return this.block(sid, address, check, index, irte);
    if (!sourceAllowed(irte, sid)) return this.block(sid, address, IR_FR.SOURCE_INVALID, index, irte);
    return irte.mode === 'posted' ? this.post(sid, address, index, irte) : this.remap(sid, index, irte);
  }

  /** IEC invalidation, global granularity; returns how many entries were dropped. */
  invalidateAll(): number {
    const dropped = this.iec.clear();
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'iec.invalidate',
        `IEC global invalidation: ${dropped} dropped`,
      );
    return dropped;
  }

  /**
   * IEC invalidation, index-selective (§6.5.2.7): the 2^`indexMask` entries whose index equals `index`
   * once its low `indexMask` bits are ignored. Returns how many were dropped.
   */
  invalidateIndex(index: number, indexMask: number): number {
    const block = index >>> indexMask;
    const dropped = this.iec.deleteWhere((cached) => cached >>> indexMask === block);
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'iec.invalidate',
        `IEC invalidation of index ${index} mask ${indexMask}: ${dropped} dropped`,
      );
    return dropped;
  }

  stats(): Record<string, number> {
    return {
      requests: this.requests,
      remapped: this.remapped,
      posted: this.posted,
      blocked: this.blocked,
      iecHits: this.iec.hits,
      iecMisses: this.iec.misses,
    };
  }

  /** The IRTE at `index`, from the IEC or read from the latched table; undefined when the read aborts. */
  private entry(index: number): Irte | undefined {
    const cached = this.iec.get(index);
    if (cached !== undefined) return cached;
    const { features, bus, counter } = this.ctx;
    const at = this.table.base + index * IRTE_BYTES;
    if (!bus.readWords(at, this.words, IRTE_WORDS, counter)) return undefined;
    const irte = decodeIrte(this.words);
    const usable = checkIrte(irte, features, this.table.eim) === 0;
    if (usable) this.iec.set(index, 0, irte);
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'ir.fetch',
        `fetch IRTE[${index}] at ${toHex(at)}: ${irte.mode}${irte.present ? '' : ', not present'}${usable ? '' : ', not cached'}`,
      );
    return irte;
  }

  private remap(sid: number, index: number, irte: RemappedIrte): InterruptRequestOutcome {
    // checkIrte has refused the reserved delivery modes, the only case without an interrupt.
    const interrupt = irteInterrupt(irte, this.table.eim)!;
    this.remapped++;
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'ir.remap',
        `interrupt from ${toHex(sid)} via IRTE ${index} → vector ${toHex(interrupt.vector)} APIC ${toHex(interrupt.destination)}`,
        { sid, index, vector: interrupt.vector, destination: interrupt.destination },
      );
    return { kind: 'remapped', index, interrupt };
  }

  /**
   * §5.2.3: one atomic read-modify-write of the descriptor sets the vector's PIR bit and, when no
   * notification is outstanding (ON = 0) and the entry is urgent or notifications are not suppressed
   * (SN = 0), sets ON and sends the notification event: vector NV to NDST, physical, fixed, edge, RH 0.
   */
  private post(sid: number, address: bigint, index: number, irte: PostedIrte): InterruptRequestOutcome {
    const at = postedDescriptorAddress(irte);
    const pid = this.pid;
    if (!this.ctx.bus.readWords(at, pid, PID_WORDS, this.ctx.counter))
      return this.block(sid, address, IR_FR.PID_ACCESS_ERROR, index, irte);
    const control = pid[PID_CONTROL]!;
    if ((control & PID_CONTROL_RESERVED) !== 0)
      return this.block(sid, address, IR_FR.PID_RESERVED, index, irte);
    pid[irte.vector >>> 5]! |= 1 << (irte.vector & 31);
    const notifies = (control & PID_ON) === 0 && (irte.urg || (control & PID_SN) === 0);
    if (notifies) pid[PID_CONTROL] = control | PID_ON;
    // The read has just succeeded on these bytes, so the write-back cannot abort.
    this.ctx.bus.writeWords(at, pid, PID_WORDS, this.ctx.counter);
    this.posted++;
    const descriptor = BigInt(at);
    const posted: PostedInterrupt = notifies
      ? { descriptor, vector: irte.vector, notify: this.notification(control, pid[PID_NDST]!) }
      : { descriptor, vector: irte.vector };
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'ir.post',
        `interrupt from ${toHex(sid)} via IRTE ${index} posted: vector ${toHex(irte.vector)} to PID ${toHex(at)}${posted.notify ? `, notify vector ${toHex(posted.notify.vector)} APIC ${toHex(posted.notify.destination)}` : ''}`,
        { sid, index, vector: irte.vector, descriptor },
      );
    return { kind: 'posted', index, posted };
  }

  /** The notification event of a descriptor; NDST holds the APIC ID in bits 15:8 in xAPIC mode (EIME = 0). */
  private notification(control: number, ndst: number): X86Interrupt {
    return {
      vector: (control >>> PID_NV_SHIFT) & 0xff,
      destination: this.table.eim ? ndst >>> 0 : (ndst >>> 8) & 0xff,
      destinationMode: 'physical',
      deliveryMode: 'fixed',
      trigger: 'edge',
      redirectionHint: false,
    };
  }

  /** Blocks the request; records the fault unless `irte` (qualified faults only) has FPD set. */
  private block(
    sid: number,
    address: bigint,
    reason: number,
    index: number | undefined,
    irte: Irte | undefined,
  ): InterruptRequestOutcome {
    this.blocked++;
    const recorded = !irte?.fpd && this.ctx.recordFault({ sid, index, reason });
    const vendorCode = `DMAR_FR_0x${reason.toString(16).padStart(2, '0')}`;
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'ir.block',
        `interrupt from ${toHex(sid)} at ${toHex(address)} blocked: ${vendorCode}${index === undefined ? '' : ` (index ${index})`}${recorded ? '' : ', not recorded'}`,
        { sid, reason, recorded },
      );
    return {
      kind: 'blocked',
      fault: {
        kind: 'interrupt',
        vendorCode,
        streamId: sid,
        pasid: NO_PASID,
        iova: address,
        access: PERM_WRITE,
        recorded,
      },
    };
  }
}
