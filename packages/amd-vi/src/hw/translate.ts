/**
 * The AMD IOMMU translation of one untranslated DMA request (AMD IOMMU spec pub. 48882 §2.1–§2.2), in the
 * order VirtualBox's model (iommuAmdMemAccess, iommuAmdDteLookup) and QEMU's (amdvi_translate) agree on:
 * 1. Control.IommuEn = 0: the request passes untranslated.
 * 2. The DTE of the DeviceID (device-table.ts): beyond the table → IO_PAGE_FAULT (never suppressed); a read
 *    abort → DEV_TAB_HARDWARE_ERROR; an illegal translation half → ILLEGAL_DEV_TABLE_ENTRY. V = 0: untranslated.
 * 3. The exclusion range (ExclBase.ExEn, with Allow or DTE.EX), for requests without PASID: untranslated,
 *    like an identity mapping (Linux turned per-device exclusion ranges into identity maps). Where the check
 *    sits in the order is the model's choice (after the DTE, which EX needs).
 * 4. V = 1, TV = 0: blocked; IO_PAGE_FAULT with PR = 0, as VirtualBox reports it (QEMU logs nothing).
 * 5. The translation the DTE selects:
 *    - a request with PASID needs GV = 1 (else IO_PAGE_FAULT with GN, the model's choice: no source names
 *      the event) and goes through the guest tables of its GCR3 entry;
 *    - a request without PASID goes through the guest tables of PASID 0 when GV = GIoV = 1 (how Linux's v2
 *      page-table domains use the DTE), else through the host tables;
 *    - host: Mode 0 passes the address with the DTE's IR/IW; Mode 1–6 walks the v1 tables, IR/IW ANDed
 *      down from the DTE;
 *    - guest over host (GV = 1, Mode ≠ 0): the guest CR3, every guest table and the output are guest
 *      physical addresses the host tables translate; the GCR3 table itself too with Control.GCR3TRPMode.
 *      The grants are the guest's and the host's together.
 * The IOTLB (caches.ts) is looked up first and filled after a walk (stage-walks.ts).
 *
 * IO_PAGE_FAULT flags: GN for a request with PASID (its PASID in the event, else the DomainID), NX for an
 * execute request, US for a user request with PASID, RW for a write, and PR, PE, RZ from the failure. A host
 * failure under a guest walk is reported GN = 0 with the guest physical address the host could not
 * translate (the model's choice). DTE.SA suppresses every IO_PAGE_FAULT of the device, DTE.SE every one
 * after the first since its DTE was cached (VirtualBox); the request fails either way.
 */
import {
  type FaultKind,
  grantedTo,
  HitMemo,
  type IommuFault,
  type IotlbEntry,
  NO_PASID,
  newIotlbEntry,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  type RegisterFile,
  setIotlbNotPresent,
  setIotlbTranslation,
  stageGrants,
  type TranslationRequest,
  type TranslationResult,
} from '@iommukit/core';
import { AmdV1Format, X86Format } from '@iommukit/pagetables';
import { type AmdCaches, HOST_SPACE, IOTLB_GUEST, IOTLB_HOST, IOTLB_NESTED } from './caches.js';
import { type CachedDte, DeviceTable, DTE_FETCH } from './device-table.js';
import { type DeviceTableEntry, DTE_ILLEGAL, GUEST_PAGING_MODE } from './dte.js';
import { type AmdEvent, EVENT_FLAG, HARDWARE_ERROR_TYPE } from './events.js';
import type { AmdFeatures } from './features.js';
import { Gcr3Walk } from './gcr3-walk.js';
import { CTRL_GT_EN, CTRL_HI_GCR3_TRP_MODE, CTRL_IOMMU_EN, EXCL_ALLOW, EXCL_EN, REG } from './regs.js';
import { AmdStageWalker, grantsAllow, type StageWalkContext, WALK_FAILURE } from './stage-walks.js';

