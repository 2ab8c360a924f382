/**
 * The SMMUv3 configuration cache and its fetches (IHI 0070 §3.3, §5.2, §5.4): STEs by StreamID, checked
 * as they are fetched (an ILLEGAL STE is cached as the C_BAD_STE it gives), and CDs by (StreamID,
 * SubstreamID) through the STE's linear or 2-level CD table. When nested, S1ContextPtr and L1CD.L2Ptr are
 * IPAs that go through stage 2 (CLASS CD). Only commands invalidate these caches (the device runs them),
 * so a driver that forgets a CFGI sees the stale configuration.
 */
import { type CacheGeometry, EntryCache, PERM_READ, toHex } from '@iommukit/core';
import type { VmsaFormat } from '@iommukit/pagetables';
import {
  CD_WORDS,
  type Cd,
  cdAddressFromL1Cd,
  cdOrL1CdAddress,
  cdTableGeometry,
  checkCd,
  decodeCd,
  decodeL1Cd,
  L1CD_WORDS,
} from './cd.js';
import { EVENT_CLASS, type EventName } from './events.js';
import type { Smmuv3IdrExtras } from './features.js';
import type { TranslationState } from './programming-interface.js';
import type { Smmuv3StageWalker, WalkContext } from './stage-walks.js';
import {
  checkSte,
  decodeSte,
  STE_WORDS,
  type Ste,
  type SteConfigKind,
  steConfigKind,
  steStreamWorld,
} from './ste.js';
import { fetchSteWords } from './ste-fetch.js';
import type { Fault } from './translation-faults.js';

/** What the fetches read through, check against and report to. */
export interface ConfigFetchContext extends WalkContext {
  readonly idr: Smmuv3IdrExtras;
  /** The geometry of the STE cache and of the CD cache. */
  readonly configCache: CacheGeometry;
  state(): TranslationState;
}

/**
 * A checked STE decoded once for every translation that uses it: what its Config selects and its stage-2
 * table format (undefined without stage 2; null when S2TG/S2SL0/S2T0SZ cannot form one, which each
 * translation reports as C_BAD_STE).
 */
export interface SteContext {
  readonly ok: true;
  readonly ste: Ste;
  readonly kind: SteConfigKind;
  readonly s2Format: VmsaFormat | null | undefined;
}

/** A checked STE, or why it is unusable (cached as the hardware caches what it fetched). */
export type SteEntry =
  | SteContext
  | { readonly ok: false; readonly event: EventName; readonly reason: string; readonly fetchAddr?: number };

/** A checked CD as stage 1 uses it, with the table format of its TTB0 worked out once at the fetch. */
export interface CdContext extends Cd {
  readonly s1Format: VmsaFormat;
}

export class Smmuv3ConfigFetch {
  /** STEs by StreamID. */
  readonly steCache: EntryCache<SteEntry>;
  /** CDs by (StreamID, SubstreamID). */
  readonly cdCache: EntryCache<CdContext>;
  /** One STE, CD or L1CD as read from memory. */
  private readonly words = new Uint32Array(STE_WORDS);

  constructor(
    private readonly ctx: ConfigFetchContext,
    private readonly walker: Smmuv3StageWalker,
  ) {
    this.steCache = new EntryCache('smmuv3 STE cache', ctx.configCache);
    this.cdCache = new EntryCache('smmuv3 CD cache', ctx.configCache);
  }

