/**
 * What a request's source ID (and, in scalable mode, PASID) is configured with: the root and context
 * entries (VT-d specification §3.4.1 legacy, §3.4.3 scalable mode), and in scalable mode the PASID
 * directory and PASID table entries (§3.4.3, §9.5, §9.6), fetched from memory, checked, decoded once and
 * kept in the context and PASID caches (caches.ts). A failed fetch or check is a {@link ConfigFault}
 * carrying the fault reason and whether FPD was set in an entry on the way.
 *
 * Caching mode (CAP.CM = 1, §6.1): the unit may cache not-present and erroneous root, context and PASID
 * entries, and this model does (tagged DID 0), so software must invalidate after every change of those
 * structures, not-present → present included — the property a VMM shadowing a guest relies on. Without
 * caching mode only usable entries are cached.
 *
 * Formats are built once per distinct encoding (the walks' `VtdSsFormat` and `X86Format` are immutable).
 */
import { type AccessCounter, type MemoryBus, NO_PASID } from '@iommukit/core';
import { type VtdSsFormat, vtdSsFormat, type X86Format, x86Format } from '@iommukit/pagetables';
import type { VtdCaches } from './caches.js';
import { FR } from './fault-reasons.js';
import type { VtdFeatures } from './features.js';
import {
  checkPasidDirEntry,
  checkPasidEntry,
  decodePasidDirEntry,
  decodePasidEntry,
  firstStageLevels,
  PASID_DIR_ENTRY_WORDS,
  PASID_ENTRY_WORDS,
  type PasidEntry,
  PGTT,
  pasidDirEntryAddress,
  pasidEntryAddress,
} from './pasid-entry.js';
import {
  CONTEXT_TT,
  checkLegacyContext,
  checkRootEntry,
  checkScalableContext,
  contextEntryAddress,
  contextTablePointer,
  decodeLegacyContext,
  decodeLegacyRootEntry,
  decodeScalableContext,
  decodeScalableRootEntry,
  LEGACY_CONTEXT_WORDS,
  levelsFromAw,
  ROOT_ENTRY_WORDS,
  rootEntryAddress,
  SCALABLE_CONTEXT_WORDS,
  type ScalableContextEntry,
} from './root-context.js';

/** A fetch or check that failed: the fault reason, and whether an entry on the way had FPD set. */
export interface ConfigFault {
  readonly kind: 'fault';
  readonly reason: number;
  readonly fpd: boolean;
}

/** A usable legacy context entry: pass-through, or second-stage translation from `root`. */
export interface LegacyContext {
  readonly kind: 'legacy';
  readonly fpd: boolean;
  readonly did: number;
  readonly passThrough: boolean;
  /** TT = 01: translation requests (ATS) allowed. */
  readonly deviceTlb: boolean;
  /** The second-stage format (AW levels), undefined with pass-through. */
  readonly secondStage: VtdSsFormat | undefined;
  readonly root: number;
}

/** A usable scalable-mode context entry: requests go on to its PASID directory. */
export interface ScalableContext {
  readonly kind: 'scalable';
  readonly fpd: boolean;
  readonly entry: ScalableContextEntry;
}

export type ContextConfig = LegacyContext | ScalableContext | ConfigFault;

/** A usable PASID entry with the formats of the stages it selects. */
export interface PasidConfig {
  readonly kind: 'pasid';
  /** FPD of the context, directory or PASID entry. */
  readonly fpd: boolean;
  readonly did: number;
  readonly entry: PasidEntry;
  readonly pgtt: number;
  readonly firstStage: X86Format | undefined;
  readonly secondStage: VtdSsFormat | undefined;
}

export type PasidLookup = PasidConfig | ConfigFault;

/** The DID a cached entry is tagged with (invalid entries DID 0; scalable context entries none, -1). */
export const contextDid = (c: ContextConfig): number =>
  c.kind === 'legacy' ? c.did : c.kind === 'scalable' ? -1 : 0;
