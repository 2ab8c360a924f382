/**
 * The AMD IOMMU's interrupt remapping (AMD IOMMU Specification, pub. 48882 rev 3.x, §2.2.5 "Interrupt
 * Remapping Tables" and the table VirtualBox cites as Table 19 "IOMMU Controls and Actions for Upstream
 * Interrupts"): what a device's write into the interrupt window becomes, behind core's
 * `InterruptRemappingHardware`. Entry formats and checks: irte.ts.
 *
 * Per request (VirtualBox iommuAmdMsiRemap / iommuAmdIntrTableLookup, QEMU amdvi_int_remap_msi):
 * - Control.IommuEn = 0: forwarded unchanged (VirtualBox).
 * - The DTE comes from the unit's device-table path (`dte`, which owns the DTE cache and logs its own fetch
 *   failures). IV = 0: forwarded unremapped. IV = 1: a reserved bit of the interrupt half is
 *   ILLEGAL_DEV_TABLE_ENTRY whatever the message type (VirtualBox checks 255:128 first).
 * - The message type, MSI data[10:8] (QEMU and VirtualBox):
 *   - fixed (0) or arbitrated (1) go through IntCtl. IntCtl 3 or (with IntCtl = remap) IntTabLen > 11 are
 *     ILLEGAL_DEV_TABLE_ENTRY (`checkDteInterrupt`). IntCtl 0 target-aborts and logs INVALID_DEVICE_REQUEST
 *     type 101b, "posted write to the Interrupt/EOI range from an I/O device that has IntCtl=00b" (the
 *     spec's table as sharpjs/home linux/pc/journal.md quotes it; VirtualBox only target-aborts). IntCtl 1
 *     forwards unmapped; 2 remaps through the entry at IntTablePtr + index · 4 (GAEn = 0) or · 16 (GAEn = 1).
 *   - SMI (2) is forwarded: VirtualBox passes SMIs ("We don't implement SMI filters"), QEMU refuses them; the
 *     model follows VirtualBox and implements no SMI filter. DTE.SysMgt is not consulted: no source ties it
 *     to MSIs (it governs the system-management message range).
 *   - NMI (4), INIT (5), ExtINT (7) are forwarded when NMIPass, InitPass, EIntPass is set, else
 *     target-aborted without an event; so are they with DM = 1 (logical), "valid for fixed and arbitrated
 *     interrupts only" (QEMU, VirtualBox citing the note below Table 19).
 *   - 3 and 6 are reserved: target-aborted (VirtualBox). LINT0/LINT1 cannot be expressed by an MSI
 *     (VirtualBox: "LINT0/LINT1 pins cannot be driven by PCI(e) devices"), so Lint0Pass/Lint1Pass are unused.
 * - 2048-entry mode (Control.NumIntRemapMode = 01b, EFR2.NumIntRemapSup): Linux sets the message's DM "to 1
 *   regardless of the actual destination mode, which is signified by the IRTE[DM]" (fill_msi_msg), so data
 *   [10:8] of indexes 512–2047 are index bits, not a type. The model reads that as: in this mode a DM = 1
 *   message is fixed/arbitrated whatever data[10:8] says. Inferred from Linux; no stored spec text says it.
 * - Entry faults (irte.ts) and an index at or beyond 2^IntTabLen are IO_PAGE_FAULT with I = 1 and the DTE's
 *   DomainID; DTE.IG suppresses all of them, IRTE.SupIOPF those of a fetched entry (VirtualBox
 *   iommuAmdIoPageFaultEventRaise). A read of the entry that aborts logs nothing: VirtualBox found no event
 *   for it in the spec ("There's no interrupt table hardware error event") and neither did this model.
 * Every refusal drops the interrupt (`blocked`); `recorded` says whether an event reached the log.
 * ILLEGAL_DEV_TABLE_ENTRY carries I = 1, the message address with bits 1:0 clear and RZ for reserved bits
 * and IntCtl 3 (VirtualBox sets RZ for both; dte.ts keeps RZ to RESERVED_BITS for the DMA path).
 *
 * The interrupt remapping table cache (IRTE cache): entries by (DeviceID, index), only usable ones
 * (VirtualBox caches only the entries it remapped through), so making an entry valid needs no invalidation;
 * changing a cached one needs INVALIDATE_INTERRUPT_TABLE (`invalidateDevice`) or INVALIDATE_IOMMU_ALL
 * (`invalidateAll`), which Linux sends after every write unless Control.IRTCacheDis is set
 * (iommu_flush_irt_and_complete). With IRTCacheDis the cache is neither read nor filled. Linux notes that the
 * posted format's Destination, IsRun and GATag are never cached (amd_iommu_update_ga); they do not reach
 * this model's outcome, so the cache keeps whole entries. A change of GAEn or GAMEn (entry size or format)
 * flushes the cache: a model choice, Linux never changes them with remapping live.
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
  toHex,
} from '@iommukit/core';
import { checkDteInterrupt, type DeviceTableEntry, DTE_ILLEGAL, INT_CTL } from './dte.js';
import { type AmdEvent, EVENT_FLAG, INVALID_DEVICE_REQUEST_TYPE } from './events.js';
import type { AmdFeatures } from './features.js';
import {
  checkIrte,
  decodeIrte32,
  decodeIrte128,
  INDEX_BEYOND_TABLE_FLAGS,
  INT_TYPE,
  IRTE128_WORDS,
  type Irte,
  irteAddress,
  irteFaultFlags,
  irteInterrupt,
  MSI_ADDRESS_DM,
  msiIrteIndex,
  msiType,
  type VapicIrte,
} from './irte.js';
import {
  CTRL_GA_EN,
  CTRL_GAM_EN,
  CTRL_HI_IRT_CACHE_DIS,
  CTRL_HI_NUM_INT_REMAP_MODE,
  CTRL_HI_XT_EN,
  CTRL_IOMMU_EN,
  GAM_EN,
  NUM_INT_REMAP_MODE,
  type RegField,
} from './regs.js';

/** The DTE of a device as the unit's device-table path hands it over, or why there is none. */
export type InterruptDteFetch =
  | { readonly dte: DeviceTableEntry; readonly words: ArrayLike<number> }
  /** The fetch failed and the device-table path has dealt with its event (`recorded`: whether one was logged). */
  | { readonly dte?: undefined; readonly vendorCode: string; readonly recorded: boolean };

