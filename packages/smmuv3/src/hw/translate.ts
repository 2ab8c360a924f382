/**
 * The SMMUv3 translation pipeline for one transaction (IHI 0070 §3.2–3.4, §5, §7.3): global bypass when the
 * SMMU is disabled; the STE (linear or 2-level stream table) and its checks; SubstreamID handling and the
 * CD (through stage 2 when nested); the TLB, whose hits are checked here; on a miss the walks
 * (`stage-walks.ts`) and the new TLB entry; and the event a fault records. The parts: `config-fetch.ts`
 * (STE and CD caches and fetches), `address-size.ts` (§3.4 and the bypass paths), `stage-walks.ts`,
 * `translation-faults.ts` (faults and their event records).
 *
 * Caches: the configuration cache holds STEs by StreamID and CDs by (StreamID, SubstreamID); the TLB holds
 * leaves by VMID/ASID. Nothing here invalidates them: only commands do (the device runs those), so a
 * driver that forgets a CFGI or TLBI sees the stale configuration or translation.
 *
 * Fault models (§3.12): a translation-related fault (F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION)
 * of an untranslated transaction stalls when its stage asks for it — CD.S at stage 1 (S1STALLD == 1 makes
 * CD.S == 1 ILLEGAL), STE.S2S at stage 2, including stage 2 faults on stage-1 table walks and CD fetches —
 * except F_ADDR_SIZE for an out-of-range IPA when stage 1 is bypassed, which always terminates. A stalled
 * transaction always records its event (Stall = 1, STAG) and is handed to `holdStall`; everything else
 * terminates with an abort (IDR0.TERM_MODEL == 1), recorded as CD.R / STE.S2R say.
 *
 * Not modelled yet: STE.EATS split-stage (S1CHK) ATS.
 */
import {
  ALL_GRANTS,
  type EntryCache,
  grantedTo,
  HitMemo,
  type IommuFault,
  NO_PASID,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  type TranslationRequest,
  type TranslationResult,
  toHex,
} from '@iommukit/core';
import type { VmsaFormat } from '@iommukit/pagetables';
import { BYPASS_ADDR_SIZE, bypassOutcome, smmuDisabledOutcome } from './address-size.js';
import type { Cd } from './cd.js';
import { type CdContext, type ConfigFetchContext, Smmuv3ConfigFetch, type SteEntry } from './config-fetch.js';
import { EVENT_CLASS, type EventRecord } from './events.js';
import { atsCompletionGrant, grantsAllow, inputAccess } from './grants.js';
import { Smmuv3StageWalker } from './stage-walks.js';
import { STE_EATS, STE_S1DSS, type Ste } from './ste.js';
import { GLOBAL_ASID, type Smmuv3Tlb, type TlbEntry, type TlbKind } from './tlb.js';
import {
  coreFault,
  faultEventRecord,
  isEventFault,
  type Outcome,
  stage1Fault,
  stage2Fault,
} from './translation-faults.js';

/** Lines of the hit memo: enough for the pages a few devices stream through between TLB fills. */
const MEMO_LINES = 256;
/** The caches of the hit memo, in its order. */
const MEMO_STE = 1;
const MEMO_CD = 2;
const MEMO_TLB = 4;

export interface TranslatorContext extends ConfigFetchContext {
  readonly tlb: Smmuv3Tlb;
  /** Writes an event record to the event queue; false when it could not be recorded. */
  recordEvent(record: EventRecord): boolean;
  /**
   * Holds a stalling transaction: records `record` with Stall = 1 and a STAG and keeps the transaction
   * (as `stallId` when a retry stalls again). Returns the endpoint-facing id and whether the record was
   * written, or undefined when the SMMU cannot hold it (it is then terminated).
   */
  holdStall(
    request: TranslationRequest,
    record: EventRecord,
    fault: IommuFault,
    stallId: number | undefined,
  ): { readonly id: number; readonly recorded: boolean } | undefined;
}

