/**
 * The VT-d translation of one untranslated DMA request (VT-d specification §3): with translation disabled
 * (GSTS.TES = 0) the request passes untranslated; in abort-DMA mode (RTADDR.TTM = 11) it is blocked;
 * otherwise the source ID selects a context entry (config-fetch.ts) and
 * - in legacy mode (§3.4.1) the context's second stage translates, or TT = pass-through passes the request;
 *   a request with PASID is refused (0x31: PASIDs need scalable mode);
 * - in scalable mode (§3.4.3) the request's PASID — RID_PASID for a request without one, with RID_PRIV as
 *   its privilege — selects a PASID entry whose PGTT picks first-stage, second-stage, nested or pass-through.
 * The IOTLB (caches.ts) is looked up first and filled after a walk (stage-walks.ts). A translated address in
 * the interrupt range 0xFEE0_0000–0xFEEF_FFFF is refused (0xE / 0x87): that window belongs to interrupts.
 *
 * A failure is recorded in the fault recording registers unless an entry on the way had FPD = 1 and the
 * reason is qualified (§7.1.2). Repeated hits are answered by a `HitMemo` over the context, PASID and IOTLB
 * caches, which replays their hits (nothing a driver can observe differs).
 */
import {
  ALL_GRANTS,
  grantedTo,
  HitMemo,
  type IommuFault,
  type IotlbEntry,
  NO_PASID,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  setIotlbNotPresent,
  setIotlbTranslation,
  type TranslationRequest,
  type TranslationResult,
  toHex,
} from '@iommukit/core';
import type { VtdSsFormat } from '@iommukit/pagetables';
import { IOTLB_FIRST, IOTLB_NESTED, IOTLB_SECOND, NO_PASID_TAG } from './caches.js';
import {
  type ConfigFetchContext,
  effectivePasid,
  type LegacyContext,
  type PasidConfig,
  type ScalableContext,
  VtdConfigFetch,
} from './config-fetch.js';
import { FR, faultReasonName, isQualified } from './fault-reasons.js';
import { ADDRESS_TYPE, type AddressType } from './fault-recording.js';
import { checkPasidRequest, PGTT } from './pasid-entry.js';
import { TTM } from './regs.js';
import { type ContextRequest, checkScalableContextRequest } from './root-context.js';
import { permissionFault, SS_FOR_INPUT, type StageWalkContext, VtdStageWalker } from './stage-walks.js';

/** The register state a translation reads: a new object whenever software changes it. */
export interface VtdTranslationState {
  /** GSTS.TES. */
  readonly enabled: boolean;
  /** RTADDR.RTA and TTM as latched by the last SRTP. */
  readonly rootTable: number;
  readonly ttm: number;
}

/** A fault as the fault recording registers take it. */
export interface TranslationFaultReport {
  readonly sid: number;
  /** The faulting address (the recorder keeps its page). */
  readonly address: number;
  readonly reason: number;
  readonly write: boolean;
  /** The request's PASID; undefined for a request without one. */
  readonly pasid: number | undefined;
  readonly execute: boolean;
  readonly privileged: boolean;
  /** FRCD.AT: a Translation Request's fault says so (untranslated when absent). */
  readonly addressType?: AddressType;
}

export interface TranslatorContext extends ConfigFetchContext, StageWalkContext {
  state(): VtdTranslationState;
  /** Records a fault in the fault recording registers; false when it could not be (overflow). */
  recordFault(report: TranslationFaultReport): boolean;
}

const MEMO_LINES = 256;
const MEMO_CONTEXT = 1;
const MEMO_PASID = 2;
const MEMO_IOTLB = 4;
const INTERRUPT_WINDOW_BASE = 0xfee0_0000;
const INTERRUPT_WINDOW_END = 0xfef0_0000;
const RWX = PERM_READ | PERM_WRITE | PERM_EXEC;

