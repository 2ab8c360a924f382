/**
 * The SMMUv3 translation pipeline for one transaction (SMMUv3 §3.2–3.4, §5, §7.3): global bypass when the
 * SMMU is disabled; stream table lookup (linear or 2-level) and STE checks; SubstreamID handling and the CD
 * fetch (through stage 2 when nested: S1ContextPtr and L1CD pointers are IPAs); the TLB; stage-1,
 * stage-2 or nested walks through `@iommukit/pagetables` (in a nested walk every stage-1 descriptor
 * address and the stage-1 output go through stage 2); permission checks; and the event a fault records.
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
 * Not modelled yet: STE.EATS split-stage (S1CHK) ATS, and the walk caches (every miss walks from the root,
 * so a nested 4-level × 4-level miss reads 24 descriptors).
 */
import {
  type AccessCounter,
  type FaultKind,
  type IommuFault,
  type ITracer,
  LruCache,
  type MemoryBus,
  NO_PASID,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  type TranslationRequest,
  type TranslationResult,
  toHex,
} from '@iommukit/core';
import {
  psEncoding,
  type VmsaFormat,
  type VmsaLeafAttributes,
  vmsaFormatFromRegisters,
  type WalkFault,
  walk,
} from '@iommukit/pagetables';
import {
  CD_WORDS,
  type Cd,
  cdAddressFromL1Cd,
  cdEffectiveIpsBits,
  cdOrL1CdAddress,
  cdTableGeometry,
  checkCd,
  decodeCd,
  decodeL1Cd,
  L1CD_WORDS,
} from './cd.js';
import {
  EVENT_CLASS,
  EVENT_FAULT_KIND,
  EVENT_ID,
  type EventName,
  type EventRecord,
  STAGE_EVENTS,
} from './events.js';
import type { Smmuv3Features, Smmuv3IdrExtras } from './features.js';
import { ALL_GRANTS, atsCompletionGrant, grantedTo, grantsAllow, inputAccess, leafGrants } from './grants.js';
import type { TranslationState } from './programming-interface.js';
import {
  checkSte,
  decodeSte,
  STE_EATS,
  STE_S1DSS,
  STE_WORDS,
  type Ste,
  steConfigKind,
  steEffectiveS2PsBits,
  steStreamWorld,
} from './ste.js';
import { fetchSteWords } from './ste-fetch.js';
import { GLOBAL_ASID, type Smmuv3Tlb, type TlbEntry, type TlbKind } from './tlb.js';