/** Host physical address width the model's tables may point into (v1 and x86 address fields end at 51). */
export const HOST_ADDRESS_BITS = 52;

export interface TranslatorContext extends StageWalkContext {
  readonly regs: RegisterFile;
  readonly features: AmdFeatures;
  readonly caches: AmdCaches<CachedDte>;
  /** Writes an event into the event log. */
  logEvent(event: AmdEvent): void;
}

/** Formats by DTE.HAD (0 none, 1 A, 3 A+D) and Mode 1–6, built once. */
function hostFormats(): AmdV1Format[][] {
  const had = ['none', 'accessed', 'none', 'accessed-dirty'] as const;
  return had.map((hostAccessDirty) =>
    [1, 2, 3, 4, 5, 6].map(
      (levels) => new AmdV1Format({ levels: levels as 1, oas: HOST_ADDRESS_BITS, hostAccessDirty }),
    ),
  );
}

const MEMO_LINES = 256;
const MEMO_DTE = 1;
const MEMO_GCR3 = 2;
const MEMO_IOTLB = 4;

export class AmdTranslator {
  readonly deviceTable: DeviceTable;
  readonly walker: AmdStageWalker;
  readonly gcr3: Gcr3Walk;
  faults = 0;
  private readonly hostFormats = hostFormats();
  private readonly guestFormats = [
    new X86Format({ levels: 4, oas: HOST_ADDRESS_BITS }),
    new X86Format({ levels: 5, oas: HOST_ADDRESS_BITS }),
  ];

  /** Repeated hits, replayed (core's HitMemo) over the DTE, GCR3 and IOTLB caches. */
  private readonly memo: HitMemo<TranslationResult>;
  /** Stands for the registers a translation reads: a new object whenever one of them is written. */
  private state: object = {};
  /** The caches the request being run looked in (MEMO_* bits). */
  private answeredFrom = 0;
  /** The request being run is an ATS Translation Request: its faults are not logged. */
  private ats = false;

  constructor(private readonly ctx: TranslatorContext) {
    const c = ctx.caches;
    this.memo = new HitMemo(MEMO_LINES, [c.deviceTable.cache, c.gcr3.cache, c.iotlb.cache]);
    this.deviceTable = new DeviceTable(ctx);
    this.walker = new AmdStageWalker(ctx);
    this.gcr3 = new Gcr3Walk(ctx, this.walker);
  }

  translate(request: TranslationRequest): TranslationResult {
    const tracing = this.ctx.tracer.enabled;
    const { streamId, pasid, iovaPfn, access } = request;
    if (!tracing) {
      const replayed = this.memo.get(streamId, pasid, iovaPfn, access, this.state);
      if (replayed !== undefined) return replayed;
    }
    this.answeredFrom = 0;
    const result = this.run(request);
    if (result.ok && this.answeredFrom !== 0 && !tracing)
      this.memo.record(streamId, pasid, iovaPfn, access, this.state, this.answeredFrom, result);
    return result;
  }

  /**
   * A PCIe ATS Translation Request (the device's IOTLB, DTE.I): translated as a DMA would be, but a fault is
   * only the completion's refusal — the unit logs no IO_PAGE_FAULT for a translation request (VirtualBox,
   * citing §2.1.3.2). A write or execute the page does not allow is retried read-only, so the completion
   * grants what the page allows; W only when the request may write, X only when asked. A unit without
   * IotlbSup, one that is off, or a DTE without I refuses it unrecorded (Unsupported Request; no stored
   * source names an event for it).
   */
  atsTranslate(request: TranslationRequest): TranslationResult {
    const { regs, features } = this.ctx;
    if ((regs.get(REG.CONTROL) & CTRL_IOMMU_EN) === 0 || !features.iotlbSupport)
      return this.failed(request, 'ats-disabled', 'ATS_UNSUPPORTED', false);
    const entry = this.deviceTable.lookup(request.streamId);
    if (entry?.dte.v && !entry.dte.i) return this.failed(request, 'ats-disabled', 'ATS_UNSUPPORTED', false);
    this.ats = true;
    try {
      let result = this.run(request);
      const upgrade = request.access & (PERM_WRITE | PERM_EXEC);
      if (!result.ok && upgrade !== 0 && result.fault.kind === 'permission')
        result = this.run({ ...request, access: (request.access & ~upgrade) | PERM_READ });
      if (!result.ok) return result;
      const asked = PERM_READ | (request.access & (PERM_WRITE | PERM_EXEC));
      return { ok: true, pfn: result.pfn, perm: result.perm & asked, pageShift: result.pageShift };
    } finally {
      this.ats = false;
    }
  }