/** What the pipeline found: the output, or the fault reason (0 when the request passes untranslated). */
class Outcome {
  pa = 0;
  perm = 0;
  pageShift = 12;
  reason = 0;
  // Stryker disable next-line BooleanLiteral: run() clears it before anything reads it
  fpd = false;
}

export class VtdTranslator {
  readonly config: VtdConfigFetch;
  readonly walker: VtdStageWalker;
  private readonly memo: HitMemo<TranslationResult>;
  private readonly out = new Outcome();
  // Stryker disable next-line ObjectLiteral: scalable() sets pasid before each check; absent request flags read as false
  private readonly contextRequest: { -readonly [K in keyof ContextRequest]: ContextRequest[K] } = {
    pasid: undefined,
    translationRequest: false,
    pageRequest: false,
  };
  private answeredFrom = 0;
  /** The request being run is an ATS Translation Request. */
  private ats = false;
  faults = 0;

  constructor(private readonly ctx: TranslatorContext) {
    this.config = new VtdConfigFetch(ctx);
    this.walker = new VtdStageWalker(ctx);
    const c = ctx.caches;
    this.memo = new HitMemo(MEMO_LINES, [c.context.cache, c.pasid.cache, c.iotlb.cache]);
  }

  translate(request: TranslationRequest): TranslationResult {
    const tracing = this.ctx.tracer.enabled;
    const state = this.ctx.state();
    const { streamId, pasid, iovaPfn, access } = request;
    if (!tracing) {
      const replayed = this.memo.get(streamId, pasid, iovaPfn, access, state);
      if (replayed !== undefined) return replayed;
    }
    this.answeredFrom = 0;
    const out = this.run(request, state);
    const result = out.reason === 0 ? this.ok(out) : this.fail(request, out);
    if (this.answeredFrom !== 0 && out.reason === 0 && !tracing)
      this.memo.record(streamId, pasid, iovaPfn, access, state, this.answeredFrom, result);
    return result;
  }

  /**
   * An ATS Translation Request (§4.2.3, rev 5.10 §4.2): ECAP.DT and translation on, else Unsupported
   * Request with nothing recorded. Through a legacy context entry with TT ≠ 01 it is refused with 0xD, through
   * a scalable-mode context entry with DTE = 0 with 0x44, both recorded like any configuration error. A
   * page that is not present or lacks the permission completes with R = W = 0 and nothing recorded (the
   * endpoint may then ask for the page with PRI); a write or execute request to a readable page completes
   * granting R alone. The completion grants what the page gives the request's privilege level, W only
   * without NW (the unit honours it: ECAP.NWFS = 0) and Exe only when requested. The translation fills the
   * IOTLB as an untranslated request's would.
   */
  atsTranslate(request: TranslationRequest): TranslationResult {
    const state = this.ctx.state();
    if (!state.enabled || !this.ctx.features.deviceTlb) return unsupportedRequest(request);
    this.answeredFrom = 0;
    this.ats = true;
    try {
      let out = this.run(request, state);
      const upgrade = request.access & (PERM_WRITE | PERM_EXEC);
      if (out.reason !== 0 && upgrade !== 0 && faultKind(out.reason) === 'permission')
        out = this.run({ ...request, access: (request.access & ~upgrade) | PERM_READ }, state);
      if (out.reason === 0) {
        // NW is honoured (ECAP.NWFS = 0): W only for a request that may write; Exe only when asked.
        const asked = PERM_READ | (request.access & (PERM_WRITE | PERM_EXEC));
        return { ok: true, pfn: Math.floor(out.pa / 4096), perm: out.perm & asked, pageShift: out.pageShift };
      }
      const kind = faultKind(out.reason);
      return this.fail(request, out, kind !== 'translation' && kind !== 'permission');
    } finally {
      this.ats = false;
    }
  }

  private ok(out: Outcome): TranslationResult {
    return { ok: true, pfn: Math.floor(out.pa / 4096), perm: out.perm, pageShift: out.pageShift };
  }

