/**
 * ASID and VMID allocation (Linux `arm_smmu_asid_xa` and `vmid_map`): the tags the SMMU's TLB keys
 * stage-1 (ASID) and stage-2 (VMID) translations with (SMMUv3 §3.17). Their width comes from the ID
 * registers: 16 bits with IDR0.ASID16 / IDR0.VMID16, else 8. ID 0 is never handed out: Linux reserves
 * VMID 0 for the stage-1 STEs of the host (STE.S2VMID = 0 tags their TLB entries) and starts ASIDs at 1
 * too. The lowest free ID is allocated; `ENOSPC` when none is left.
 */
import { IommufdError } from '@iommukit/core';
import type { Smmuv3Features } from '../hw/features.js';

export class IdAllocator {
  /** The largest ID (2^bits − 1). */
  readonly max: number;
  private readonly inUse: Uint8Array;
  private lowestFree: number;
  private count = 0;

  constructor(
    readonly name: string,
    readonly bits: number,
    /** The first ID handed out; those below are reserved. */
    readonly first = 1,
  ) {
    this.max = 2 ** bits - 1;
    this.inUse = new Uint8Array(this.max + 1);
    this.lowestFree = first;
  }

  /** IDs allocated now. */
  get used(): number {
    return this.count;
  }

  /** IDs that can be allocated in all. */
  get capacity(): number {
    return this.max - this.first + 1;
  }

  has(id: number): boolean {
    // IDs below `first` are never marked, and out-of-range indexes read undefined.
    return this.inUse[id] === 1;
  }

  /** The lowest free ID; `ENOSPC` when all are in use. */
  alloc(): number {
    for (let id = this.lowestFree; id <= this.max; id++) {
      if (this.inUse[id] === 0) {
        this.inUse[id] = 1;
        this.count++;
        this.lowestFree = id + 1;
        return id;
      }
    }
    // Stryker disable next-line ArithmeticOperator: any start at or below max finds nothing free either
    this.lowestFree = this.max + 1;
    throw new IommufdError('ENOSPC', `all ${this.capacity} ${this.bits}-bit ${this.name}s are in use`, {
      bits: this.bits,
    });
  }

  /** Returns an ID; freeing one that is not allocated throws `EINVAL`. */
  free(id: number): void {
    if (!this.has(id)) throw new IommufdError('EINVAL', `${this.name} ${id} is not allocated`, { id });
    this.inUse[id] = 0;
    this.count--;
    // Stryker disable next-line EqualityOperator: for id === lowestFree both keep the same value
    if (id < this.lowestFree) this.lowestFree = id;
  }
}

/** ASIDs for stage-1 domains: 16 bits with IDR0.ASID16, else 8; 0 reserved. */
export function asidAllocator(features: Pick<Smmuv3Features, 'asid16'>): IdAllocator {
  return new IdAllocator('ASID', features.asid16 ? 16 : 8);
}

/** VMIDs for stage-2 domains: 16 bits with IDR0.VMID16, else 8; 0 reserved for stage-1 STEs. */
export function vmidAllocator(features: Pick<Smmuv3Features, 'vmid16'>): IdAllocator {
  return new IdAllocator('VMID', features.vmid16 ? 16 : 8);
}
