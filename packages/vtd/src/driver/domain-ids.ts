/**
 * Domain-ID allocation for one unit (Linux `iommu->domain_ida`, `domain_attach_iommu`): DIDs tag the
 * unit's cache entries, CAP.ND says how many exist (2^(4 + 2·ND), Linux `cap_ndoms`). Linux reserves two:
 * - DID 0: with CAP.CM the unit tags not-present and invalid translations with DID 0, and Linux also uses
 *   0 as "no DID allocated", so it reserves it whatever CM says (iommu.h, the comment on FLPT_DEFAULT_DID);
 * - DID 1, FLPT_DEFAULT_DID: first-stage and pass-through PASID entries must use DIDs distinct from
 *   second-stage and nested ones (spec rev 3.0 §6.2.3.1, as Linux quotes it); Linux gives them DID 1, which
 *   is also the legacy identity domain's.
 * Allocation starts at IDA_START_DID (2) and returns the lowest free DID, as `ida_alloc_range` does;
 * `ENOSPC` when none is left (Linux: "No free domain ids").
 */
import { IommufdError } from '@iommukit/core';

/** The DID of first-stage, pass-through and SVA PASID entries (Linux FLPT_DEFAULT_DID). */
export const FLPT_DEFAULT_DID = 1;
/** The first DID a domain can get (Linux IDA_START_DID). */
export const IDA_START_DID = 2;

/** The domain IDs of CAP.ND (Linux `cap_ndoms`). */
export function domainIdCount(nd: number): number {
  return 2 ** (4 + 2 * nd);
}

export class DomainIds {
  private readonly used: Uint8Array;
  /** No DID below it is free. */
  private lowestFree = IDA_START_DID;
  private count = 0;

  constructor(
    /** DIDs the unit has (CAP.ND). */
    readonly total: number,
    private readonly instance = 'dmar',
  ) {
    this.used = new Uint8Array(total);
  }

  /** DIDs handed out now. */
  get allocated(): number {
    return this.count;
  }

  /** The lowest free DID from IDA_START_DID; `ENOSPC` when every one is taken. */
  alloc(): number {
    // Stryker disable next-line EqualityOperator: used[total] is undefined, never 0, so `<=` ends the same way
    for (let did = this.lowestFree; did < this.total; did++) {
      if (this.used[did] === 0) {
        this.used[did] = 1;
        this.count++;
        this.lowestFree = did + 1;
        return did;
      }
    }
    this.lowestFree = this.total;
    throw new IommufdError('ENOSPC', `${this.instance}: no free domain IDs (${this.total} on the unit)`, {
      instance: this.instance,
    });
  }

  /** Returns a DID; `EINVAL` for a reserved DID or one not allocated. */
  free(did: number): void {
    // Only alloc() sets a DID, from IDA_START_DID and below total: reserved, out-of-range, fractional and
    // unallocated DIDs all read 0 or undefined here.
    if (this.used[did] !== 1)
      throw new IommufdError('EINVAL', `${this.instance}: domain ID ${did} is not allocated`, {
        instance: this.instance,
        did,
      });
    this.used[did] = 0;
    this.count--;
    // Stryker disable next-line EqualityOperator: did === lowestFree would set lowestFree to its own value
    if (did < this.lowestFree) this.lowestFree = did;
  }

  /** Only alloc() sets a DID, from IDA_START_DID and below total; any other index reads 0 or undefined. */
  isAllocated(did: number): boolean {
    return this.used[did] === 1;
  }
}
