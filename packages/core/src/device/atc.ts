/**
 * An endpoint's Address Translation Cache (PCIe ATS). It holds translations the IOMMU returned to ATS
 * translation requests, one entry per PASID, privilege level and 4 KiB page, with least-recently-used
 * replacement at a fixed capacity. Only ATS invalidation requests (or disabling ATS) empty it: a missing ATC
 * invalidation leaves a stale translation the device will use, exactly the bug real hardware shows.
 *
 * A Translation Request carries Privileged Mode Requested and Execute Requested (PASID TLP prefix), and the
 * completion's R/W/Exe are the permissions of that privilege level only: the ATC must not assume any
 * correlation between the privileged and unprivileged permissions of a page (PCIe ATS, as IHI 0070 §13.7
 * quotes it), so an entry answers accesses of the privilege level it was obtained for, and a fetch only
 * when it grants Exe.
 */
import { LruCache } from '../cache/lru-cache.js';
import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '../iommu/translation.js';

export interface AtcEntry {
  readonly pasid: number;
  readonly iovaPfn: number;
  /** The completion's Priv: the privilege level whose permissions `perm` are. */
  readonly privileged: boolean;
  readonly pfn: number;
  /** PERM_READ/WRITE/EXEC the completion grants at that privilege level. */
  readonly perm: number;
  /** log2 of the size of the translation the IOMMU returned (the ATC still caches it per 4 KiB page). */
  readonly pageShift: number;
}

const RWX = PERM_READ | PERM_WRITE | PERM_EXEC;

/** Whether `perm` (a completion's R/W/Exe) covers the R/W/Exe bits of `access`. */
export function atcGrants(perm: number, access: number): boolean {
  const need = access & RWX;
  return (perm & need) === need;
}

function key(pasid: number, iovaPfn: number, privileged: boolean): string {
  // Stryker disable next-line StringLiteral: any two different privilege marks keep the keys apart
  return `${pasid}:${privileged ? 'p' : 'u'}:${iovaPfn}`;
}

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

  /**
   * The entry that can carry `access` (PERM_* bits; PERM_PRIV for a privileged one): obtained at the
   * access's privilege level and granting every R/W/Exe bit it needs (by default an unprivileged data
   * read). Anything else is a miss.
   */
  lookup(pasid: number, iovaPfn: number, access = PERM_READ): AtcEntry | undefined {
    const k = key(pasid, iovaPfn, (access & PERM_PRIV) !== 0);
    const entry = this.cache.peek(k);
    if (entry && atcGrants(entry.perm, access)) return this.cache.get(k);
    this.cache.misses++;
    return undefined;
  }

  /** Caches a completion, replacing what the same PASID and privilege level had for the page. */
  insert(entry: AtcEntry): void {
    this.cache.set(key(entry.pasid, entry.iovaPfn, entry.privileged), entry);
  }

  /**
   * ATS invalidation of `[iova, iova + size)`; `pasid` undefined hits every PASID. A size of 2^64 or more
   * is the whole address space. Entries of both privilege levels go. Returns the entries dropped.
   */
  invalidate(pasid: number | undefined, iova: bigint, size: bigint): number {
    this.invalidations++;
    const firstPfn = Number(iova >> 12n);
    // A size of 2^64 or more ends at or past page 2^52 − 1, the last one.
    const lastPfn = Number((iova + size - 1n) >> 12n);
    return this.cache.deleteWhere(
      (e) => (pasid === undefined || e.pasid === pasid) && e.iovaPfn >= firstPfn && e.iovaPfn <= lastPfn,
    );
  }

  clear(): void {
    this.cache.clear();
  }
}