  /**
   * A register the translation reads changed (Control, DevTblBase, the exclusion range): remembered
   * results no longer stand.
   */
  registersChanged(): void {
    this.state = {};
  }

  private run(request: TranslationRequest): TranslationResult {
    const { regs } = this.ctx;
    const { streamId, pasid, iovaPfn } = request;
    const control = regs.get(REG.CONTROL);
    if ((control & CTRL_IOMMU_EN) === 0) return untranslated(iovaPfn);
    const entry = this.deviceTable.lookup(streamId);
    if (entry === undefined) return this.configFault(request);
    this.answeredFrom = MEMO_DTE;
    const { dte } = entry;
    if (!dte.v) return untranslated(iovaPfn);
    const input = iovaPfn * 4096;
    if (pasid === NO_PASID && this.excluded(dte, input)) return untranslated(iovaPfn);
    // Without EFR.NXSup requests carry no execute or privilege the unit checks.
    const access = this.ctx.features.noExecute ? request.access : request.access & ~(PERM_EXEC | PERM_PRIV);
    if (!dte.tv) return this.pageFault(request, entry, 'translation', 0, input);
    // Guest translation needs Control.GTEn as well as the DTE's GV.
    const gv = dte.gv && (control & CTRL_GT_EN) !== 0;
    let ok: boolean;
    if (pasid !== NO_PASID) {
      if (!gv) return this.pageFault(request, entry, 'bad-pasid', 0, input);
      ok = this.guest(dte, streamId, pasid, input, access);
    } else if (gv && dte.giov) ok = this.guest(dte, streamId, 0, input, access & ~(PERM_EXEC | PERM_PRIV));
    else ok = this.host(dte, input, access & ~(PERM_EXEC | PERM_PRIV));
    if (!ok) return this.walkFault(request, entry, input);
    const e = this.hit;
    return {
      ok: true,
      pfn: Math.floor((e.outputBase + (input - this.hitBase)) / 4096),
      perm: grantedTo(e.grants, access),
      pageShift: e.pageShift,
    };
  }

  // --- the translation the DTE selects ---------------------------------------------------------------

  /** Mode 0 answers: no IOTLB entry, the DTE's grants on the address itself. */
  private readonly direct = newIotlbEntry();
  /** The IOTLB entry (or `direct`) the request was answered from, and the input base it covers. */
  private hit: IotlbEntry = this.direct;
  private hitBase = 0;

  /** Host translation of a request without PASID. */
  private host(dte: DeviceTableEntry, input: number, access: number): boolean {
    const dteGrants = dteHostGrants(dte);
    if (dte.mode === 0) {
      this.answer(input, 12, dteGrants, 0);
      return this.walker.permitted(dteGrants, access) || this.walkFailed();
    }
    const { caches } = this.ctx;
    this.answeredFrom |= MEMO_IOTLB;
    const cached = caches.iotlb.find(IOTLB_HOST, dte.domainId, HOST_SPACE, input);
    if (cached !== undefined && this.usable(cached, access)) return this.answerFrom(cached, input, access);
    const format = this.hostFormats[dte.had]![dte.mode - 1]!;
    const tables = caches.hostTables?.select(IOTLB_HOST, dte.domainId, HOST_SPACE);
    if (!this.walker.hostWalk(format, dte.hostPageTableRootPtr, input, access, tables)) {
      // With NpCache the unit keeps a not-present leaf, and faults on it until software invalidates.
      if (this.walker.failure === WALK_FAILURE.NOT_PRESENT && this.ctx.features.npCache)
        this.cacheNotPresent(dte.domainId, input);
      return this.walkFailed();
    }
    const leaf = this.walker.host;
    const grants = leaf.grants & dteGrants;
    if (!grantsAllow(grants, access)) return this.walkFailed(WALK_FAILURE.PERMISSION);
    this.fill(
      IOTLB_HOST,
      dte.domainId,
      HOST_SPACE,
      input,
      leaf.pa,
      leaf.pageShift,
      leaf.level,
      grants,
      access,
      format.hostAccessDirty === 'accessed-dirty',
    );
    return true;
  }

