/**
 * The translation caches of an AMD IOMMU (AMD IOMMU spec pub. 48882 §2.2.2 device table, §2.2.3 I/O page
 * tables, §2.4.2–§2.4.3 and §2.4.8 the invalidation commands), each on core's shared primitives so capacity,
 * replacement and a forgotten invalidation behave as on hardware:
 * - the **DTE cache**: device table entries by DeviceID;
 * - the **GCR3 cache**: guest CR3 values by (DeviceID, PASID), tagged with the DTE's DomainID;
 * - the **IOTLB**: leaf translations tagged by kind (host v1 only, guest v2 only, guest over host), the DTE's
 *   DomainID, the PASID (none for a host translation) and the page size;
 * - the **page directory caches**: the host (DomainID) and guest (DomainID, PASID) table entries a walk
 *   followed, so a walk resumes at the deepest table it knows.
 *
 * Which command reaches which cache:
 * - INVALIDATE_DEVTAB_ENTRY: the DTE of its DeviceID and the GCR3 entries read through it (their root is
 *   the DTE's);
 * - INVALIDATE_IOMMU_PAGES with GN = 0: the host translations of the DomainID over the range (PASID
 *   ignored), and every guest-over-host translation of the DomainID whatever its address — those are tagged
 *   with guest addresses a host range cannot select, and their table fetches went through the host tables
 *   that changed (how Linux reaches nested domains after a nest-parent change: a GN = 0 flush per host
 *   DomainID), and the domain's GCR3 entries (found through those tables with GCR3TRPMode); with PDE = 1 the host page-directory entries over the range and every guest one of the domain;
 * - INVALIDATE_IOMMU_PAGES with GN = 1: the guest and guest-over-host translations of (DomainID, PASID)
 *   over the range, and that PASID's GCR3 entry (Linux flushes a PASID this way after writing its GCR3
 *   entry); with PDE = 1 the guest page-directory entries over the range;
 * - INVALIDATE_IOMMU_ALL: everything.
 * A cache may hold more than the spec obliges it to drop; the model drops exactly the above.
 *
 * With NpCache (PCI capability bit 26) the unit caches a not-present leaf as an IOTLB entry that keeps
 * faulting until invalidated; software must then invalidate after making a page present (Linux's
 * `domain_flush_np_cache`), which is what a VMM shadowing a guest's tables relies on.
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

/** IOTLB kinds: what produced a leaf, one bit each in a kinds mask. */
export const IOTLB_HOST = 0;
export const IOTLB_GUEST = 1;
export const IOTLB_NESTED = 2;
export const KINDS_HOST = 1 << IOTLB_HOST;
export const KINDS_GUEST = 1 << IOTLB_GUEST;
export const KINDS_NESTED = 1 << IOTLB_NESTED;
export const KINDS_ALL = KINDS_HOST | KINDS_GUEST | KINDS_NESTED;

/** The IOTLB space of a host translation: it carries no PASID. */
export const HOST_SPACE = GLOBAL_SPACE;

/** A cached GCR3 entry: the guest page-table root of one (device, PASID), and the domain it was read for. */
export interface Gcr3CacheEntry {
  readonly domainId: number;
  /** Guest CR3: the root of the PASID's guest tables (a GPA when the DTE also translates on the host). */
  readonly guestCr3: number;
}

export interface AmdCacheGeometry {
  readonly deviceTable: CacheGeometry;
  readonly gcr3: CacheGeometry;
  readonly iotlb: CacheGeometry;
  /** Both page directory caches; undefined when the unit has none. */
  readonly pageDirectory: CacheGeometry | undefined;
}

export class AmdCaches<Dte> {
  readonly deviceTable: EntryCache<Dte>;
  readonly gcr3: EntryCache<Gcr3CacheEntry>;
  readonly iotlb: TaggedTlb<IotlbEntry>;
  /** Host tables (kind IOTLB_HOST, DomainID) and guest tables (IOTLB_GUEST or IOTLB_NESTED, DomainID, PASID). */
  readonly hostTables: TableWalkCache | undefined;
  readonly guestTables: TableWalkCache | undefined;

