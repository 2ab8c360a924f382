/**
 * SMMUv3 walk caches (IHI 0070 §3.21.1: intermediate table data an SMMU caches is invalidated by TLB
 * maintenance as on a PE): one for stage 1 and one for stage 2, each holding, for an input range, the
 * address of the next-level table a walk reached and the table limits gathered on the way. A walk that hits
 * starts at that table instead of the root, which is what makes a nested miss on a neighbouring page cheap:
 * the stage-1 walk skips to its last level, and every stage-2 walk of a table or output IPA does too.
 *
 * The entries carry the TLB's tags ({@link TlbTags}), so the same invalidations reach them:
 * - stage 1 (`s1`, or `s12` for a nested stream, whose tables are IPAs): VMID and ASID — TLBI_NH_ALL,
 *   TLBI_NH_ASID, TLBI_NH_VA and TLBI_NH_VAA with Leaf = 0, TLBI_S12_VMALL, TLBI_NSNH_ALL;
 * - stage 2 (`s2`): VMID — TLBI_S2_IPA with Leaf = 0, TLBI_S12_VMALL, TLBI_NSNH_ALL.
 * A Leaf = 1 TLBI leaves them (§4.4.2: Leaf = 1 need only invalidate last-level entries), and no CFGI_* touches
 * them (§4.3: configuration invalidation need not affect TLB contents), so a driver that changes a table
 * descriptor and forgets the right TLBI keeps walking the old table, as it would on hardware.
 */
import type { CacheGeometry } from '@iommukit/core';
import type { WalkTableCache } from '@iommukit/pagetables';
import { Smmuv3Tlb, type TlbKind, type TlbTags } from './tlb.js';

/** A cached table: the input range one table descriptor covers, and where its table is. */
export interface WalkCacheEntry extends TlbTags {
  /** The level of the table's descriptors (where a walk that hits resumes). */
  readonly level: number;
  /** The table's address: a PA, or an IPA for a nested stream's stage-1 tables. */
  readonly table: number;
  /** Table limits (APTable, XNTable, PXNTable) accumulated down to this table. */
  readonly limits: number;
}

export class Smmuv3WalkCache implements WalkTableCache {
  readonly entries: Smmuv3Tlb<WalkCacheEntry>;
  table = 0;
  limits = 0;
  // Stryker disable next-line StringLiteral: every walk calls select() before find() or fill()
  private kind: TlbKind = 's1';
  private vmid = 0;
  private asid = 0;

  constructor(geometry: CacheGeometry, name: string) {
    // A slot's entry is written whole by its first fill: these values only give the objects one shape.
    // Stryker disable ObjectLiteral,StringLiteral: see above
    this.entries = new Smmuv3Tlb<WalkCacheEntry>(geometry, name, () => ({
      kind: 's1',
      vmid: 0,
      asid: 0,
      inputBase: 0,
      pageShift: 0,
      level: 0,
      table: 0,
      limits: 0,
    }));
    // Stryker restore ObjectLiteral,StringLiteral
  }

  /** Makes the next walk's lookups and fills use one translation context; returns the cache for the walk. */
  select(kind: TlbKind, vmid: number, asid: number): this {
    this.kind = kind;
    this.vmid = vmid;
    this.asid = asid;
    return this;
  }

  find(iova: number): number {
    const entry = this.entries.lookup(this.kind, this.vmid, this.asid, iova);
    if (entry === undefined) return -1;
    this.table = entry.table;
    this.limits = entry.limits;
    return entry.level;
  }

  fill(level: number, shift: number, iova: number, table: number, limits: number): void {
    const entry = this.entries.insert(this.kind, this.vmid, this.asid, iova, shift);
    entry.level = level;
    entry.table = table;
    entry.limits = limits;
  }
}
