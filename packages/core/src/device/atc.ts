/**
 * An endpoint's Address Translation Cache (PCIe ATS). It holds translations the IOMMU returned to ATS
 * translation requests, one entry per PASID and 4 KiB page, with least-recently-used replacement at a
 * fixed capacity. Only ATS invalidation requests (or disabling ATS) empty it: a missing ATC invalidation
 * leaves a stale translation the device will use, exactly the bug real hardware shows.
 */
import { LruCache } from '../cache/lru-cache.js';

export interface AtcEntry {
  readonly pasid: number;
  readonly iovaPfn: number;
  readonly pfn: number;
  readonly perm: number;
  /** log2 of the size of the translation the IOMMU returned (the ATC still caches it per 4 KiB page). */
  readonly pageShift: number;
}

const U64_LIMIT = 1n << 64n;

export class AddressTranslationCache {
  private readonly cache: LruCache<string, AtcEntry>;
  invalidations = 0;

  constructor(capacity: number) {
    this.cache = new LruCache(capacity);
  }

  get size(): number {
    return this.cache.size;
  }

  get hits(): number {
    return this.cache.hits;
  }

  get misses(): number {
    return this.cache.misses;
  }

  lookup(pasid: number, iovaPfn: number): AtcEntry | undefined {
    return this.cache.get(`${pasid}:${iovaPfn}`);
  }

  insert(entry: AtcEntry): void {
    this.cache.set(`${entry.pasid}:${entry.iovaPfn}`, entry);
  }

  /**
   * ATS invalidation of `[iova, iova + size)`; `pasid` undefined hits every PASID. A size of 2^64 or more
   * is the whole address space. Returns the entries dropped.
   */
  invalidate(pasid: number | undefined, iova: bigint, size: bigint): number {
    this.invalidations++;
    const firstPfn = Number(iova >> 12n);
    const lastPfn = size >= U64_LIMIT ? Number.POSITIVE_INFINITY : Number((iova + size - 1n) >> 12n);
    return this.cache.deleteWhere(
      (e) => (pasid === undefined || e.pasid === pasid) && e.iovaPfn >= firstPfn && e.iovaPfn <= lastPfn,
    );
  }

  clear(): void {
    this.cache.clear();
  }
}