  /** Guest translation at `pasid` (guest tables alone with Mode 0, over the host tables otherwise). */
  private guest(
    dte: DeviceTableEntry,
    deviceId: number,
    pasid: number,
    input: number,
    access: number,
  ): boolean {
    const { caches } = this.ctx;
    const nested = dte.mode !== 0;
    const kind = nested ? IOTLB_NESTED : IOTLB_GUEST;
    this.answeredFrom |= MEMO_IOTLB;
    const cached = caches.iotlb.find(kind, dte.domainId, pasid, input);
    if (cached !== undefined && this.usable(cached, access)) return this.answerFrom(cached, input, access);
    const host = nested ? this.hostFormats[dte.had]![dte.mode - 1]! : undefined;
    const hostTables = host && caches.hostTables?.select(IOTLB_HOST, dte.domainId, HOST_SPACE);
    const gpaRoot = host !== undefined && (this.ctx.regs.get(REG.CONTROL + 4) & CTRL_HI_GCR3_TRP_MODE) !== 0;
    const cr3 = this.gcr3.lookup(
      dte,
      deviceId,
      pasid,
      gpaRoot ? { format: host!, root: dte.hostPageTableRootPtr, cache: hostTables } : undefined,
    );
    if (cr3 < 0) return this.walkFailed();
    this.answeredFrom |= MEMO_GCR3;
    const format = this.guestFormats[dte.guestPagingMode === GUEST_PAGING_MODE.LEVEL_5 ? 1 : 0]!;
    const guestTables = caches.guestTables?.select(kind, dte.domainId, pasid);
    const over = host && { format: host, root: dte.hostPageTableRootPtr, cache: hostTables };
    if (!this.walker.guestWalk(format, cr3, input, access, guestTables, over)) return this.walkFailed();
    const g = this.walker.guest;
    let { pa, pageShift } = g;
    let grants = g.grants;
    if (host !== undefined) {
      // The guest's output is a GPA: the host tables translate it, and the smaller page is what is cached.
      if (!this.walker.hostWalk(host, dte.hostPageTableRootPtr, pa, access, hostTables)) {
        this.walker.failureInHost = true;
        return this.walkFailed();
      }
      const h = this.walker.host;
      grants &= h.grants & dteHostGrants(dte);
      if (!grantsAllow(grants, access)) return this.walkFailed(WALK_FAILURE.PERMISSION);
      pa = h.pa;
      pageShift = Math.min(pageShift, h.pageShift);
    }
    this.fill(kind, dte.domainId, pasid, input, pa, pageShift, g.level, grants, access, true);
    return true;
  }

  // --- the IOTLB ------------------------------------------------------------------------------------

  /** Whether a cached entry answers `access` without a walk: a write needs it cached dirty. */
  private usable(e: IotlbEntry, access: number): boolean {
    return e.notPresent !== 0 || (access & PERM_WRITE) === 0 || e.dirty;
  }