export interface TranslatorContext {
  readonly instance: string;
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  readonly tracer: ITracer;
  readonly features: Smmuv3Features;
  readonly idr: Smmuv3IdrExtras;
  readonly tlb: Smmuv3Tlb;
  readonly configCacheEntries: number;
  state(): TranslationState;
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

/** A checked STE, or why it is unusable (cached as the hardware caches what it fetched). */
type SteEntry =
  | { readonly ok: true; readonly ste: Ste }
  | { readonly ok: false; readonly event: EventName; readonly reason: string; readonly fetchAddr?: number };

type Outcome = { ok: true; pa: number; perm: number; pageShift: number } | { ok: false; fault: Fault };

interface Fault {
  readonly event: EventName | 'ABORT' | 'GBPA_ABORT' | 'OAS_ABORT';
  /** Stage 2 fault (event S2 bit). */
  readonly s2?: boolean;
  readonly ipa?: number;
  readonly cls?: number;
  /** CLASS TT: whether the stage-1 descriptor read (true) or its hardware update (false) faulted. */
  readonly ttRnW?: boolean;
  readonly fetchAddr?: number;
  /** Whether the configuration asks for the fault to be recorded (CD.R / STE.S2R; always for C_* events). */
  readonly record: boolean;
  /** A translation-related fault whose stage is configured to stall (CD.S / STE.S2S). */
  readonly stall?: boolean;
  readonly reason?: string;
}

/** Aborts without an event record are configuration aborts; events map as the driver reports them. */
const KIND: Readonly<Record<Fault['event'], FaultKind>> = {
  ABORT: 'config-abort',
  GBPA_ABORT: 'config-abort',
  OAS_ABORT: 'address-size',
  ...EVENT_FAULT_KIND,
};

/**
 * Address sizes (IHI 0070 §3.4) on every translation path; IAS = OAS here (VMSAv8-64 only, IDR0.TTF):
 * - SMMUEN == 0, GBPA bypass: an input at or above 2^OAS aborts without an event (`OAS_ABORT`).
 * - STE.Config == bypass: an input at or above 2^OAS is a stage-1 F_ADDR_SIZE (CLASS IN, S2 = 0).
 * - Stage 1 bypassed (Config == stage 2 only, or S1DSS == bypass with or without stage 2): an input at or
 *   above 2^IAS is a stage-1 F_ADDR_SIZE (CLASS IN, S2 = 0); otherwise stage 2, if any, checks it.
 * - Stage 1 translating (the walker): a VA outside T0SZ is F_TRANSLATION; a table or output address at or
 *   above the effective IPS (capped to the OAS) is a stage-1 F_ADDR_SIZE.
 * - Stage 2 translating (the walker): an IPA outside S2T0SZ is a stage-2 F_TRANSLATION, a table or output
 *   address at or above the effective S2PS a stage-2 F_ADDR_SIZE. When nested, stage-1 output, stage-1
 *   table and CD/L1CD addresses are IPAs and go through these checks.
 * - Stage 2 bypassed: the IPA (below the effective IPS, so the OAS) is the PA; nothing is truncated.
 * - SMMU-originated accesses (§3.4.3): S1ContextPtr beyond the OAS/IAS is C_BAD_STE (`checkSte`), an
 *   L1CD.L2Ptr beyond it C_BAD_SUBSTREAMID; STE and descriptor fetches from no memory abort (F_STE_FETCH,
 *   F_WALK_EABT).
 * The bypass faults below are not caused by a stage configured to stall: they are recorded and terminate.
 */
const OAS_ABORT: Outcome = {
  ok: false,
  fault: { event: 'OAS_ABORT', record: false, reason: 'input beyond the OAS' },
};
const BYPASS_ADDR_SIZE: Outcome = {
  ok: false,
  fault: { event: 'F_ADDR_SIZE', record: true, stall: false, s2: false, cls: EVENT_CLASS.IN },
};

/** SubstreamIDs are 20 bits, so StreamID · 2^20 + SubstreamID is exact (StreamIDs are at most 32 bits). */
const SSID_SPAN = 2 ** 20;

/** The configuration cache key of a CD: a number, so a cache hit builds no string. */
export function cdCacheKey(streamId: number, ssid: number): number {
  return streamId * SSID_SPAN + ssid;
}

/** The StreamID a CD cache key belongs to. */
export function cdCacheStream(key: number): number {
  return Math.floor(key / SSID_SPAN);
}

/** FetchAddr of an F_WALK_EABT: the PA of the descriptor access the bus refused. */
function walkAbortAddress(fault: WalkFault): { fetchAddr?: number } {
  return fault.address !== undefined ? { fetchAddr: fault.address } : {};
}

const WALK_EVENT: Readonly<Record<WalkFault['kind'], EventName>> = {
  translation: 'F_TRANSLATION',
  'address-size': 'F_ADDR_SIZE',
  'access-flag': 'F_ACCESS',
  'walk-abort': 'F_WALK_EABT',
};

/** A stage-1 translation-related fault: recorded as CD.R says, stalls as CD.S says (§3.12); CLASS IN. */
function stage1Fault(event: EventName, ste: Ste, cd: Cd): Fault {
  return { event, record: cd.r, stall: cd.s && !ste.s1Stalld, s2: false, cls: EVENT_CLASS.IN };
}

/**
 * A stage-2 translation-related fault, recorded as STE.S2R says, stalling as STE.S2S says, with the IPA's
 * page. For a stage-1 table walk (CLASS TT), TTRnW tells a descriptor read from a hardware update (§7.3.16).
 */
function stage2Fault(event: EventName, ste: Ste, ipa: number, cls: number, access: number): Fault {
  const ipaPage = Math.floor(ipa / 4096) * 4096;
  const fault = { event, record: ste.s2R, stall: ste.s2S, s2: true, ipa: ipaPage, cls };
  return cls === EVENT_CLASS.TT ? { ...fault, ttRnW: (access & PERM_WRITE) === 0 } : fault;
}

export class Smmuv3Translator {
  readonly steCache: LruCache<number, SteEntry>;
  /** CDs by {@link cdCacheKey}(StreamID, SubstreamID). */
  readonly cdCache: LruCache<number, Cd>;
  walks = 0;
  private readonly words = new Uint32Array(STE_WORDS);
  /** 2^OAS, which is also 2^IAS: inputs at or above it fail the bypass address-size checks. */
  private readonly addressLimit: number;