  private run(request: TranslationRequest, state: VtdTranslationState): Outcome {
    const out = this.out;
    out.reason = 0;
    // Stryker disable next-line BooleanLiteral: every refusal sets it, and a translation never reads it
    out.fpd = false;
    const input = request.iovaPfn * 4096 + request.offset;
    if (!state.enabled) return this.pass(input, RWX);
    // Abort-DMA mode (RTADDR.TTM = 11, with ECAP.ADMS) blocks every request and records nothing.
    // Stryker disable next-line BooleanLiteral: an abort-DMA refusal is never recorded, whatever its FPD
    if (state.ttm === TTM.ABORT_DMA && this.ctx.features.abortDmaMode) return this.refuse(ABORT_DMA, true);
    // TTM 10 is reserved, and a mode the unit lacks is no better: the root table cannot be used.
    const f = this.ctx.features;
    if (state.ttm === 0b10 || state.ttm === TTM.ABORT_DMA || (state.ttm === TTM.SCALABLE && !f.scalableMode))
      // Stryker disable next-line BooleanLiteral: 0x30 is unqualified (§7.1.2): FPD cannot suppress it
      return this.refuse(FR.SM_ROOT_TABLE_ADDRESS, false);
    const scalable = state.ttm === TTM.SCALABLE;
    const context = this.config.context(request.streamId, state.rootTable, scalable);
    if (context.kind === 'fault') return this.refuse(context.reason, context.fpd);
    this.answeredFrom = MEMO_CONTEXT;
    if (context.kind === 'legacy') return this.legacy(request, context, input);
    return this.scalable(request, context as ScalableContext, input);
  }

  private legacy(request: TranslationRequest, context: LegacyContext, input: number): Outcome {
    if (request.pasid !== NO_PASID) return this.refuse(FR.SM_TTM0_PASID_REQUEST, context.fpd);
    // Translation requests need Device-TLBs enabled in the context entry (TT = 01).
    if (this.ats && !context.deviceTlb) return this.refuse(FR.TT_BLOCKED, context.fpd);
    // PCIe requests without PASID are untranslated, unprivileged data requests.
    const access = request.access & (PERM_READ | PERM_WRITE);
    if (context.passThrough) return this.pass(input, RWX);
    return this.secondStageOnly(
      context.did,
      context.secondStage!,
      context.root,
      input,
      access,
      true,
      context.fpd,
    );
  }

  private scalable(request: TranslationRequest, context: ScalableContext, input: number): Outcome {
    const hasPasid = request.pasid !== NO_PASID;
    const cr = this.contextRequest;
    cr.pasid = hasPasid ? request.pasid : undefined;
    cr.translationRequest = this.ats;
    const contextFault = checkScalableContextRequest(context.entry, cr);
    if (contextFault !== 0) return this.refuse(contextFault, context.fpd);
    const pasid = effectivePasid(request.pasid, context);
    const pe = this.config.pasid(request.streamId, pasid, context);
    if (pe.kind === 'fault') return this.refuse(pe.reason, pe.fpd);
    this.answeredFrom |= MEMO_PASID;
    const privileged = hasPasid ? (request.access & PERM_PRIV) !== 0 : context.entry.ridPriv;
    const execute = hasPasid && (request.access & (PERM_EXEC | PERM_WRITE)) === PERM_EXEC;
    const pasidFault = checkPasidRequest(pe.entry, { privileged, execute });
    if (pasidFault !== 0) return this.refuse(pasidFault, pe.fpd);
    const access =
      (request.access & (PERM_READ | PERM_WRITE | (hasPasid ? PERM_EXEC : 0))) | (privileged ? PERM_PRIV : 0);
    switch (pe.pgtt) {
      case PGTT.PASS_THROUGH:
        return this.pass(input, RWX);
      case PGTT.SECOND_STAGE:
        return this.secondStageOnly(pe.did, pe.secondStage!, pe.entry.ssptptr, input, access, false, pe.fpd);
      default:
        return this.firstStage(pe, pasid, input, access);
    }
  }