  constructor(geometry: AmdCacheGeometry) {
    this.deviceTable = new EntryCache('amd DTE cache', geometry.deviceTable);
    this.gcr3 = new EntryCache('amd GCR3 cache', geometry.gcr3);
    this.iotlb = new TaggedTlb<IotlbEntry>(geometry.iotlb, 'amd IOTLB', newIotlbEntry);
    const pdc = geometry.pageDirectory;
    this.hostTables = pdc && new TableWalkCache(pdc, 'amd host page directory cache');
    // Stryker disable next-line StringLiteral: the name is only in geometry errors, which the host cache, built first from the same geometry, reports
    this.guestTables = pdc && new TableWalkCache(pdc, 'amd guest page directory cache');
  }

  /** Caches a leaf and returns its entry for the caller to fill. */
  cacheLeaf(
    kind: number,
    domainId: number,
    space: number,
    input: number,
    pageShift: number,
  ): SlotEntry<IotlbEntry> {
    return this.iotlb.fill(kind, domainId, space, input, pageShift);
  }

  /** INVALIDATE_DEVTAB_ENTRY: the device's DTE and the GCR3 entries read through it. */
  invalidateDevice(deviceId: number): number {
    this.gcr3.deleteFirst(deviceId);
    return this.deviceTable.delete(deviceId) ? 1 : 0;
  }

  /**
   * INVALIDATE_IOMMU_PAGES, GN = 0, of [start, start + size) in the host address space: host translations
   * over it, every guest-over-host translation of the domain; page-directory entries too with `pde`.
   */
  invalidateHostPages(domainId: number, start: number, size: number, pde: boolean): number {
    // With GCR3TRPMode the GCR3 levels were found through the host tables that changed.
    this.gcr3.deleteWhere((_device, _pasid, entry) => entry.domainId === domainId);
    if (pde) {
      this.hostTables?.entries.invalidateRange(KINDS_HOST, domainId, ANY_SPACE, start, size);
      this.guestTables?.entries.invalidateDomain(KINDS_NESTED, domainId);
    }
    return (
      this.iotlb.invalidateRange(KINDS_HOST, domainId, ANY_SPACE, start, size) +
      this.iotlb.invalidateDomain(KINDS_NESTED, domainId)
    );
  }

  /**
   * INVALIDATE_IOMMU_PAGES, GN = 1, of [start, start + size) in the guest address space of (domain, PASID):
   * its guest and guest-over-host translations over it, its GCR3 entry; page-directory entries with `pde`.
   */
  invalidateGuestPages(domainId: number, pasid: number, start: number, size: number, pde: boolean): number {
    const kinds = KINDS_GUEST | KINDS_NESTED;
    this.gcr3.deleteWhere(
      (_device, entryPasid, entry) => entryPasid === pasid && entry.domainId === domainId,
    );
    if (pde) this.guestTables?.entries.invalidateRange(kinds, domainId, pasid, start, size);
    return this.iotlb.invalidateRange(kinds, domainId, pasid, start, size);
  }

  /** INVALIDATE_IOMMU_ALL: every cache empty. */
  invalidateAll(): number {
    this.deviceTable.clear();
    this.gcr3.clear();
    this.hostTables?.entries.clear();
    this.guestTables?.entries.clear();
    return this.iotlb.clear();
  }

  /** Hit and miss counters of every cache, for the unit's stats(). */
  stats(): Record<string, number> {
    return {
      dteCacheHits: this.deviceTable.hits,
      dteCacheMisses: this.deviceTable.misses,
      gcr3CacheHits: this.gcr3.hits,
      gcr3CacheMisses: this.gcr3.misses,
      iotlbHits: this.iotlb.hits,
      iotlbMisses: this.iotlb.misses,
      iotlbEvictions: this.iotlb.evictions,
      hostPdcHits: this.hostTables?.entries.hits ?? 0,
      hostPdcMisses: this.hostTables?.entries.misses ?? 0,
      guestPdcHits: this.guestTables?.entries.hits ?? 0,
      guestPdcMisses: this.guestTables?.entries.misses ?? 0,
    };
  }
}
