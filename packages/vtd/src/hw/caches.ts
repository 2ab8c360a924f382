/**
 * The caches of a VT-d remapping unit (VT-d specification §6.2 "Translation Caches"), each on the shared
 * primitives so capacity, replacement and a forgotten invalidation behave as on hardware:
 * - the **context cache** (§6.2.2): context entries by source ID (bus:devfn), with the DID they carry;
 * - the **PASID cache** (§6.2.3, scalable mode): PASID-table entries by source ID and PASID, with the DID
 *   of the entry (the tag PASID-cache invalidations select by);
 * - the **IOTLB** (§6.2.4): leaf translations tagged by the kind of translation (first stage, second stage,
 *   nested), DID, PASID (or global: first-stage leaves with G = 1, and every legacy-mode translation, which
 *   carries no PASID) and page size;
 * - the **paging-structure caches** (§6.2.5): the first-stage (tagged DID and PASID) and second-stage
 *   (tagged DID) table entries a walk followed, so a walk resumes at the deepest table it knows.
 *
 * With caching mode (CAP.CM = 1, §6.1) the unit may also cache not-present and erroneous root, context
 * and PASID entries and second-stage entries: this model does, so software that changes one without the
 * invalidation keeps seeing the fault — what a VMM that shadows guest tables relies on. Context and PASID
 * entries without a DID of their own are tagged DID 0, which software reserves for it; a not-present
 * second-stage leaf is an IOTLB entry of its domain (the DID Linux's caching-mode map flush names).
 * First-stage entries are never cached not-present.
 *
 * Which invalidation reaches which cache (§6.5): the context-cache invalidation (CCMD or descriptor 0x1)
 * the context cache; the PASID-cache invalidation (descriptor 0x7) the PASID cache; the PASID-based IOTLB
 * invalidation (descriptor 0x6) the first-stage and nested translations and first-stage paging-structure
 * entries of a (DID, PASID); the IOTLB invalidation (IOTLB register or descriptor 0x2, §6.5.2.3 Table 23)
 * every translation of a DID and its paging-structure entries (global: everything):
 * - domain-selective: every translation and paging-structure entry of the DID, whatever produced it;
 * - page-selective: the second-stage translations and (unless IH) second-stage paging-structure entries
 *   over the range, and every first-stage and nested translation and first-stage paging-structure entry of
 *   the DID whatever its address — their tag is a first-stage input address, which a second-stage address
 *   cannot select, and nested first-stage tables are addresses the second stage produced. A host that
 *   changes a nest parent reaches its nested translations with its own DID-based invalidation of each
 *   nested DID (what Linux's nest-parent flush sends).
 */
import {
  ANY_SPACE,
  type CacheGeometry,
  EntryCache,
  GLOBAL_SPACE,
  type IotlbEntry,
  newIotlbEntry,
  type SlotEntry,
  TaggedTlb,
} from '@iommukit/core';
import { TableWalkCache } from '@iommukit/pagetables';

/** IOTLB kinds: what produced a leaf (the tag invalidations select by, one bit each in a kinds mask). */
export const IOTLB_FIRST = 0;
export const IOTLB_SECOND = 1;
export const IOTLB_NESTED = 2;
export const KINDS_FIRST = 1 << IOTLB_FIRST;
export const KINDS_SECOND = 1 << IOTLB_SECOND;
export const KINDS_NESTED = 1 << IOTLB_NESTED;
export const KINDS_ALL = KINDS_FIRST | KINDS_SECOND | KINDS_NESTED;

/** Function-number bits a context-cache FM value ignores. */
const FM_MASKED_BITS = [0b000, 0b100, 0b110, 0b111] as const;

/** Whether a device-selective context-cache invalidation of `target` with FM `fm` names source `sid` (§6.5.2.1). */
export function contextSidMatches(sid: number, target: number, fm: number): boolean {
  return ((sid ^ target) & ~FM_MASKED_BITS[fm & 3]!) === 0;
}

/** An IOTLB entry's PASID for a translation that every PASID of its domain shares (legacy, or G = 1). */
export const NO_PASID_TAG = GLOBAL_SPACE;

export interface VtdCacheGeometry {
  readonly iotlb: CacheGeometry;
  readonly context: CacheGeometry;
  readonly pasid: CacheGeometry;
  /** Both paging-structure caches; undefined when the unit has none. */
  readonly pagingStructure: CacheGeometry | undefined;
}

export class VtdCaches<Context, PasidEntry> {
  readonly context: EntryCache<Context>;
  readonly pasid: EntryCache<PasidEntry>;
  readonly iotlb: TaggedTlb<IotlbEntry>;
  /** First-stage tables (kind IOTLB_FIRST or IOTLB_NESTED, DID, PASID) and second-stage ones (DID). */
  readonly firstStageTables: TableWalkCache | undefined;
  readonly secondStageTables: TableWalkCache | undefined;

  constructor(
    geometry: VtdCacheGeometry,
    private readonly didOf: { context(entry: Context): number; pasid(entry: PasidEntry): number },
  ) {
    this.context = new EntryCache('vtd context cache', geometry.context);
    this.pasid = new EntryCache('vtd PASID cache', geometry.pasid);
    this.iotlb = new TaggedTlb<IotlbEntry>(geometry.iotlb, 'vtd IOTLB', newIotlbEntry);
    const psc = geometry.pagingStructure;
    this.firstStageTables = psc && new TableWalkCache(psc, 'vtd first-stage paging-structure cache');
    // Stryker disable next-line StringLiteral: the name is only in geometry errors, which the first-stage cache, built first from the same geometry, reports
    this.secondStageTables = psc && new TableWalkCache(psc, 'vtd second-stage paging-structure cache');
  }