  /** The STE of a StreamID, from the cache or fetched and checked (§3.3.1, §5.2). */
  ste(streamId: number, state: TranslationState): SteEntry {
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
    const ste = decodeSte(this.words);
    const check = checkSte(ste, features, this.ctx.idr);
    const entry: SteEntry = check.ok
      ? this.context(ste)
      : { ok: false, event: 'C_BAD_STE', reason: check.reason };
    this.steCache.set(streamId, 0, entry);
    // Stryker disable next-line ConditionalExpression: only spares building the message; trace() drops it when off
    if (this.ctx.tracer.enabled) {
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'ste.fetch',
        `fetch STE[${toHex(streamId)}] at ${toHex(fetched.address)}: ${check.ok ? `Config ${steConfigKind(ste.config)}` : `C_BAD_STE (${check.reason})`}`,
      );
    }
    return entry;
  }

  private context(ste: Ste): SteContext {
    const kind = steConfigKind(ste.config);
    const s2Format = kind === 's2' || kind === 'nested' ? (this.walker.stage2Format(ste) ?? null) : undefined;
    return { ok: true, ste, kind, s2Format };
  }

  /** The CD for (StreamID, SubstreamID); nested (`s2Format`): the table pointers are IPAs translated by stage 2. */
  cd(streamId: number, ssid: number, ste: Ste, s2Format: VmsaFormat | undefined): CdContext | Fault {
    const cached = this.cdCache.get(streamId, ssid);
    if (cached) return cached;
    const geometry = cdTableGeometry(ste.s1Fmt, ste.s1CdMax, this.ctx.features.ssidBits);
    const first = cdOrL1CdAddress(ste.s1ContextPtr, geometry, ssid);
    if (!first.ok) return { event: 'C_BAD_SUBSTREAMID', record: true, reason: first.reason };
    let cdIpa = first.address;
    if (geometry.format === 'two-level') {
      const l1 = this.toPa(ste, s2Format, first.address);
      if (typeof l1 !== 'number') return l1;
      if (!this.ctx.bus.readWords(l1, this.words, L1CD_WORDS, this.ctx.counter))
        return { event: 'F_CD_FETCH', record: true, fetchAddr: l1 };
      const bits = s2Format ? s2Format.ias : this.ctx.features.oasBits;
      const at = cdAddressFromL1Cd(decodeL1Cd(this.words), geometry, ssid, bits);
      if (!at.ok) return { event: 'C_BAD_SUBSTREAMID', record: true, reason: at.reason };
      cdIpa = at.address;
    }
    const cdPa = this.toPa(ste, s2Format, cdIpa);
    if (typeof cdPa !== 'number') return cdPa;
    if (!this.ctx.bus.readWords(cdPa, this.words, CD_WORDS, this.ctx.counter))
      return { event: 'F_CD_FETCH', record: true, fetchAddr: cdPa };
    const cd = decodeCd(this.words);
    const streamWorld = steStreamWorld(ste, this.ctx.idr.hyp, this.ctx.state().e2h);
    const check = checkCd(cd, this.ctx.features, { streamWorld, s1Stalld: ste.s1Stalld }, this.ctx.idr);
    // Stryker disable next-line ConditionalExpression: only spares building the message; trace() drops it when off
    if (this.ctx.tracer.enabled) {
      this.ctx.tracer.trace(
        'hw',
        this.ctx.instance,
        'cd.fetch',
        `fetch CD[${toHex(streamId)}:${ssid}] at ${toHex(cdPa)}${s2Format ? ` (IPA ${toHex(cdIpa)})` : ''}: ${check.ok ? `ASID ${cd.asid} TTB0 ${toHex(cd.ttb0)}` : `C_BAD_CD (${check.reason})`}`,
      );
    }
    if (!check.ok) return { event: 'C_BAD_CD', record: true, reason: check.reason };
    // The decoded CD is this fetch's own object: completing it in place keeps its shape (a copy of a
    // 50-field object with extra keys would not). EPD0/EPD1 are IGNORED, effectively 0, for an any-EL2
    // StreamWorld (§5.4 EPD0): cache what the walks use.
    const used = cd as { -readonly [K in keyof CdContext]: CdContext[K] };
    if (streamWorld === 'NS-EL2') {
      used.epd0 = false;
      // Stryker disable next-line BooleanLiteral: EPD1 is never read (only TTB0 is walked)
      used.epd1 = false;
    }
    used.s1Format = this.walker.stage1Format(cd);
    this.cdCache.set(streamId, ssid, used);
    return used;
  }

  /** The PA of a CD-table IPA: through stage 2 when nested (`s2Format`, CLASS CD), else the address itself. */
  private toPa(ste: Ste, s2Format: VmsaFormat | undefined, ipa: number): number | Fault {
    if (!s2Format) return ipa;
    return this.walker.stage2(ste, s2Format, ipa, PERM_READ, EVENT_CLASS.CD) ?? this.walker.s2Leaf.pa;
  }
}
