/**
 * The SMMUv3 TLB (SMMUv3 §3.17, §4.4): translations cached with the tags the invalidation commands
 * address — VMID, ASID (or global, for nG = 0 stage-1 leaves), the kind of translation (stage 1 only,
 * stage 2 only, or a combined stage 1 + 2 entry), the input range the leaf covers (its page or block size)
 * and the level it came from. It is core's {@link TaggedTlb} (the cache every vendor's TLB and walk caches
 * share): an entry lives in the set its page number selects, so a capacity or conflict miss evicts as real
 * hardware does, a missing invalidation leaves a stale entry the model keeps using, and an invalidation by
 * address visits only the sets that address selects.
 *
 * An entry holds each stage's permissions for both privilege levels (grants.ts), not the verdict
 * on the access that cached it: a hit checks every access's PnU, InD and RnW against them (§13.4), and a
 * combined entry keeps the IPA so a stage-2 refusal on a hit is reported as the walk reports it.
 *
 * Combined (nested) entries are tagged with the stage-1 ASID and the VMID, so TLBI_NH_* removes them; a
 * TLBI_S2_IPA does not (the IPA they came through is not tagged), which is why Linux follows a stage-2
 * change of a nest parent with TLBI_NH_ALL — the model makes that requirement observable.
 *
 * The walk caches (`@iommukit/pagetables` TableWalkCache, one for stage 1 and one for stage 2; §3.21.1:
 * intermediate table data is invalidated by TLB maintenance as on a PE) carry the same tags, selected by
 * {@link TLB_KIND_CODE}, so the same invalidations reach them:
 * - stage 1 (`s1`, or `s12` for a nested stream, whose tables are IPAs): VMID and ASID — TLBI_NH_ALL,
 *   TLBI_NH_ASID, TLBI_NH_VA and TLBI_NH_VAA with Leaf = 0, TLBI_S12_VMALL, TLBI_NSNH_ALL;
 * - stage 2 (`s2`): VMID — TLBI_S2_IPA with Leaf = 0, TLBI_S12_VMALL, TLBI_NSNH_ALL.
 * A Leaf = 1 TLBI leaves them (§4.4.2: Leaf = 1 need only invalidate last-level entries), and no CFGI_*
 * touches them (§4.3), so a driver that changes a table descriptor and forgets the right TLBI keeps walking
 * the old table, as it would on hardware.
 */
import { ANY_SPACE, GLOBAL_SPACE, type SlotEntry, TaggedTlb } from '@iommukit/core';
import { pow2 } from '@iommukit/pagetables';

export type TlbKind = 's1' | 's2' | 's12';

/** `asid` of an entry that matches every ASID of its VMID (a stage-1 leaf with nG = 0, or any stage-2 entry). */
export const GLOBAL_ASID = GLOBAL_SPACE;
/** An invalidation's ASID that matches every entry, global or not (TLBI_NH_VAA, TLBI_S2_IPA). */
export const ANY_ASID = ANY_SPACE;

/** The number each kind is tagged with (the shared TLB's kind), also what walk caches are selected by. */
export const TLB_KIND_CODE: Readonly<Record<TlbKind, number>> = { s1: 0, s2: 1, s12: 2 };

/** Sets of kinds an invalidation removes: bit `TLB_KIND_CODE[kind]` per {@link TlbKind}. */
export const TLB_S1 = 1 << TLB_KIND_CODE.s1;
export const TLB_S2 = 1 << TLB_KIND_CODE.s2;
export const TLB_S12 = 1 << TLB_KIND_CODE.s12;
/** The kinds stage-1 (non-hypervisor) invalidations reach: TLBI_NH_* (§4.4.2). */
export const TLB_NH = TLB_S1 | TLB_S12;
export const TLB_ALL_KINDS = TLB_S1 | TLB_S2 | TLB_S12;

/** The tags of a cached entry: what lookups and invalidations match (the walk caches share them). */
export interface TlbTags {
  readonly kind: TlbKind;
  readonly vmid: number;
  readonly asid: number;
  /** First input address the entry covers (aligned to its size). */
  readonly inputBase: number;
  /** log2 of the entry's size. */
  readonly pageShift: number;
}

export interface TlbEntry extends TlbTags {
  /** Lookup level of the leaf (TLBI's TTL hint and LEAF filter use it). */
  readonly level: number;
  /** Output address of `inputBase`. */
  readonly outputBase: number;
  /** The IPA of `inputBase`: the stage-1 output for a combined entry, the input itself for a stage-2 entry. */
  readonly ipaBase: number;
  /** Stage 1 permissions (`stageGrants`); `ALL_GRANTS` for a stage-2 entry. */
  readonly s1Grants: number;
  /** Stage 2 permissions; `ALL_GRANTS` for a stage-1 entry. */
  readonly s2Grants: number;
  /** The leaf was dirty (or not writable-clean) when cached: a write through it needs no walk. */
  readonly dirty: boolean;
}

/** A TLB entry before its slot is filled: every fill writes each field, so the values only give it a shape. */
// Stryker disable ObjectLiteral,StringLiteral,BooleanLiteral: see above
export const emptyTlbEntry = (): TlbEntry => ({
  kind: 's1',
  vmid: 0,
  asid: 0,
  inputBase: 0,
  pageShift: 0,
  level: 0,
  outputBase: 0,
  ipaBase: 0,
  s1Grants: 0,
  s2Grants: 0,
  dirty: false,
});
// Stryker restore ObjectLiteral,StringLiteral,BooleanLiteral

/**
 * The TLB ({@link TaggedTlb} in SMMUv3's terms: the kind is stage 1, stage 2 or nested, the domain the
 * VMID, the space the ASID), or with another entry type a walk cache tagged the same way. Each slot owns one
 * entry object rewritten by every fill, so a miss allocates nothing; a lookup returns the slot's object,
 * valid until the slot is filled again.
 */
export class Smmuv3Tlb<E extends TlbTags = TlbEntry> extends TaggedTlb<E> {
  /** The entry translating `address` for (kind, VMID, ASID): the ASID's own entries first, then global ones. */
  lookup(kind: TlbKind, vmid: number, asid: number, address: number): E | undefined {
    return this.find(TLB_KIND_CODE[kind], vmid, asid, address);
  }

  /**
   * Caches an entry for the leaf of `pageShift` covering `address` (replacing one with the same tags, else a
   * free way, else the set's victim) and returns the slot's entry with its tags written; the caller writes
   * the rest.
   */
  insert(kind: TlbKind, vmid: number, asid: number, address: number, pageShift: number): SlotEntry<E> {
    const entry = this.fill(TLB_KIND_CODE[kind], vmid, asid, address, pageShift);
    entry.kind = kind;
    entry.vmid = vmid;
    entry.asid = asid;
    entry.inputBase = Math.floor(address / pow2(pageShift)) * pow2(pageShift);
    entry.pageShift = pageShift;
    return entry;
  }
}