export interface AmdInterruptRemappingContext {
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  readonly features: Pick<
    AmdFeatures,
    'guestVirtualApic' | 'guestVapicMode' | 'x2apic' | 'interruptRemapEntries'
  >;
  /** The IRTE cache's geometry. */
  readonly cacheGeometry: CacheGeometry;
  /** The DTE of `deviceId` (the unit's DTE cache, or a device-table read). */
  dte(deviceId: number): InterruptDteFetch;
  /** Writes an event to the event log; whether it was logged. */
  logEvent(event: AmdEvent): boolean;
  readonly tracer?: ITracer;
  readonly instance: string;
}

const PASSTHROUGH: InterruptRequestOutcome = Object.freeze({ kind: 'passthrough' });
const TARGET_ABORT = 'TARGET_ABORT';

const field = (value: number, { lsb, width }: RegField): number => (value >>> lsb) & (2 ** width - 1);

export class AmdInterruptRemapping implements InterruptRemappingHardware {
  /** Usable entries by (DeviceID, index). */
  readonly cache: EntryCache<Irte>;
  private enabled = false;
  /** Control.GAEn: 128-bit entries. */
  private ga = false;
  /** Control.GAMEn = 1 (with GAEn): GuestMode selects the posted format. */
  private vapic = false;
  /** Control.XTEn: 32-bit destinations. */
  private xt = false;
  /** Control.NumIntRemapMode = 2048 entries. */
  private twoK = false;
  /** Control.IRTCacheDis. */
  private cacheDisabled = false;
  private readonly words = new Uint32Array(IRTE128_WORDS);
  private requests = 0;
  private remapped = 0;
  private posted = 0;
  private forwarded = 0;
  private blocked = 0;

  constructor(private readonly ctx: AmdInterruptRemappingContext) {
    this.cache = new EntryCache('amd-vi IRTE cache', ctx.cacheGeometry);
  }