export class Smmuv3Translator {
  readonly steCache: EntryCache<SteEntry>;
  /** CDs by (StreamID, SubstreamID). */
  readonly cdCache: EntryCache<CdContext>;
  private readonly walker: Smmuv3StageWalker;
  private readonly config: Smmuv3ConfigFetch;
  /** 2^OAS, which is also 2^IAS: inputs at or above it fail the bypass address-size checks. */
  private readonly addressLimit: number;
  /** Translations that hit the STE, CD and TLB caches, replayed while those caches are unchanged. */
  private readonly memo: HitMemo<TranslationResult>;
  /** The caches the last translation answered from (MEMO_* bits), 0 when any of them missed or it faulted. */
  private answeredFrom = 0;

  constructor(private readonly ctx: TranslatorContext) {
    this.addressLimit = 2 ** ctx.features.oasBits;
    this.walker = new Smmuv3StageWalker(ctx);
    this.config = new Smmuv3ConfigFetch(ctx, this.walker);
    this.steCache = this.config.steCache;
    this.cdCache = this.config.cdCache;
    this.memo = new HitMemo(MEMO_LINES, [this.steCache.cache, this.cdCache.cache, ctx.tlb.cache]);
  }

  /** Table walks started (stage 1 and stage 2 separately). */
  get walks(): number {
    return this.walker.walks;
  }

  /**
   * An untranslated transaction (§3.2): faults are recorded, or stall, as the configuration asks.
   * `stallId` names a held transaction being retried, which keeps its id if it stalls again.
   */
  translate(request: TranslationRequest, stallId?: number): TranslationResult {
    // A traced hit reports itself (tlb.hit), so tracing takes the full path.
    const tracing = this.ctx.tracer.enabled;
    const state = this.ctx.state();
    const { streamId, pasid, iovaPfn, access } = request;
    if (!tracing) {
      const replayed = this.memo.get(streamId, pasid, iovaPfn, access, state);
      if (replayed !== undefined) return replayed;
    }
    this.answeredFrom = 0;
    const result = this.finish(request, this.run(request, false), true, stallId);
    if (this.answeredFrom !== 0 && !tracing)
      this.memo.record(streamId, pasid, iovaPfn, access, state, this.answeredFrom, result);
    return result;
  }

  /**
   * The STE of a StreamID as a PRI auto-response checks it (§8.1: STE.PPAR), or undefined when it cannot be
   * used: SMMUEN == 0, out of range, fetch abort or ILLEGAL. No event is recorded (CR2.REC_CFG_ATS is 0).
   */
  steForResponse(streamId: number): Ste | undefined {
    const state = this.ctx.state();
    if (!state.smmuEnabled) return undefined;
    const entry = this.config.ste(streamId, state);
    // An STE with V == 0 is ILLEGAL (checkSte), so a usable entry is a valid STE.
    return entry.ok ? entry.ste : undefined;
  }

  /**
   * An ATS Translation Request (§3.9): needs STE.EATS. The completion grants what the translation gives the
   * request's privilege level (`atsCompletionGrant`); a Permission fault on the page grants what the tables
   * allow, so a request for W or Exe the page lacks gets R alone. A translation failure (R == W == 0) is a
   * failed completion, no event (§3.9.1.2); an execute-only page completes granting nothing. Without a
   * PASID the request is Data, Unprivileged (§13.7.1).
   */
  atsTranslate(request: TranslationRequest): TranslationResult {
    const access = inputAccess(request.access, request.pasid);
    let outcome = this.run(request, true);
    if (
      !outcome.ok &&
      outcome.fault.event === 'F_PERMISSION' &&
      outcome.fault.cls === EVENT_CLASS.IN &&
      access & (PERM_WRITE | PERM_EXEC)
    ) {
      outcome = this.run({ ...request, access: PERM_READ | (access & PERM_PRIV) }, true);
    }
    if (outcome.ok) outcome = { ...outcome, perm: atsCompletionGrant(outcome.perm, access) };
    return this.finish(request, outcome, false);
  }