  constructor(private readonly ctx: TranslatorContext) {
    this.addressLimit = 2 ** ctx.features.oasBits;
    this.steCache = new LruCache(ctx.configCacheEntries);
    this.cdCache = new LruCache(ctx.configCacheEntries);
  }

  /**
   * An untranslated transaction (§3.2): faults are recorded, or stall, as the configuration asks.
   * `stallId` names a held transaction being retried, which keeps its id if it stalls again.
   */
  translate(request: TranslationRequest, stallId?: number): TranslationResult {
    return this.finish(request, this.run(request, false), true, stallId);
  }

  /**
   * The STE of a StreamID as a PRI auto-response checks it (§8.1: STE.PPAR), or undefined when it cannot be
   * used: SMMUEN == 0, out of range, fetch abort or ILLEGAL. No event is recorded (CR2.REC_CFG_ATS is 0).
   */
  steForResponse(streamId: number): Ste | undefined {
    const state = this.ctx.state();
    if (!state.smmuEnabled) return undefined;
    const entry = this.fetchSte(streamId, state);
    return entry.ok && entry.ste.v ? entry.ste : undefined;
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
      if (state.gbpaAbort) return { ok: false, fault: { event: 'GBPA_ABORT', record: false } };
      if (input >= this.addressLimit) return OAS_ABORT;
      return { ok: true, pa: input, perm: PERM_READ | PERM_WRITE, pageShift: 12 };
    }
    const entry = this.fetchSte(request.streamId, state);
    if (!entry.ok) {
      const { event, reason, fetchAddr } = entry;
      // C_BAD_STREAMID is recorded only with CR2.RECINVSID == 1 (§6.3.12, §7.3.3).
      const record = event !== 'C_BAD_STREAMID' || state.recordInvalidStreamIds;
      return {
        ok: false,
        fault: { event, record, reason, ...(fetchAddr !== undefined ? { fetchAddr } : {}) },
      };
    }
    const ste = entry.ste;
    const kind = steConfigKind(ste.config);
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
      if (input >= this.addressLimit) return BYPASS_ADDR_SIZE;
      return { ok: true, pa: input, perm: PERM_READ | PERM_WRITE, pageShift: 12 };
    }