  /** Caches a leaf and returns its entry for the caller to fill. */
  cacheLeaf(
    kind: number,
    did: number,
    pasid: number,
    input: number,
    pageShift: number,
  ): SlotEntry<IotlbEntry> {
    return this.iotlb.fill(kind, did, pasid, input, pageShift);
  }

  // --- context cache (§6.5.1.1, §6.5.2.1) ---

  /** Global context-cache invalidation; returns how many entries were dropped. */
  invalidateContextGlobal(): number {
    return this.context.clear();
  }

  /**
   * Domain-selective: every context entry tagged `did`. A scalable-mode context entry carries no DID (its
   * PASID entries do): `didOf` reports it as -1, and every domain- or device-selective invalidation of its
   * source ID reaches it.
   */
  invalidateContextDomain(did: number): number {
    return this.context.deleteWhere((_sid, _zero, entry) => this.contextTagged(entry, did));
  }

  /**
   * Device-selective: the entries of source ID `sid` tagged `did` (any DID when undefined: scalable mode,
   * where the descriptor's DID is ignored), with the function mask `fm` (§6.5.1.1 FM, as QEMU reads it:
   * 1, 2 or 3 ignore function bits 2, 2:1 or 2:0 — the high function bits phantom functions use).
   */
  invalidateContextDevice(did: number | undefined, sid: number, fm: number): number {
    return this.context.deleteWhere(
      (source, _zero, entry) =>
        contextSidMatches(source, sid, fm) && (did === undefined || this.contextTagged(entry, did)),
    );
  }

  private contextTagged(entry: Context, did: number): boolean {
    const tag = this.didOf.context(entry);
    return tag === did || tag < 0;
  }

  // --- PASID cache (§6.5.2.3) ---

  /** Every PASID-cache entry (global). */
  invalidatePasidGlobal(): number {
    return this.pasid.clear();
  }

  /** Every PASID-cache entry tagged `did`, or only those of `pasid` when given. */
  invalidatePasidDomain(did: number, pasid?: number): number {
    return this.pasid.deleteWhere(
      (_sid, entryPasid, entry) =>
        this.didOf.pasid(entry) === did && (pasid === undefined || entryPasid === pasid),
    );
  }

  // --- IOTLB and paging-structure caches (§6.5.1.2, §6.5.2.4, §6.5.2.5) ---

  /** Global IOTLB invalidation: every translation and every paging-structure entry. */
  invalidateIotlbGlobal(): number {
    this.firstStageTables?.entries.clear();
    this.secondStageTables?.entries.clear();
    return this.iotlb.clear();
  }

  /** Domain-selective IOTLB invalidation: every translation and paging-structure entry of `did`. */
  invalidateIotlbDomain(did: number): number {
    this.secondStageTables?.entries.invalidateDomain(KINDS_ALL, did);
    this.firstStageTables?.entries.invalidateDomain(KINDS_ALL, did);
    return this.iotlb.invalidateDomain(KINDS_ALL, did);
  }

  /**
   * Page-selective IOTLB invalidation of [start, start + size), a second-stage address range: the
   * second-stage translations of `did` over it and its second-stage paging-structure entries unless
   * `leafOnly` (IH = 1: software says only leaves changed, §6.5.1.2); the first-stage and nested
   * translations and first-stage paging-structure entries of `did` whatever their address.
   */
  invalidateIotlbPages(did: number, start: number, size: number, leafOnly: boolean): number {
    if (!leafOnly) this.secondStageTables?.entries.invalidateRange(KINDS_ALL, did, ANY_SPACE, start, size);
    this.firstStageTables?.entries.invalidateDomain(KINDS_ALL, did);
    return (
      this.iotlb.invalidateRange(KINDS_SECOND, did, ANY_SPACE, start, size) +
      this.iotlb.invalidateDomain(KINDS_FIRST | KINDS_NESTED, did)
    );
  }

  /** PASID-based IOTLB invalidation, all non-global first-stage and nested translations of (did, pasid). */
  invalidatePasidIotlb(did: number, pasid: number): number {
    this.firstStageTables?.entries.invalidateSpace(KINDS_FIRST | KINDS_NESTED, did, pasid);
    return this.iotlb.invalidateSpace(KINDS_FIRST | KINDS_NESTED, did, pasid);
  }

  /**
   * PASID-based page-selective IOTLB invalidation of [start, start + size) for (did, pasid), global
   * first-stage leaves included; paging-structure entries too unless `leafOnly` (IH = 1).
   */
  invalidatePasidIotlbPages(
    did: number,
    pasid: number,
    start: number,
    size: number,
    leafOnly: boolean,
  ): number {
    const kinds = KINDS_FIRST | KINDS_NESTED;
    if (!leafOnly) this.firstStageTables?.entries.invalidateRange(kinds, did, pasid, start, size);
    return this.iotlb.invalidateRange(kinds, did, pasid, start, size);
  }

  /** Hit and miss counters of every cache, for the unit's stats(). */
  stats(): Record<string, number> {
    return {
      contextCacheHits: this.context.hits,
      contextCacheMisses: this.context.misses,
      pasidCacheHits: this.pasid.hits,
      pasidCacheMisses: this.pasid.misses,
      iotlbHits: this.iotlb.hits,
      iotlbMisses: this.iotlb.misses,
      iotlbEvictions: this.iotlb.evictions,
      firstStagePscHits: this.firstStageTables?.entries.hits ?? 0,
      firstStagePscMisses: this.firstStageTables?.entries.misses ?? 0,
      secondStagePscHits: this.secondStageTables?.entries.hits ?? 0,
      secondStagePscMisses: this.secondStageTables?.entries.misses ?? 0,
    };
  }
}