  private run(request: TranslationRequest, ats: boolean): Outcome {
    const state = this.ctx.state();
    const input = request.iovaPfn * 4096 + request.offset;
    const access = inputAccess(request.access, request.pasid);
    if (!state.smmuEnabled) {
      // ATS is implicitly disabled while SMMUEN == 0: UR and F_BAD_ATS_TREQ (§3.9.1.2).
      if (ats) return { ok: false, fault: { event: 'F_BAD_ATS_TREQ', record: true, reason: 'SMMUEN == 0' } };
      return smmuDisabledOutcome(state.gbpaAbort, input, this.addressLimit);
    }
    const entry = this.config.ste(request.streamId, state);
    if (!entry.ok) {
      const { event, reason, fetchAddr } = entry;
      // C_BAD_STREAMID is recorded only with CR2.RECINVSID == 1 (§6.3.12, §7.3.3).
      const record = event !== 'C_BAD_STREAMID' || state.recordInvalidStreamIds;
      return {
        ok: false,
        // Stryker disable next-line ConditionalExpression: an undefined FetchAddr is left out of the record anyway (faultEventRecord)
        fault: { event, record, reason, ...(fetchAddr !== undefined ? { fetchAddr } : {}) },
      };
    }
    const { ste, kind } = entry;
    // An ATS request to an aborting stream is refused as the transaction would be: no event (§3.9.1).
    if (ats && kind === 'abort') return { ok: false, fault: { event: 'ABORT', record: false } };
    // EATS 0b11 (DPT) behaves as 0b00 without the Device Permission Table (§5.2 EATS).
    if (ats && (ste.eats === STE_EATS.ABORT || ste.eats === STE_EATS.FULL_DPT || kind === 'bypass')) {
      return {
        ok: false,
        fault: { event: 'F_BAD_ATS_TREQ', record: true, reason: 'STE.EATS does not allow ATS' },
      };
    }
    if (kind === 'abort') return { ok: false, fault: { event: 'ABORT', record: false } };
    if (kind === 'bypass') {
      // A SubstreamID on a stream with no stage 1 is C_BAD_SUBSTREAMID (§3.9, §5.2 Config).
      if (request.pasid !== NO_PASID) {
        return {
          ok: false,
          fault: { event: 'C_BAD_SUBSTREAMID', record: true, reason: 'SubstreamID on a bypass stream' },
        };
      }
      return bypassOutcome(input, this.addressLimit);
    }

    const hasSsid = request.pasid !== NO_PASID;
    const s1 = kind === 's1' || kind === 'nested';
    if (hasSsid && (!s1 || ste.s1CdMax === 0 || this.ctx.features.ssidBits === 0)) {
      return {
        ok: false,
        fault: {
          event: 'C_BAD_SUBSTREAMID',
          record: true,
          reason: 'SubstreamID on a stream without substreams',
        },
      };
    }
    const s2Format = entry.s2Format;
    if (s2Format === null)
      return {
        ok: false,
        fault: { event: 'C_BAD_STE', record: true, reason: 'stage-2 translation control is illegal' },
      };
    if (!s1) {
      return this.stage2Only(ste, s2Format!, input, access);
    }

    // Stage 1: which CD (§5.2 S1DSS for transactions without a SubstreamID; reserved 0b11 terminates).
    let ssid = hasSsid ? request.pasid : 0;
    const substreams = ste.s1CdMax > 0 && this.ctx.features.ssidBits > 0;
    // With S1DSS = SSID0, CD 0 belongs to traffic without a SubstreamID: SubstreamID 0 is refused (§7.3.7).
    if (hasSsid && ssid === 0 && substreams && ste.s1Dss === STE_S1DSS.SSID0) {
      return {
        ok: false,
        fault: { event: 'F_STREAM_DISABLED', record: true, reason: 'SubstreamID 0 with S1DSS = SSID0' },
      };
    }
    if (!hasSsid && substreams) {
      if (ste.s1Dss !== STE_S1DSS.BYPASS && ste.s1Dss !== STE_S1DSS.SSID0)
        return { ok: false, fault: { event: 'F_STREAM_DISABLED', record: true } };
      if (ste.s1Dss === STE_S1DSS.BYPASS) {
        return s2Format
          ? this.stage2Only(ste, s2Format, input, access)
          : bypassOutcome(input, this.addressLimit);
      }
      ssid = 0;
    }
    const cd = this.config.cd(request.streamId, ssid, ste, s2Format);
    if ('event' in cd) return { ok: false, fault: cd };
    return this.stage1(ste, cd, s2Format, input, access);
  }