    const hasSsid = request.pasid !== NO_PASID;
    const s1 = kind === 's1' || kind === 'nested';
    const s2 = kind === 's2' || kind === 'nested';
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
    let s2Format: VmsaFormat | undefined;
    if (s2) {
      const f = this.stage2Format(ste);
      if (!f)
        return {
          ok: false,
          fault: { event: 'C_BAD_STE', record: true, reason: 'stage-2 translation control is illegal' },
        };
      s2Format = f;
    }
    if (!s1) {
      return input >= this.addressLimit ? BYPASS_ADDR_SIZE : this.stage2Only(ste, s2Format!, input, access);
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
        if (input >= this.addressLimit) return BYPASS_ADDR_SIZE;
        return s2Format
          ? this.stage2Only(ste, s2Format, input, access)
          : { ok: true, pa: input, perm: PERM_READ | PERM_WRITE, pageShift: 12 };
      }
      ssid = 0;
    }
    const cd = this.fetchCd(request.streamId, ssid, ste, s2Format);
    if ('event' in cd) return { ok: false, fault: cd };
    return this.stage1(ste, cd, s2Format, input, access);
  }

  /** Stage 1 bypassed: the input, already checked against the IAS, is the IPA. */
  private stage2Only(ste: Ste, format: VmsaFormat, input: number, access: number): Outcome {
    const cached = this.ctx.tlb.lookup('s2', ste.s2Vmid, GLOBAL_ASID, input);
    const hit = cached && this.hit(cached, input, access, ste, undefined);
    if (hit) return hit;
    const r = this.walkStage2(ste, format, input, access, EVENT_CLASS.IN);
    if (!r.ok) return r;
    this.insert('s2', ste.s2Vmid, GLOBAL_ASID, input, {
      ...r,
      ipa: input,
      s1Grants: ALL_GRANTS,
      s2Grants: r.grants,
    });
    return { ok: true, pa: r.pa, perm: r.perm, pageShift: r.pageShift };
  }

  private stage1(ste: Ste, cd: Cd, s2Format: VmsaFormat | undefined, input: number, access: number): Outcome {
    const kind: TlbKind = s2Format ? 's12' : 's1';
    const cached = this.ctx.tlb.lookup(kind, ste.s2Vmid, cd.asid, input);
    const hit = cached && this.hit(cached, input, access, ste, cd);
    if (hit) {
      if (hit.ok && this.ctx.tracer.enabled) {
        this.trace(
          'tlb.hit',
          `TLB hit ${kind} VMID ${ste.s2Vmid} ASID ${cd.asid} ${toHex(input)} → ${toHex(hit.pa)}`,
        );
      }
      return hit;
    }
    if (cd.epd0)
      return {
        ok: false,
        fault: { ...stage1Fault('F_TRANSLATION', ste, cd), reason: 'CD.EPD0 disables TTB0 walks' },
      };
    const format = this.stage1Format(cd);
    if (!format)
      return {
        ok: false,
        fault: { event: 'C_BAD_CD', record: true, reason: 'stage-1 translation control is illegal' },
      };
    this.walks++;
    // {HD, HA} = {1, 0} behaves as both 0 (§5.4 CD.HD).
    const hd = cd.hd && cd.ha && this.ctx.features.httu === 'access-dirty';
    let s2Fault: Fault | undefined;
    const result = walk(format, cd.ttb0, input, {
      bus: this.ctx.bus,
      counter: this.ctx.counter,
      access,
      hardwareAccessFlag: cd.ha && this.ctx.features.httu !== 'none',
      accessFlagFaultDisable: cd.affd,
      hardwareDirty: hd,
      hierarchicalPermissions: !cd.had0,
      onStep: (level, addr, lo, hi) => this.traceStep(1, level, addr, lo, hi),
      ...(s2Format
        ? {
            // A hardware update of a stage-1 descriptor writes its IPA: stage 2 must allow it (§3.13.5).
            translateTableAddress: (ipa: number, _level: number, tableAccess: number) => {
              const t = this.walkStage2(ste, s2Format, ipa, tableAccess, EVENT_CLASS.TT);
              if (t.ok) return t.pa;
              s2Fault = t.fault;
              return { kind: 'translation', level: 0 } as WalkFault;
            },
          }
        : {}),
    });
    if (!result.ok) {
      if (s2Fault) return { ok: false, fault: s2Fault };
      const event = WALK_EVENT[result.fault.kind];
      // A descriptor fetch that aborts is CLASS TT with its PA, and always recorded (§7.3.12, §5.5).
      if (event === 'F_WALK_EABT') {
        return {
          ok: false,
          fault: { event, record: true, s2: false, cls: EVENT_CLASS.TT, ...walkAbortAddress(result.fault) },
        };
      }
      return { ok: false, fault: stage1Fault(event, ste, cd) };
    }
    const attrs = result.attrs as VmsaLeafAttributes;
    const s1Grants = leafGrants(attrs, hd);
    if (!grantsAllow(s1Grants, access)) return { ok: false, fault: stage1Fault('F_PERMISSION', ste, cd) };
    let perm = grantedTo(s1Grants, access);
    let pa = result.pa;
    let pageShift = result.pageShift;
    let s2Grants = ALL_GRANTS;
    if (s2Format) {
      const t = this.walkStage2(ste, s2Format, result.pa, access, EVENT_CLASS.IN);
      if (!t.ok) return t;
      pa = t.pa;
      perm &= t.perm;
      pageShift = Math.min(pageShift, t.pageShift);
      s2Grants = t.grants;
    }
    this.insert(kind, ste.s2Vmid, attrs.ng ? cd.asid : GLOBAL_ASID, input, {
      pa,
      ipa: result.pa,
      pageShift,
      dirty: (access & PERM_WRITE) !== 0,
      s1Grants,
      s2Grants,
    });
    return { ok: true, pa, perm, pageShift };
  }

  private walkStage2(
    ste: Ste,
    format: VmsaFormat,
    ipa: number,
    access: number,
    cls: number,
  ):
    | { ok: true; pa: number; perm: number; grants: number; pageShift: number; dirty: boolean }
    | { ok: false; fault: Fault } {
    this.walks++;
    // {S2HA, S2HD} = {0, 1} behaves as both 0 (§5.2 STE.S2HD).
    const hd = ste.s2Hd && ste.s2Ha && this.ctx.features.httu === 'access-dirty';
    const result = walk(format, ste.s2Ttb, ipa, {
      bus: this.ctx.bus,
      counter: this.ctx.counter,
      access,
      hardwareAccessFlag: ste.s2Ha && this.ctx.features.httu !== 'none',
      accessFlagFaultDisable: ste.s2Affd,
      hardwareDirty: hd,
      onStep: (level, addr, lo, hi) => this.traceStep(2, level, addr, lo, hi),
    });
    if (!result.ok) {
      const event = WALK_EVENT[result.fault.kind];
      if (event === 'F_WALK_EABT') {
        const ipaPage = Math.floor(ipa / 4096) * 4096;
        return {
          ok: false,
          fault: { event, record: true, s2: true, ipa: ipaPage, cls, ...walkAbortAddress(result.fault) },
        };
      }
      return { ok: false, fault: stage2Fault(event, ste, ipa, cls, access) };
    }
    const grants = leafGrants(result.attrs as VmsaLeafAttributes, hd);
    if (!grantsAllow(grants, access))
      return { ok: false, fault: stage2Fault('F_PERMISSION', ste, ipa, cls, access) };
    return {
      ok: true,
      pa: result.pa,
      perm: grantedTo(grants, access),
      grants,
      pageShift: result.pageShift,
      dirty: (access & PERM_WRITE) !== 0,
    };
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
    return { ok: true, pa: e.outputBase + offset, perm, pageShift: e.pageShift };
  }

  private insert(
    kind: TlbKind,
    vmid: number,
    asid: number,
    input: number,
    leaf: {
      pa: number;
      ipa: number;
      pageShift: number;
      dirty: boolean;
      s1Grants: number;
      s2Grants: number;
    },
  ): void {
    const size = 2 ** leaf.pageShift;
    const offset = input % size;
    this.ctx.tlb.insert({
      kind,
      vmid,
      asid,
      inputBase: input - offset,
      pageShift: leaf.pageShift,
      level: 0,
      outputBase: leaf.pa - offset,
      ipaBase: leaf.ipa - offset,
      s1Grants: leaf.s1Grants,
      s2Grants: leaf.s2Grants,
      dirty: leaf.dirty,
    });
  }

  private fetchSte(streamId: number, state: TranslationState): SteEntry {
    const cached = this.steCache.get(streamId);
    if (cached) return cached;
    const features = this.ctx.features;
    const fetched = fetchSteWords(
      this.ctx.bus,
      this.ctx.counter,
      state,
      features.sidBits,
      streamId,
      this.words,
    );
    if (!fetched.ok) return fetched;
    const address = fetched.address;
    const ste = decodeSte(this.words);
    const check = checkSte(ste, features, this.ctx.idr);
    const entry: SteEntry = check.ok
      ? { ok: true, ste }
      : { ok: false, event: 'C_BAD_STE', reason: check.reason };
    this.steCache.set(streamId, entry);
    this.trace(
      'ste.fetch',
      `fetch STE[${toHex(streamId)}] at ${toHex(address)}: ${check.ok ? `Config ${steConfigKind(ste.config)}` : `C_BAD_STE (${check.reason})`}`,
    );
    return entry;
  }

  /** The CD for (StreamID, SubstreamID); nested: the table pointers are IPAs translated by stage 2. */
  private fetchCd(streamId: number, ssid: number, ste: Ste, s2Format: VmsaFormat | undefined): Cd | Fault {
    const key = cdCacheKey(streamId, ssid);
    const cached = this.cdCache.get(key);
    if (cached) return cached;
    const geometry = cdTableGeometry(ste.s1Fmt, ste.s1CdMax, this.ctx.features.ssidBits);
    const toPa = (ipa: number): number | Fault => {
      if (!s2Format) return ipa;
      const t = this.walkStage2(ste, s2Format, ipa, PERM_READ, EVENT_CLASS.CD);
      return t.ok ? t.pa : t.fault;
    };
    const first = cdOrL1CdAddress(ste.s1ContextPtr, geometry, ssid);
    if (!first.ok) return { event: 'C_BAD_SUBSTREAMID', record: true, reason: first.reason };
    let cdIpa = first.address;
    if (geometry.format === 'two-level') {
      const l1 = toPa(first.address);
      if (typeof l1 !== 'number') return l1;
      if (!this.ctx.bus.readWords(l1, this.words, L1CD_WORDS, this.ctx.counter))
        return { event: 'F_CD_FETCH', record: true, fetchAddr: l1 };
      const bits = s2Format ? s2Format.ias : this.ctx.features.oasBits;
      const at = cdAddressFromL1Cd(decodeL1Cd(this.words), geometry, ssid, bits);
      if (!at.ok) return { event: 'C_BAD_SUBSTREAMID', record: true, reason: at.reason };
      cdIpa = at.address;
    }
    const cdPa = toPa(cdIpa);
    if (typeof cdPa !== 'number') return cdPa;
    if (!this.ctx.bus.readWords(cdPa, this.words, CD_WORDS, this.ctx.counter))
      return { event: 'F_CD_FETCH', record: true, fetchAddr: cdPa };
    const cd = decodeCd(this.words);
    const streamWorld = steStreamWorld(ste, this.ctx.idr.hyp, this.ctx.state().e2h);
    const check = checkCd(cd, this.ctx.features, { streamWorld, s1Stalld: ste.s1Stalld }, this.ctx.idr);
    this.trace(
      'cd.fetch',
      `fetch CD[${toHex(streamId)}:${ssid}] at ${toHex(cdPa)}${s2Format ? ` (IPA ${toHex(cdIpa)})` : ''}: ${check.ok ? `ASID ${cd.asid} TTB0 ${toHex(cd.ttb0)}` : `C_BAD_CD (${check.reason})`}`,
    );
    if (!check.ok) return { event: 'C_BAD_CD', record: true, reason: check.reason };
    this.cdCache.set(key, cd);
    return cd;
  }

  private stage1Format(cd: Cd): VmsaFormat | undefined {
    try {
      return vmsaFormatFromRegisters({
        stage: 1,
        tg: cd.tg0,
        t0sz: cd.t0sz,
        ps: psEncoding(cdEffectiveIpsBits(cd, this.ctx.features)) ?? cd.ips,
      });
    } catch {
      return undefined;
    }
  }

  private stage2Format(ste: Ste): VmsaFormat | undefined {
    try {
      return vmsaFormatFromRegisters({
        stage: 2,
        tg: ste.s2Tg,
        t0sz: ste.s2T0sz,
        sl0: ste.s2Sl0,
        ps: psEncoding(steEffectiveS2PsBits(ste, this.ctx.features)) ?? ste.s2Ps,
      });
    } catch {
      return undefined;
    }
  }

  /** Turns an outcome into the core's result, recording the event the fault calls for. */
  private finish(
    request: TranslationRequest,
    outcome: Outcome,
    untranslated: boolean,
    stallId?: number,
  ): TranslationResult {
    if (outcome.ok)
      return {
        ok: true,
        pfn: Math.floor(outcome.pa / 4096),
        perm: outcome.perm,
        pageShift: outcome.pageShift,
      };
    const f = outcome.fault;
    const input = BigInt(request.iovaPfn) * 4096n + BigInt(request.offset);
    const isEvent = f.event !== 'ABORT' && f.event !== 'GBPA_ABORT' && f.event !== 'OAS_ABORT';
    const base = this.coreFault(request, f, input);
    // ATS Translation Requests never stall: their failures are completions (§3.9.1).
    if (f.stall && untranslated) {
      const held = this.ctx.holdStall(request, this.eventRecord(request, f), base, stallId);
      if (held) {
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
      recorded = this.ctx.recordEvent(this.eventRecord(request, f));
    const fault: IommuFault = { ...base, recorded };
    this.trace(
      'fault',
      `${f.event}${f.s2 ? ' (stage 2)' : ''} stream ${toHex(request.streamId)} IOVA ${toHex(input)}${f.reason ? `: ${f.reason}` : ''}${recorded ? ', recorded' : ''}`,
    );
    return { ok: false, fault };
  }

  /** The core's view of a fault (`recorded` is the caller's to set). */
  private coreFault(request: TranslationRequest, f: Fault, input: bigint): IommuFault {
    return {
      kind: KIND[f.event],
      vendorCode: f.event,
      // The stage is the record's S2 bit, for the events whose record has one (§7.3.12–7.3.16).
      ...(STAGE_EVENTS.has(f.event) ? { stage: f.s2 === true ? 2 : 1 } : {}),
      streamId: request.streamId,
      pasid: request.pasid,
      iova: input,
      access: request.access,
      recorded: false,
    };
  }

  private eventRecord(request: TranslationRequest, f: Fault): EventRecord {
    const ssv = request.pasid !== NO_PASID;
    const access = inputAccess(request.access, request.pasid);
    const id = EVENT_ID[f.event as EventName];
    const base = { id, streamId: request.streamId };
    const withSsid = ssv ? { ssv: true, substreamId: request.pasid } : {};
    switch (f.event) {
      // These records carry SSV and the SubstreamID of the transaction (§7.3.3–7.3.5).
      case 'C_BAD_STREAMID':
      case 'C_BAD_STE':
        return { ...base, ...withSsid };
      case 'F_STE_FETCH':
        return { ...base, ...withSsid, ...(f.fetchAddr !== undefined ? { fetchAddr: f.fetchAddr } : {}) };
      case 'F_STREAM_DISABLED':
        return base;
      case 'C_BAD_SUBSTREAMID':
        return { ...base, substreamId: ssv ? request.pasid : 0 };
      case 'F_CD_FETCH':
        return { ...base, ...withSsid, ...(f.fetchAddr !== undefined ? { fetchAddr: f.fetchAddr } : {}) };
      case 'C_BAD_CD':
      case 'F_BAD_ATS_TREQ':
        return { ...base, ...withSsid };
      default:
        return {
          ...base,
          ...withSsid,
          // The faulting access as the SMMU took it (§7.3.13–7.3.16): a write, or a transaction without a
          // SubstreamID, is Data (InD == 0); without a SubstreamID it is also Unprivileged (§13.7).
          rnw: (access & PERM_WRITE) === 0,
          pnu: (access & PERM_PRIV) !== 0,
          ind: (access & PERM_EXEC) !== 0,
          s2: f.s2 === true,
          class: f.cls ?? EVENT_CLASS.IN,
          inputAddrPage: request.iovaPfn,
          inputAddrOffset: request.offset,
          ...(f.ttRnW !== undefined && f.event === 'F_PERMISSION' ? { ttRnW: f.ttRnW } : {}),
          // F_WALK_EABT gives the descriptor's PA (FetchAddr) instead of an IPA (§7.3.12).
          ...(f.event === 'F_WALK_EABT'
            ? f.fetchAddr !== undefined
              ? { fetchAddr: f.fetchAddr }
              : {}
            : f.s2 && f.ipa !== undefined
              ? { ipa: f.ipa }
              : {}),
        };
    }
  }

  private traceStep(stage: 1 | 2, level: number, addr: number, lo: number, hi: number): void {
    if (this.ctx.tracer.enabled) {
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'walk.step',
        `walk S${stage} L${level} read ${toHex(addr)} = ${toHex(hi * 2 ** 32 + lo)}`,
        { stage, level, addr },
      );
    }
  }

  private trace(name: string, message: string): void {
    if (this.ctx.tracer.enabled) this.ctx.tracer.trace('hw', this.ctx.instance, name, message);
  }
}
