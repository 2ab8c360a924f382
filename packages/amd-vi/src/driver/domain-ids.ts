/**
 * DomainID allocation (Linux iommu.c `pdom_id_alloc` / `pdom_id_free` on the `pdom_ids` IDA): DomainIDs
 * tag the unit's IOTLB and page-directory cache entries (AMD pub. 48882 §2.2.2.1, DTE bits 79:64); Linux
 * hands out the lowest free one in [1, MAX_DOMAIN_ID − 1], 0 being reserved, and fails with "No free
 * domain IDs" (`ENOSPC`). The lowest-free allocation from 1 below a limit is core's `PasidAllocator`; this
 * adapter only names what it allocates.
 */
import { IommufdError, PasidAllocator } from '@iommukit/core';
import { MAX_DOMAIN_ID } from './command-queue.js';

export class DomainIds {
  private readonly ids: PasidAllocator;

  constructor(
    private readonly instance: string,
    limit = MAX_DOMAIN_ID,
  ) {
    this.ids = new PasidAllocator(limit);
  }

  /** DomainIDs handed out now. */
  get allocated(): number {
    return this.ids.allocated;
  }

  /** The lowest free DomainID from 1; `ENOSPC` when every one is taken. */
  alloc(): number {
    try {
      return this.ids.alloc();
    } catch {
      throw new IommufdError(
        'ENOSPC',
        `${this.instance}: no free domain IDs (${this.ids.limit - 1} usable)`,
        {
          instance: this.instance,
        },
      );
    }
  }

  /** Returns a DomainID; `EINVAL` for one not allocated. */
  free(domainId: number): void {
    if (!this.ids.isAllocated(domainId))
      throw new IommufdError('EINVAL', `${this.instance}: domain ID ${domainId} is not allocated`, {
        instance: this.instance,
        domainId,
      });
    this.ids.free(domainId);
  }
}