  private answerFrom(e: IotlbEntry, input: number, access: number): boolean {
    this.hit = e;
    this.hitBase = input - (input % 2 ** e.pageShift);
    if (e.notPresent !== 0) return this.walkFailed(WALK_FAILURE.NOT_PRESENT);
    return grantsAllow(e.grants, access) || this.walkFailed(WALK_FAILURE.PERMISSION);
  }

  private cacheNotPresent(domainId: number, input: number): void {
    const e = this.ctx.caches.cacheLeaf(IOTLB_HOST, domainId, HOST_SPACE, input - (input % 4096), 12);
    setIotlbNotPresent(e, WALK_FAILURE.NOT_PRESENT);
  }

  private answer(input: number, pageShift: number, grants: number, level: number): void {
    const e = this.direct;
    this.hit = e;
    const base = input - (input % 2 ** pageShift);
    e.outputBase = base;
    e.pageShift = pageShift;
    e.grants = grants;
    e.level = level;
    this.hitBase = base;
  }

  private fill(
    kind: number,
    domainId: number,
    space: number,
    input: number,
    pa: number,
    pageShift: number,
    level: number,
    grants: number,
    access: number,
    tracksDirty: boolean,
  ): void {
    const base = input - (input % 2 ** pageShift);
    const e = this.ctx.caches.cacheLeaf(kind, domainId, space, base, pageShift);
    setIotlbTranslation(e, input, pa, pageShift, level, grants, access, tracksDirty);
    this.hit = e;
    this.hitBase = base;
  }

  // --- faults -----------------------------------------------------------------------------------------

  private excluded(dte: DeviceTableEntry, input: number): boolean {
    const { regs } = this.ctx;
    const baseLo = regs.get(REG.EXCL_BASE);
    if ((baseLo & EXCL_EN) === 0 || ((baseLo & EXCL_ALLOW) === 0 && !dte.ex)) return false;
    const base = regs.get(REG.EXCL_BASE + 4) * 2 ** 32 + ((baseLo & ~0xfff) >>> 0);
    const limit = regs.get(REG.EXCL_LIMIT + 4) * 2 ** 32 + (regs.get(REG.EXCL_LIMIT) >>> 0);
    return input >= base && input <= limit;
  }

  private walkFailed(kind: number = this.walker.failure): false {
    this.walker.failure = kind;
    return false;
  }

  private walkFault(request: TranslationRequest, entry: CachedDte, input: number): TranslationResult {
    const w = this.walker;
    switch (w.failure) {
      case WALK_FAILURE.TABLE_ABORT:
        return this.tableAbort(request, entry);
      case WALK_FAILURE.PERMISSION:
        return this.pageFault(request, entry, 'permission', EVENT_FLAG.PR | EVENT_FLAG.PE, input);
      case WALK_FAILURE.RESERVED:
        return this.pageFault(request, entry, 'address-size', EVENT_FLAG.PR | EVENT_FLAG.RZ, input);
      case WALK_FAILURE.LEVEL:
        return this.pageFault(request, entry, 'translation', EVENT_FLAG.PR, input);
      default:
        return this.pageFault(request, entry, 'translation', 0, input);
    }
  }
  /** A DTE that could not be used: the event its failure names, never suppressed. */
  private configFault(request: TranslationRequest): TranslationResult {
    const t = this.deviceTable;
    const { streamId: deviceId } = request;
    const write = (request.access & PERM_WRITE) !== 0 ? EVENT_FLAG.RW : 0;
    const address = request.iovaPfn * 4096;
    if (t.failure === DTE_FETCH.ABORTED) {
      this.ctx.logEvent({
        kind: 'dev-tab-hardware-error',
        deviceId,
        flags: write,
        type: HARDWARE_ERROR_TYPE.MASTER_ABORT,
        address: t.failureAddress,
      });
      return this.failed(request, 'config-abort', 'DEV_TAB_HARDWARE_ERROR');
    }
    if (t.failure === DTE_FETCH.ILLEGAL) {
      const rz = t.illegal === DTE_ILLEGAL.RESERVED_BITS ? EVENT_FLAG.RZ : 0;
      this.ctx.logEvent({
        kind: 'illegal-dev-table-entry',
        deviceId,
        pasid: request.pasid === NO_PASID ? 0 : request.pasid,
        flags: write | rz | (request.pasid === NO_PASID ? 0 : EVENT_FLAG.GN),
        address,
      });
      return this.failed(request, 'bad-config', 'ILLEGAL_DEV_TABLE_ENTRY');
    }
    this.ctx.logEvent({ kind: 'io-page-fault', deviceId, domainOrPasid: 0, flags: write, address: 0 });
    return this.failed(request, 'bad-stream', 'IO_PAGE_FAULT');
  }