export const pasidDid = (c: PasidLookup): number => (c.kind === 'pasid' ? c.did : 0);

export interface ConfigFetchContext {
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  readonly features: VtdFeatures;
  readonly caches: VtdCaches<ContextConfig, PasidLookup>;
}

const fault = (reason: number, fpd: boolean): ConfigFault => ({ kind: 'fault', reason, fpd });

export class VtdConfigFetch {
  private readonly words = new Uint32Array(PASID_ENTRY_WORDS);
  private readonly ssFormats = new Map<number, VtdSsFormat>();
  private readonly fsFormats = new Map<number, X86Format>();

  constructor(private readonly ctx: ConfigFetchContext) {}

  /** The context configuration of source ID `sid` (bus 15:8, devfn 7:0) under the root table at `rootTable`. */
  context(sid: number, rootTable: number, scalable: boolean): ContextConfig {
    const cached = this.ctx.caches.context.get(sid);
    if (cached !== undefined) return cached;
    const config = this.fetchContext(sid, rootTable, scalable);
    if (config.kind !== 'fault' || this.ctx.features.cachingMode) this.ctx.caches.context.set(sid, 0, config);
    return config;
  }

  /**
   * The PASID entry that processes a request of `sid` with `pasid` (RID_PASID for a request without one)
   * through the scalable-mode context `context`.
   */
  pasid(sid: number, pasid: number, context: ScalableContext): PasidLookup {
    const cached = this.ctx.caches.pasid.get(sid, pasid);
    if (cached !== undefined) return cached;
    const config = this.fetchPasid(pasid, context);
    if (config.kind !== 'fault' || this.ctx.features.cachingMode)
      this.ctx.caches.pasid.set(sid, pasid, config);
    return config;
  }

  /**
   * The context configuration as memory holds it now, through the same checks, bypassing and leaving the
   * caches alone: what a VMM reads when the guest tells it an entry changed.
   */
  fetchContext(sid: number, rootTable: number, scalable: boolean): ContextConfig {
    const { features } = this.ctx;
    const bus = (sid >>> 8) & 0xff;
    const devfn = sid & 0xff;
    const words = this.words;
    if (!this.read(rootEntryAddress(rootTable, bus), ROOT_ENTRY_WORDS))
      // Stryker disable next-line BooleanLiteral: root-table read errors are unqualified (§7.1.2): FPD cannot suppress them
      return fault(scalable ? FR.SM_ROOT_ACCESS : FR.ROOT_TABLE_ACCESS, false);
    const rootFault = checkRootEntry(words, devfn, scalable, features);
    // Stryker disable next-line BooleanLiteral: root-entry faults are unqualified (§7.1.2): FPD cannot suppress them
    if (rootFault !== 0) return fault(rootFault, false);
    const root = scalable ? decodeScalableRootEntry(words) : decodeLegacyRootEntry(words);
    const at = contextEntryAddress(contextTablePointer(root, devfn), devfn, scalable);
    if (!this.read(at, scalable ? SCALABLE_CONTEXT_WORDS : LEGACY_CONTEXT_WORDS))
      // Stryker disable next-line BooleanLiteral: context-table read errors are unqualified (§7.1.2): FPD cannot suppress them
      return fault(scalable ? FR.SM_CONTEXT_ACCESS : FR.CONTEXT_TABLE_ACCESS, false);
    // FPD counts once the entry is present: it governs the faults of the entry itself too.
    const fpd = (words[0]! & 3) === 3;
    if (scalable) {
      const contextFault = checkScalableContext(words, features);
      if (contextFault !== 0) return fault(contextFault, fpd);
      return { kind: 'scalable', fpd, entry: decodeScalableContext(words) };
    }
    const contextFault = checkLegacyContext(words, features);
    if (contextFault !== 0) return fault(contextFault, fpd);
    const e = decodeLegacyContext(words);
    const passThrough = e.tt === CONTEXT_TT.PASS_THROUGH;
    return {
      kind: 'legacy',
      fpd,
      did: e.did,
      passThrough,
      deviceTlb: e.tt === CONTEXT_TT.DEVICE_TLB,
      secondStage: passThrough ? undefined : this.secondStage(levelsFromAw(e.aw), false),
      root: e.slptptr,
    };
  }

