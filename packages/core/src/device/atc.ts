/**
 * An endpoint's Address Translation Cache (PCIe ATS). It holds translations the IOMMU returned to ATS
 * translation requests, one entry per PASID, privilege level and 4 KiB page, fully associative with
 * least-recently-used replacement at a fixed capacity (one set of the shared cache geometry, tagged by the
 * page number and a number for the PASID and privilege level: a lookup builds no key). Only ATS
 * invalidation requests (or disabling ATS) empty it: a missing ATC invalidation leaves a stale translation
 * the device will use, exactly the bug real hardware shows.
 *
 * A Translation Request carries Privileged Mode Requested and Execute Requested (PASID TLP prefix), and the
 * completion's R/W/Exe are the permissions of that privilege level only: the ATC must not assume any
 * correlation between the privileged and unprivileged permissions of a page (PCIe ATS, as IHI 0070 §13.7
 * quotes it), so an entry answers accesses of the privilege level it was obtained for, and a fetch only
 * when it grants Exe.
 */
import { EntryCache } from '../cache/entry-cache.js';
import { SetAssociativeStats } from '../cache/set-associative-stats.js';
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

/** Whether a cached completion can carry `access` (a module function: a lookup builds no closure). */
const grantsAccess = (entry: AtcEntry, access: number): boolean => atcGrants(entry.perm, access);

/** The tag beside the page number: the PASID (NO_PASID is -1) and the privilege level, as one number. */
function context(pasid: number, privileged: boolean): number {
  return (pasid + 1) * 2 + (privileged ? 1 : 0);
}

export class AddressTranslationCache extends SetAssociativeStats {
  private readonly entries: EntryCache<AtcEntry>;
  invalidations = 0;

  constructor(capacity: number) {
    super();
    this.entries = new EntryCache('ats.atcEntries', { sets: 1, ways: capacity, policy: 'lru' });
  }

  get cache() {
    return this.entries.cache;
  }

  /**
   * The entry that can carry `access` (PERM_* bits; PERM_PRIV for a privileged one): obtained at the
   * access's privilege level and granting every R/W/Exe bit it needs (by default an unprivileged data
   * read). Anything else is a miss.
   */
  lookup(pasid: number, iovaPfn: number, access = PERM_READ): AtcEntry | undefined {
    return this.entries.getIf(iovaPfn, context(pasid, (access & PERM_PRIV) !== 0), grantsAccess, access);
  }

  /** Caches a completion, replacing what the same PASID and privilege level had for the page. */
  insert(entry: AtcEntry): void {
    this.entries.set(entry.iovaPfn, context(entry.pasid, entry.privileged), entry);
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
    return this.entries.deleteWhere(
      (pfn, _context, e) => (pasid === undefined || e.pasid === pasid) && pfn >= firstPfn && pfn <= lastPfn,
    );
  }

  clear(): void {
    this.entries.clear();
  }
}
