/**
 * A walk cache (what Arm calls intermediate table caching, VT-d paging-structure caches, AMD's PDE cache):
 * for an input range, the address of the next-level table a walk reached and the table limits gathered on
 * the way, so a walk that hits starts at that table instead of the root. It is the walker's
 * {@link WalkTableCache} over core's {@link TaggedTlb}, so the vendor's TLB invalidations reach it with
 * the same tags: the vendor calls {@link select} with the walk's kind, domain and space before each walk,
 * and sends its invalidations to {@link entries}. Which invalidations must drop table entries (and which
 * need not, like a leaf-only TLBI) is the vendor's rule, so a forgotten one stays observable.
 */
import { type CacheGeometry, TaggedTlb } from '@iommukit/core';
import { pow2 } from './format.js';
import type { WalkTableCache } from './walk.js';

/** A cached table: the input range one table descriptor covers, and where its table is. */
export interface TableWalkEntry {
  /** The tags it was filled with, for inspection. */
  readonly kind: number;
  readonly domain: number;
  readonly space: number;
  /** First input address of the range (aligned to its size) and log2 of that size. */
  readonly inputBase: number;
  readonly pageShift: number;
  /** The level of the table's descriptors (where a walk that hits resumes). */
  readonly level: number;
  /** The table's address: a PA, or an IPA/GPA for a nested walk's first-stage tables. */
  readonly table: number;
  /** Table limits ({@link PageTableFormat.tableLimits}) accumulated down to this table. */
  readonly limits: number;
}

export class TableWalkCache implements WalkTableCache {
  readonly entries: TaggedTlb<TableWalkEntry>;
  table = 0;
  limits = 0;
  // Every walk calls select() before find() or fill().
  private kind = 0;
  private domain = 0;
  private space = 0;

  constructor(geometry: CacheGeometry, name: string) {
    // A slot's entry is written whole by its first fill: these values only give the objects one shape.
    // Stryker disable next-line ObjectLiteral: see above
    this.entries = new TaggedTlb<TableWalkEntry>(geometry, name, () => ({
      kind: 0,
      domain: 0,
      space: 0,
      inputBase: 0,
      pageShift: 0,
      level: 0,
      table: 0,
      limits: 0,
    }));
  }

  /** Makes the next walk's lookups and fills use one translation context; returns the cache for the walk. */
  select(kind: number, domain: number, space: number): this {
    this.kind = kind;
    this.domain = domain;
    this.space = space;
    return this;
  }

  find(iova: number): number {
    const entry = this.entries.find(this.kind, this.domain, this.space, iova);
    if (entry === undefined) return -1;
    this.table = entry.table;
    this.limits = entry.limits;
    return entry.level;
  }

  fill(level: number, shift: number, iova: number, table: number, limits: number): void {
    const entry = this.entries.fill(this.kind, this.domain, this.space, iova, shift);
    entry.kind = this.kind;
    entry.domain = this.domain;
    entry.space = this.space;
    entry.inputBase = Math.floor(iova / pow2(shift)) * pow2(shift);
    entry.pageShift = shift;
    entry.level = level;
    entry.table = table;
    entry.limits = limits;
  }
}