  /**
   * Latches the Control register bits remapping reads (both halves as the register holds them): IommuEn,
   * GAEn, GAMEn, XTEn, NumIntRemapMode, IRTCacheDis, each only with its feature.
   */
  applyControl(lo: number, hi: number): void {
    const f = this.ctx.features;
    const ga = f.guestVirtualApic && (lo & CTRL_GA_EN) !== 0;
    const vapic = ga && f.guestVapicMode && field(lo, CTRL_GAM_EN) === GAM_EN.VAPIC;
    const flush = ga !== this.ga || vapic !== this.vapic;
    this.enabled = (lo & CTRL_IOMMU_EN) !== 0;
    this.ga = ga;
    this.vapic = vapic;
    this.xt = f.x2apic && (hi & CTRL_HI_XT_EN) !== 0;
    this.twoK =
      f.interruptRemapEntries === 2048 && field(hi, CTRL_HI_NUM_INT_REMAP_MODE) === NUM_INT_REMAP_MODE.E2048;
    this.cacheDisabled = (hi & CTRL_HI_IRT_CACHE_DIS) !== 0;
    const flushed = flush ? this.cache.clear() : 0;
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'ir.control',
        `interrupt remapping: ${this.enabled ? 'on' : 'off'}, ${ga ? '128' : '32'}-bit IRTEs${vapic ? ', vAPIC' : ''}${this.xt ? ', XT' : ''}${this.twoK ? ', 2048 entries' : ''}${this.cacheDisabled ? ', IRTE cache disabled' : ''}${flush ? `, IRTE cache flushed (${flushed})` : ''}`,
      );
  }

  request(deviceId: number, address: bigint, data: number): InterruptRequestOutcome {
    this.requests++;
    if (!this.enabled) return this.forward();
    const fetched = this.ctx.dte(deviceId);
    if (fetched.dte === undefined) return this.block(deviceId, address, fetched.vendorCode, fetched.recorded);
    const { dte, words } = fetched;
    if (!dte.iv) return this.forward();
    // Requests come from the interrupt window (core's Endpoint), below 2^32.
    const low = Number(address) >>> 0;
    const type = msiType(data);
    const logical = (low & MSI_ADDRESS_DM) !== 0;
    const intCtlGoverned = type <= INT_TYPE.ARBITRATED || (this.twoK && logical);
    const illegal = checkDteInterrupt(dte, words);
    if (illegal === DTE_ILLEGAL.RESERVED_BITS || (intCtlGoverned && illegal !== 0))
      return this.illegalDte(deviceId, address, low, illegal !== DTE_ILLEGAL.INT_TAB_LEN);
    if (!intCtlGoverned) return this.passBits(dte, deviceId, address, type, logical);
    if (dte.intCtl === INT_CTL.FORWARD_UNMAPPED) return this.forward();
    if (dte.intCtl === INT_CTL.TARGET_ABORT) {
      const recorded = this.ctx.logEvent({
        kind: 'invalid-device-request',
        deviceId,
        pasid: 0,
        flags: 0,
        type: INVALID_DEVICE_REQUEST_TYPE.INTERRUPT_WRITE_WITH_INTCTL_ABORT,
        address: low,
      });
      return this.block(deviceId, address, 'INVALID_DEVICE_REQUEST', recorded);
    }
    return this.remap(dte, deviceId, address, low, data);
  }

  /** INVALIDATE_INTERRUPT_TABLE: drops the cached entries of `deviceId`; returns how many. */
  invalidateDevice(deviceId: number): number {
    const dropped = this.cache.deleteFirst(deviceId);
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'irt.invalidate',
        `IRTE cache invalidation of device ${toHex(deviceId)}: ${dropped} dropped`,
      );
    return dropped;
  }

  /** INVALIDATE_IOMMU_ALL: drops every cached entry; returns how many. */
  invalidateAll(): number {
    const dropped = this.cache.clear();
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'irt.invalidate',
        `IRTE cache global invalidation: ${dropped} dropped`,
      );
    return dropped;
  }

  stats(): Record<string, number> {
    return {
      requests: this.requests,
      remapped: this.remapped,
      posted: this.posted,
      forwarded: this.forwarded,
      blocked: this.blocked,
      irteCacheHits: this.cache.hits,
      irteCacheMisses: this.cache.misses,
    };
  }

  /** NMI, INIT, ExtINT by their pass bits; SMI forwarded; logical destinations and reserved types aborted. */
  private passBits(
    dte: DeviceTableEntry,
    deviceId: number,
    address: bigint,
    type: number,
    logical: boolean,
  ): InterruptRequestOutcome {
    const pass =
      !logical &&
      (type === INT_TYPE.SMI ||
        (type === INT_TYPE.NMI && dte.nmiPass) ||
        (type === INT_TYPE.INIT && dte.initPass) ||
        (type === INT_TYPE.EXTINT && dte.eIntPass));
    return pass ? this.forward() : this.block(deviceId, address, TARGET_ABORT, false);
  }

  private remap(
    dte: DeviceTableEntry,
    deviceId: number,
    address: bigint,
    low: number,
    data: number,
  ): InterruptRequestOutcome {
    const index = msiIrteIndex(data);
    if (index >= 2 ** dte.intTabLen)
      return this.ioPageFault(dte, deviceId, address, low, INDEX_BEYOND_TABLE_FLAGS, false);
    const irte = this.entry(dte, deviceId, index);
    if (irte === undefined) return this.block(deviceId, address, TARGET_ABORT, false);
    const check = checkIrte(irte);
    if (check !== 0)
      return this.ioPageFault(dte, deviceId, address, low, irteFaultFlags(check), irte.supIopf);
    if (irte.guestMode) return this.post(deviceId, index, irte);
    const interrupt = irteInterrupt(irte, this.xt, low, data);
    this.remapped++;
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'ir.remap',
        `interrupt from ${toHex(deviceId)} via IRTE ${index} → vector ${toHex(interrupt.vector)} APIC ${toHex(interrupt.destination)}`,
        { deviceId, index, vector: interrupt.vector, destination: interrupt.destination },
      );
    return { kind: 'remapped', index, interrupt };
  }

  /** A posted entry, decoded only: nothing is written to the vAPIC page, no doorbell, no GA log entry. */
  private post(deviceId: number, index: number, irte: VapicIrte): InterruptRequestOutcome {
    this.posted++;
    const descriptor = BigInt(irte.gaRootPtr);
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'ir.post',
        `interrupt from ${toHex(deviceId)} via IRTE ${index} for the vAPIC page at ${toHex(descriptor)}: vector ${toHex(irte.vector)} (not posted: the vAPIC is not modelled)`,
        { deviceId, index, vector: irte.vector, descriptor },
      );
    return { kind: 'posted', index, posted: { descriptor, vector: irte.vector } };
  }

  /** Entry `index` of the device's table, from the IRTE cache or memory; undefined when the read aborts. */
  private entry(dte: DeviceTableEntry, deviceId: number, index: number): Irte | undefined {
    if (!this.cacheDisabled) {
      const cached = this.cache.get(deviceId, index);
      if (cached !== undefined) return cached;
    }
    const at = irteAddress(dte.intTablePtr, index, this.ga);
    const count = this.ga ? IRTE128_WORDS : 1;
    const read = this.ctx.bus.readWords(at, this.words, count, this.ctx.counter);
    const irte = !read
      ? undefined
      : this.ga
        ? decodeIrte128(this.words, this.vapic)
        : decodeIrte32(this.words[0]!);
    const usable = irte !== undefined && checkIrte(irte) === 0;
    if (usable && !this.cacheDisabled) this.cache.set(deviceId, index, irte);
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'irt.fetch',
        `fetch IRTE[${index}] of ${toHex(deviceId)} at ${toHex(at)}: ${irte === undefined ? 'read aborted' : `${irte.guestMode ? 'vAPIC' : 'remapped'}${usable ? '' : ', not cached'}`}`,
      );
    return irte;
  }

  private forward(): InterruptRequestOutcome {
    this.forwarded++;
    return PASSTHROUGH;
  }

  /** ILLEGAL_DEV_TABLE_ENTRY for the interrupt half of the DTE. */
  private illegalDte(deviceId: number, address: bigint, low: number, rz: boolean): InterruptRequestOutcome {
    const recorded = this.ctx.logEvent({
      kind: 'illegal-dev-table-entry',
      deviceId,
      pasid: 0,
      flags: EVENT_FLAG.I | (rz ? EVENT_FLAG.RZ : 0),
      address: (low & ~3) >>> 0,
    });
    return this.block(deviceId, address, 'ILLEGAL_DEV_TABLE_ENTRY', recorded);
  }

  /** IO_PAGE_FAULT for an interrupt, unless DTE.IG or the entry's SupIOPF suppresses it. */
  private ioPageFault(
    dte: DeviceTableEntry,
    deviceId: number,
    address: bigint,
    low: number,
    flags: number,
    supIopf: boolean,
  ): InterruptRequestOutcome {
    const recorded =
      !dte.ig &&
      !supIopf &&
      this.ctx.logEvent({
        kind: 'io-page-fault',
        deviceId,
        domainOrPasid: dte.domainId,
        flags,
        address: low,
      });
    return this.block(deviceId, address, 'IO_PAGE_FAULT', recorded);
  }

  private block(
    deviceId: number,
    address: bigint,
    vendorCode: string,
    recorded: boolean,
  ): InterruptRequestOutcome {
    this.blocked++;
    if (this.ctx.tracer?.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'ir.block',
        `interrupt from ${toHex(deviceId)} at ${toHex(address)} dropped: ${vendorCode}${recorded ? '' : ', not logged'}`,
        { deviceId, vendorCode, recorded },
      );
    return {
      kind: 'blocked',
      fault: {
        kind: 'interrupt',
        vendorCode,
        streamId: deviceId,
        pasid: NO_PASID,
        iova: address,
        access: PERM_WRITE,
        recorded,
      },
    };
  }
}
