/**
 * The system-wide PASID allocator (Linux `iommu_alloc_global_pasid`): one PASID space shared by every
 * device and IOMMU, so a process bound to several devices uses one PASID on all of them. PASID 0 is
 * reserved (it means "no PASID" on several architectures), so allocation starts at 1.
 */
import { token } from '../di/token.js';
import { IommufdError } from '../errors/iommufd-error.js';

/** PCIe PASIDs are 20 bits. */
export const PASID_BITS_MAX = 20;
export const FIRST_GLOBAL_PASID = 1;

export const IPasidAllocator = token<PasidAllocator>('iommukit.PasidAllocator');

export class PasidAllocator {
  private readonly used = new Set<number>();

  constructor(readonly limit: number = 2 ** PASID_BITS_MAX) {}

  /** The lowest free PASID in [FIRST_GLOBAL_PASID, max); `ENOSPC` when none is left. */
  alloc(max: number = this.limit): number {
    const end = Math.min(max, this.limit);
    for (let pasid = FIRST_GLOBAL_PASID; pasid < end; pasid++) {
      if (!this.used.has(pasid)) {
        this.used.add(pasid);
        return pasid;
      }
    }
    throw new IommufdError('ENOSPC', `no free PASID below ${end}`, { allocated: this.used.size });
  }

  /** Takes exactly `pasid` (a 1:1 vPASID); `EBUSY` if it is taken, `EINVAL` outside [1, limit). */
  reserve(pasid: number): number {
    if (!Number.isInteger(pasid) || pasid < FIRST_GLOBAL_PASID || pasid >= this.limit)
      throw new IommufdError('EINVAL', `PASID ${pasid} is outside ${FIRST_GLOBAL_PASID}..${this.limit - 1}`, {
        pasid,
      });
    if (this.used.has(pasid)) throw new IommufdError('EBUSY', `PASID ${pasid} is in use`, { pasid });
    this.used.add(pasid);
    return pasid;
  }

  free(pasid: number): void {
    if (!this.used.delete(pasid))
      throw new IommufdError('EINVAL', `PASID ${pasid} is not allocated`, { pasid });
  }

  isAllocated(pasid: number): boolean {
    return this.used.has(pasid);
  }

  get allocated(): number {
    return this.used.size;
  }
}