  /** A request the configuration passes untranslated: the output is the input, inside the host address width. */
  private pass(input: number, perm: number): Outcome {
    const out = this.out;
    if (input >= 2 ** this.ctx.features.hostAddressBits) return this.refuse(FR.SM_ADDRESS_BEYOND_MAX, false);
    out.pa = input;
    out.perm = perm;
    out.pageShift = 12;
    return out;
  }

  private secondStageOnly(
    did: number,
    format: VtdSsFormat,
    root: number,
    input: number,
    access: number,
    legacy: boolean,
    fpd: boolean,
  ): Outcome {
    const { caches } = this.ctx;
    // The IOTLB was looked in: the memo may replay this translation only if that lookup hit.
    this.answeredFrom |= MEMO_IOTLB;
    const hit = caches.iotlb.find(IOTLB_SECOND, did, NO_PASID_TAG, input);
    if (hit !== undefined && this.answer(hit, input, access, legacy, fpd)) return this.out;
    const tables = caches.secondStageTables?.select(IOTLB_SECOND, did, NO_PASID_TAG);
    const reason = this.walker.secondStage(format, root, input, access, legacy, SS_FOR_INPUT, tables);
    if (reason !== 0) {
      if (this.ctx.features.cachingMode && this.walker.secondNotPresent)
        this.cacheNotPresent(did, input, reason);
      return this.refuse(reason, fpd);
    }
    const leaf = this.walker.second;
    this.cache(
      IOTLB_SECOND,
      did,
      NO_PASID_TAG,
      input,
      leaf.pa,
      leaf.pageShift,
      leaf.level,
      leaf.grants,
      access,
      format.accessedDirty,
    );
    return this.output(leaf.pa, leaf.grants, access, leaf.pageShift, legacy, fpd);
  }

  private firstStage(pe: PasidConfig, pasid: number, input: number, access: number): Outcome {
    const { caches } = this.ctx;
    const nested = pe.pgtt === PGTT.NESTED;
    const kind = nested ? IOTLB_NESTED : IOTLB_FIRST;
    this.answeredFrom |= MEMO_IOTLB;
    const hit = caches.iotlb.find(kind, pe.did, pasid, input);
    if (hit !== undefined && this.answer(hit, input, access, false, pe.fpd)) return this.out;
    const second = pe.secondStage;
    const ssTables = caches.secondStageTables?.select(IOTLB_SECOND, pe.did, NO_PASID_TAG);
    const reason = this.walker.firstStage(
      pe.firstStage!,
      pe.entry.fsptptr,
      input,
      access,
      caches.firstStageTables?.select(kind, pe.did, pasid),
      nested ? { format: second!, root: pe.entry.ssptptr, cache: ssTables } : undefined,
    );
    if (reason !== 0) return this.refuse(reason, pe.fpd);
    const fs = this.walker.first;
    let { pa, pageShift, grants } = fs;
    if (nested) {
      const ssReason = this.walker.secondStage(
        second!,
        pe.entry.ssptptr,
        fs.pa,
        access,
        false,
        SS_FOR_INPUT,
        ssTables,
      );
      if (ssReason !== 0) return this.refuse(ssReason, pe.fpd);
      const ss = this.walker.second;
      pa = ss.pa;
      pageShift = Math.min(pageShift, ss.pageShift);
      grants &= ss.grants;
    }
    const space = fs.global ? NO_PASID_TAG : pasid;
    this.cache(kind, pe.did, space, input, pa, pageShift, fs.level, grants, access, true);
    return this.output(pa, grants, access, pageShift, false, pe.fpd);
  }