  /** Stage 1 bypassed: the input is the IPA, within the IAS (§3.4), else a stage-1 F_ADDR_SIZE. */
  private stage2Only(ste: Ste, format: VmsaFormat, input: number, access: number): Outcome {
    if (input >= this.addressLimit) return BYPASS_ADDR_SIZE;
    const cached = this.ctx.tlb.lookup('s2', ste.s2Vmid, GLOBAL_ASID, input);
    const hit = cached && this.hit(cached, input, access, ste, undefined);
    if (hit) {
      if (hit.ok) this.answeredFrom = MEMO_STE | MEMO_TLB;
      return hit;
    }
    const fault = this.walker.stage2(ste, format, input, access, EVENT_CLASS.IN);
    if (fault) return { ok: false, fault };
    const r = this.walker.s2Leaf;
    const dirty = (access & PERM_WRITE) !== 0;
    this.insert('s2', ste.s2Vmid, GLOBAL_ASID, input, r.pa, input, r.pageShift, dirty, ALL_GRANTS, r.grants);
    return { ok: true, pfn: Math.floor(r.pa / 4096), perm: r.perm, pageShift: r.pageShift };
  }

  /** Stage 1 (nested when `s2Format`): the TLB, else the walk and a new TLB entry. */
  private stage1(
    ste: Ste,
    cd: CdContext,
    s2Format: VmsaFormat | undefined,
    input: number,
    access: number,
  ): Outcome {
    const kind: TlbKind = s2Format ? 's12' : 's1';
    const cached = this.ctx.tlb.lookup(kind, ste.s2Vmid, cd.asid, input);
    const hit = cached && this.hit(cached, input, access, ste, cd);
    if (hit) {
      if (hit.ok) this.answeredFrom = MEMO_STE | MEMO_CD | MEMO_TLB;
      if (hit.ok && this.ctx.tracer.enabled) {
        this.trace(
          'tlb.hit',
          `TLB hit ${kind} VMID ${ste.s2Vmid} ASID ${cd.asid} ${toHex(input)} → ${toHex(hit.pfn * 4096 + (input % 4096))}`,
        );
      }
      return hit;
    }
    const fault = this.walker.stage1(ste, cd, s2Format, input, access);
    if (fault) return { ok: false, fault };
    const leaf = this.walker.leaf;
    const asid = leaf.ng ? cd.asid : GLOBAL_ASID;
    this.insert(
      kind,
      ste.s2Vmid,
      asid,
      input,
      leaf.pa,
      leaf.ipa,
      leaf.pageShift,
      leaf.dirty,
      leaf.s1Grants,
      leaf.s2Grants,
    );
    return { ok: true, pfn: Math.floor(leaf.pa / 4096), perm: leaf.perm, pageShift: leaf.pageShift };
  }