  /** A table read the bus aborted: PAGE_TAB_HARDWARE_ERROR at the entry's address. */
  private tableAbort(request: TranslationRequest, entry: CachedDte): TranslationResult {
    const guest = request.pasid !== NO_PASID && !this.walker.failureInHost;
    this.ctx.logEvent({
      kind: 'page-tab-hardware-error',
      deviceId: request.streamId,
      domainOrPasid: guest ? request.pasid : entry.dte.domainId,
      flags: ((request.access & PERM_WRITE) !== 0 ? EVENT_FLAG.RW : 0) | (guest ? EVENT_FLAG.GN : 0),
      type: HARDWARE_ERROR_TYPE.MASTER_ABORT,
      address: this.walker.failureAddress,
    });
    return this.failed(request, 'walk-abort', 'PAGE_TAB_HARDWARE_ERROR');
  }

  /** IO_PAGE_FAULT with `flags` (PR, PE, RZ) and the request's own, unless DTE.SA or DTE.SE suppress it. */
  private pageFault(
    request: TranslationRequest,
    entry: CachedDte,
    kind: FaultKind,
    flags: number,
    input: number,
  ): TranslationResult {
    const { dte } = entry;
    const suppressed = this.ats || dte.sa || (dte.se && entry.faultLogged);
    if (!suppressed) {
      const { pasid, access } = request;
      const host = this.walker.failureInHost;
      const gn = pasid !== NO_PASID && !host;
      let all = flags | ((access & PERM_WRITE) !== 0 ? EVENT_FLAG.RW : 0);
      if (gn) {
        all |= EVENT_FLAG.GN | ((access & PERM_PRIV) === 0 ? EVENT_FLAG.US : 0);
        if ((access & PERM_EXEC) !== 0 && this.ctx.features.noExecute) all |= EVENT_FLAG.NX;
      }
      this.ctx.logEvent({
        kind: 'io-page-fault',
        deviceId: request.streamId,
        domainOrPasid: gn ? pasid : dte.domainId,
        flags: all,
        address: host ? this.walker.hostInput : input,
      });
      entry.faultLogged = true;
    }
    return this.failed(request, kind, 'IO_PAGE_FAULT', !suppressed);
  }

  private failed(
    request: TranslationRequest,
    kind: FaultKind,
    vendorCode: string,
    recorded = true,
  ): TranslationResult {
    this.faults++;
    this.walker.failureInHost = false;
    const fault: IommuFault = {
      kind,
      vendorCode,
      streamId: request.streamId,
      pasid: request.pasid,
      iova: BigInt(request.iovaPfn) * 4096n + BigInt(request.offset),
      access: request.access,
      recorded,
    };
    return { ok: false, fault };
  }
}

/** The grants of the DTE's IR/IW: host tables give no privilege levels, and execution comes with read. */
function dteHostGrants(dte: DeviceTableEntry): number {
  const perm = (dte.ir ? PERM_READ | PERM_EXEC : 0) | (dte.iw ? PERM_WRITE : 0);
  return stageGrants(perm, perm);
}

/** A request that passes untranslated: every access allowed, on its own page. */
function untranslated(pfn: number): TranslationResult {
  return { ok: true, pfn, perm: PERM_READ | PERM_WRITE | PERM_EXEC, pageShift: 12 };
}