  /** Answers from an IOTLB entry; false when a write must walk to set the dirty bit first. */
  private answer(e: IotlbEntry, input: number, access: number, legacy: boolean, fpd: boolean): boolean {
    if (e.notPresent !== 0) {
      // A not-present entry cached in caching mode faults as the walk did (its read or write flavour).
      this.refuse(legacy ? legacyDenied(access) : e.notPresent, fpd);
      return true;
    }
    if ((access & PERM_WRITE) !== 0 && !e.dirty) return false;
    const base = Math.floor(input / 2 ** e.pageShift) * 2 ** e.pageShift;
    this.output(e.outputBase + (input - base), e.grants, access, e.pageShift, legacy, fpd);
    return true;
  }

  /** Caching mode: a not-present second-stage leaf stays cached, as a 4 KiB entry of its domain. */
  private cacheNotPresent(did: number, input: number, reason: number): void {
    setIotlbNotPresent(this.ctx.caches.cacheLeaf(IOTLB_SECOND, did, NO_PASID_TAG, input, 12), reason);
  }

  private cache(
    kind: number,
    did: number,
    space: number,
    input: number,
    pa: number,
    pageShift: number,
    level: number,
    grants: number,
    access: number,
    tracksDirty: boolean,
  ): void {
    const entry = this.ctx.caches.cacheLeaf(kind, did, space, input, pageShift);
    setIotlbTranslation(entry, input, pa, pageShift, level, grants, access, tracksDirty);
  }

  /** The translated output, its permission for the access, and the interrupt-window rule. */
  private output(
    pa: number,
    grants: number,
    access: number,
    pageShift: number,
    legacy: boolean,
    fpd: boolean,
  ): Outcome {
    const denied = grants === ALL_GRANTS ? 0 : permissionFault(grants, access);
    if (denied !== 0) return this.refuse(legacy ? legacyDenied(access) : denied, fpd);
    if (pa >= INTERRUPT_WINDOW_BASE && pa < INTERRUPT_WINDOW_END)
      return this.refuse(legacy ? FR.INTERRUPT_ADDRESS : FR.SM_INTERRUPT_ADDRESS, fpd);
    const out = this.out;
    out.pa = pa;
    out.perm = grantedTo(grants, access);
    out.pageShift = pageShift;
    return out;
  }

  private refuse(reason: number, fpd: boolean): Outcome {
    const out = this.out;
    out.reason = reason;
    out.fpd = fpd;
    return out;
  }

  /** A refused request, recorded unless FPD suppresses it or `record` is false (an ATS completion failure). */
  private fail(request: TranslationRequest, out: Outcome, record = true): TranslationResult {
    this.faults++;
    const input = request.iovaPfn * 4096 + request.offset;
    const hasPasid = request.pasid !== NO_PASID;
    const suppressed = !record || out.reason === ABORT_DMA || (out.fpd && isQualified(out.reason));
    const recorded =
      !suppressed &&
      this.ctx.recordFault({
        sid: request.streamId,
        address: input,
        reason: out.reason,
        write: (request.access & PERM_WRITE) !== 0,
        pasid: hasPasid ? request.pasid : undefined,
        execute: hasPasid && (request.access & PERM_EXEC) !== 0,
        privileged: hasPasid && (request.access & PERM_PRIV) !== 0,
        ...(this.ats ? { addressType: ADDRESS_TYPE.TRANSLATION } : {}),
      });
    const fault: IommuFault = {
      kind: faultKind(out.reason),
      vendorCode: vendorCode(out.reason),
      streamId: request.streamId,
      pasid: request.pasid,
      iova: BigInt(input),
      access: request.access,
      recorded,
    };
    if (this.ctx.tracer.enabled)
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'fault',
        `${out.reason === ABORT_DMA ? 'ABORT_DMA' : faultReasonName(out.reason)} (${vendorCode(out.reason)}) source ${toHex(request.streamId)} address ${toHex(input)}${recorded ? ', recorded' : !record ? ', ATS completion with R = W = 0' : suppressed ? ', FPD: not recorded' : ''}`,
      );
    return { ok: false, fault };
  }
}

