/**
 * The vPASID → pPASID translation point of a vDEVICE (Intel Scalable IOV, ENQCMD): a guest names PASIDs in
 * its own space, the host's PASID space is one for the whole system (the global allocator, which SVA uses
 * too), so two guests — or a guest and the host — may pick the same number. The VMM asks iommufd for a
 * physical PASID per guest PASID of a vDEVICE and attaches HWPTs at the physical one; what the host
 * reports for a physical PASID (page requests, faults) it translates back. A device the guest owns whole
 * (a passed-through function) may keep its guest's numbers: `identity` reserves the same PASID.
 */
import { IommufdError } from '../errors/iommufd-error.js';
import type { PasidAllocator } from '../iommu/pasid-allocator.js';

export class VpasidTable {
  private readonly physical = new Map<number, number>();
  private readonly virtual = new Map<number, number>();

  constructor(
    private readonly allocator: PasidAllocator,
    /** The device's PASID width: a physical PASID must fit it. */
    private readonly pasidBits: number,
  ) {}

  /**
   * Gives guest PASID `vpasid` a physical one (the same one with `identity`). `EINVAL` for a PASID outside
   * the device's width, `EEXIST` for one already mapped, `ENOSPC`/`EBUSY` when the host has none to give.
   */
  map(vpasid: number, identity: boolean): number {
    const limit = 2 ** this.pasidBits;
    if (!Number.isInteger(vpasid) || vpasid < 1 || vpasid >= limit)
      throw new IommufdError('EINVAL', `vPASID ${vpasid} is outside 1..${limit - 1}`, { vpasid });
    if (this.physical.has(vpasid))
      throw new IommufdError('EEXIST', `vPASID ${vpasid} is mapped already`, { vpasid });
    const ppasid = identity ? this.allocator.reserve(vpasid) : this.allocator.alloc(limit);
    this.physical.set(vpasid, ppasid);
    this.virtual.set(ppasid, vpasid);
    return ppasid;
  }

  /** Releases guest PASID `vpasid`'s physical PASID; `ENOENT` if it has none. */
  unmap(vpasid: number): void {
    const ppasid = this.toPhysical(vpasid);
    this.physical.delete(vpasid);
    this.virtual.delete(ppasid);
    this.allocator.free(ppasid);
  }

  /** The physical PASID of guest PASID `vpasid`; `ENOENT` if it has none. */
  toPhysical(vpasid: number): number {
    const ppasid = this.physical.get(vpasid);
    if (ppasid === undefined) throw new IommufdError('ENOENT', `vPASID ${vpasid} is not mapped`, { vpasid });
    return ppasid;
  }

  /** The guest PASID a physical PASID stands for, if any. */
  toVirtual(ppasid: number): number | undefined {
    return this.virtual.get(ppasid);
  }

  /** Physical PASIDs in use. */
  get physicalPasids(): number[] {
    return [...this.virtual.keys()];
  }

  /** Releases every physical PASID (the vDEVICE goes). */
  clear(): void {
    for (const vpasid of [...this.physical.keys()]) this.unmap(vpasid);
  }
}