  /** The PASID entry as memory holds it now (see {@link fetchContext}). */
  fetchPasid(pasid: number, context: ScalableContext): PasidLookup {
    const { features } = this.ctx;
    const words = this.words;
    let fpd = context.fpd;
    if (!this.read(pasidDirEntryAddress(context.entry.pasidDirPtr, pasid), PASID_DIR_ENTRY_WORDS))
      return fault(FR.SM_PASID_DIR_ACCESS, fpd);
    if ((words[0]! & 3) === 3) fpd = true;
    const dirFault = checkPasidDirEntry(words, features);
    if (dirFault !== 0) return fault(dirFault, fpd);
    const table = decodePasidDirEntry(words).pasidTablePtr;
    if (!this.read(pasidEntryAddress(table, pasid), PASID_ENTRY_WORDS)) return fault(FR.SM_PASID_ACCESS, fpd);
    if ((words[0]! & 3) === 3) fpd = true;
    // The request-dependent checks (SRE, ERE) run per request on the cached entry (checkPasidRequest).
    const entryFault = checkPasidEntry(words, features, NO_REQUEST);
    if (entryFault !== 0) return fault(entryFault, fpd);
    const entry = decodePasidEntry(words);
    const pgtt = entry.pgtt;
    const first = pgtt === PGTT.FIRST_STAGE || pgtt === PGTT.NESTED;
    const second = pgtt === PGTT.SECOND_STAGE || pgtt === PGTT.NESTED;
    return {
      kind: 'pasid',
      fpd,
      did: entry.did,
      entry,
      pgtt,
      firstStage: first ? this.firstStage(entry) : undefined,
      secondStage: second ? this.secondStage(levelsFromAw(entry.aw), entry.ssade) : undefined,
    };
  }

  /** Reads `count` words at `address` into the scratch words; false when the read aborts. */
  private read(address: number, count: number): boolean {
    return this.ctx.bus.readWords(address, this.words, count, this.ctx.counter);
  }

  private secondStage(levels: number, accessedDirty: boolean): VtdSsFormat {
    const key = levels * 2 + (accessedDirty ? 1 : 0);
    let format = this.ssFormats.get(key);
    if (format === undefined) {
      const f = this.ctx.features;
      format = vtdSsFormat({
        levels: levels as 3 | 4 | 5,
        oas: f.hostAddressBits,
        sllps: (f.secondStage2MiB ? 1 : 0) | (f.secondStage1GiB ? 2 : 0),
        accessedDirty,
      });
      this.ssFormats.set(key, format);
    }
    return format;
  }

  private firstStage(e: PasidEntry): X86Format {
    const levels = firstStageLevels(e.flpm) as 4 | 5;
    // Stryker disable next-line ArithmeticOperator: each variant still gives the 8 encodings (4 or 5 levels, two flags) 8 keys
    const key = levels * 4 + (e.wpe ? 2 : 0) + (e.eafe ? 1 : 0);
    let format = this.fsFormats.get(key);
    if (format === undefined) {
      const f = this.ctx.features;
      format = x86Format({
        levels,
        oas: f.hostAddressBits,
        gigaPages: f.firstStage1GiB,
        supervisorWriteProtect: e.wpe,
        extendedAccessed: e.eafe,
      });
      this.fsFormats.set(key, format);
    }
    return format;
  }
}

/** The request part of checkPasidEntry is applied per request, not when the entry is cached. */
const NO_REQUEST = { privileged: false, execute: false } as const;

/** The PASID a request without PASID is processed with in scalable mode (§9.4 RID_PASID). */
export function effectivePasid(requestPasid: number, context: ScalableContext): number {
  return requestPasid === NO_PASID ? context.entry.ridPasid : requestPasid;
}