  /**
   * A TLB hit (§13.4): the access's PnU, InD and RnW are checked against each stage's cached permissions,
   * stage 1 first as a walk checks them, and a refusal is the fault the walk would give (the IPA of a
   * stage-2 refusal from the entry). `cd` is undefined for a stage-2-only entry. Undefined when the entry
   * cannot answer: a write through a leaf cached clean walks to update the dirty state.
   */
  private hit(e: TlbEntry, input: number, access: number, ste: Ste, cd: Cd | undefined): Outcome | undefined {
    if (cd !== undefined && !grantsAllow(e.s1Grants, access))
      return { ok: false, fault: stage1Fault('F_PERMISSION', ste, cd) };
    const offset = input - e.inputBase;
    if (!grantsAllow(e.s2Grants, access)) {
      return {
        ok: false,
        fault: stage2Fault('F_PERMISSION', ste, e.ipaBase + offset, EVENT_CLASS.IN, access),
      };
    }
    if (access & PERM_WRITE && !e.dirty && this.ctx.features.httu === 'access-dirty') return undefined;
    const perm = grantedTo(e.s1Grants, access) & grantedTo(e.s2Grants, access);
    return { ok: true, pfn: Math.floor((e.outputBase + offset) / 4096), perm, pageShift: e.pageShift };
  }

  /** A new TLB entry, written into the slot it takes. */
  private insert(
    kind: TlbKind,
    vmid: number,
    asid: number,
    input: number,
    pa: number,
    ipa: number,
    pageShift: number,
    dirty: boolean,
    s1Grants: number,
    s2Grants: number,
  ): void {
    const entry = this.ctx.tlb.insert(kind, vmid, asid, input, pageShift);
    const offset = input - entry.inputBase;
    entry.level = 0;
    entry.outputBase = pa - offset;
    entry.ipaBase = ipa - offset;
    entry.s1Grants = s1Grants;
    entry.s2Grants = s2Grants;
    entry.dirty = dirty;
  }

  /** Turns an outcome into the core's result, recording the event the fault calls for. */
  private finish(
    request: TranslationRequest,
    outcome: Outcome,
    untranslated: boolean,
    stallId?: number,
  ): TranslationResult {
    if (outcome.ok) return outcome;
    const f = outcome.fault;
    const input = BigInt(request.iovaPfn) * 4096n + BigInt(request.offset);
    const isEvent = isEventFault(f);
    const base = coreFault(request, f, input);
    // ATS Translation Requests never stall: their failures are completions (§3.9.1).
    if (f.stall && untranslated) {
      const held = this.ctx.holdStall(request, faultEventRecord(request, f), base, stallId);
      if (held) {
        if (this.ctx.tracer.enabled)
          this.trace(
            'fault',
            `${f.event}${f.s2 ? ' (stage 2)' : ''} stream ${toHex(request.streamId)} IOVA ${toHex(input)}: stalled${held.recorded ? ', recorded' : ', waiting for room in the Event queue'}`,
          );
        return { ok: false, fault: { ...base, recorded: held.recorded }, stallId: held.id };
      }
    }
    let recorded = false;
    // C_* and fetch events are always recorded (C_BAD_STREAMID as CR2.RECINVSID says); translation faults
    // when the CD/STE asks (R / S2R); ATS translation failures (not F_BAD_ATS_TREQ) are completions, not
    // events.
    if (isEvent && f.record && (untranslated || f.event === 'F_BAD_ATS_TREQ'))
      recorded = this.ctx.recordEvent(faultEventRecord(request, f));
    const fault: IommuFault = { ...base, recorded };
    if (this.ctx.tracer.enabled)
      this.trace(
        'fault',
        `${f.event}${f.s2 ? ' (stage 2)' : ''} stream ${toHex(request.streamId)} IOVA ${toHex(input)}${f.reason ? `: ${f.reason}` : ''}${recorded ? ', recorded' : ''}`,
      );
    return { ok: false, fault };
  }

  private trace(name: string, message: string): void {
    this.ctx.tracer.trace('hw', this.ctx.instance, name, message);
  }
}