/** The model's reason for a request blocked by abort-DMA mode: no fault reason exists, nothing is recorded. */
const ABORT_DMA = -1;

/** A Translation Request the unit cannot take (no ECAP.DT, or translation off): UR, nothing recorded. */
function unsupportedRequest(request: TranslationRequest): TranslationResult {
  return {
    ok: false,
    fault: {
      kind: 'ats-disabled',
      vendorCode: 'DMAR_ATS_UR',
      streamId: request.streamId,
      pasid: request.pasid,
      iova: BigInt(request.iovaPfn * 4096 + request.offset),
      access: request.access,
      recorded: false,
    },
  };
}

function vendorCode(reason: number): string {
  return reason === ABORT_DMA ? 'DMAR_ABORT_DMA_MODE' : `DMAR_FR_0x${reason.toString(16).padStart(2, '0')}`;
}

function legacyDenied(access: number): number {
  return (access & PERM_WRITE) !== 0 ? FR.WRITE_DENIED : FR.READ_DENIED;
}

/** The vendor-neutral class of a fault reason. */
export function faultKind(reason: number): IommuFault['kind'] {
  switch (reason) {
    case FR.ROOT_NOT_PRESENT:
    case FR.CONTEXT_NOT_PRESENT:
    case FR.SM_ROOT_NOT_PRESENT:
    case FR.SM_CONTEXT_NOT_PRESENT:
      return 'bad-stream';
    case FR.SM_TTM0_PASID_REQUEST:
    case FR.SM_CONTEXT_PASIDE_CLEAR:
    case FR.SM_CONTEXT_PASID_TOO_LARGE:
    case FR.SM_PASID_DIR_NOT_PRESENT:
    case FR.SM_PASID_NOT_PRESENT:
      return 'bad-pasid';
    case FR.ROOT_TABLE_ACCESS:
    case FR.CONTEXT_TABLE_ACCESS:
    case FR.SM_ROOT_ACCESS:
    case FR.SM_CONTEXT_ACCESS:
    case FR.SM_PASID_DIR_ACCESS:
    case FR.SM_PASID_ACCESS:
      return 'config-abort';
    case FR.SM_CONTEXT_DTE_CLEAR:
      return 'ats-disabled';
    case FR.PAGING_ENTRY_ACCESS:
    case FR.SM_FS_ACCESS:
    case FR.SM_FS_ROOT_ACCESS:
    case FR.SM_SS_ACCESS:
    case FR.SM_SSPTPTR_INVALID:
    case FR.SM_NESTED_FS_ROOT_READ:
    case FR.SM_NESTED_FS_READ:
    case FR.SM_NESTED_FS_WRITE:
      return 'walk-abort';
    case FR.ADDRESS_BEYOND_MGAW:
    case FR.SM_NESTED_FS_BEYOND_MGAW:
    case FR.SM_NON_CANONICAL:
    case FR.SM_ADDRESS_BEYOND_MAX:
    case FR.SM_SS_OUTPUT_BEYOND_MAX:
      return 'address-size';
    case FR.WRITE_DENIED:
    case FR.READ_DENIED:
    case FR.SM_USER_SUPERVISOR:
    case FR.SM_EXECUTE_DENIED:
    case FR.SM_WRITE_DENIED:
    case FR.SM_READ_DENIED:
    case FR.INTERRUPT_ADDRESS:
    case FR.SM_INTERRUPT_ADDRESS:
      return 'permission';
    case FR.SM_FS_NOT_PRESENT:
    case FR.SM_SS_PERMISSION:
    case FR.PAGING_ENTRY_RESERVED:
    case FR.SM_FS_RESERVED:
    case FR.SM_SS_RESERVED:
      return 'translation';
    default:
      return 'bad-config';
  }
}
