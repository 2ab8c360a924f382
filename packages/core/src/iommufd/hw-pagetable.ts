/**
 * HWPT objects: a hardware page table a device can attach to. A paging HWPT (`IOMMUFD_OBJ_HWPT_PAGING`)
 * holds a paging domain kept filled with its IOAS's areas; an auto HWPT is one iommufd made for an attach
 * to an IOAS, reused by compatible devices and freed with its last device. A nested HWPT
 * (`IOMMUFD_OBJ_HWPT_NESTED`) holds a vendor stage-1 domain on a nest-parent paging HWPT, directly or
 * through a vIOMMU.
 */

import { iova } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuDomain, IommuDriver } from '../iommu/driver.js';
import type { IommuCore } from '../iommu/iommu-core.js';
import type { FaultObject } from './fault-queue.js';
import type { IoasObject } from './ioas.js';
import { hold, IommufdObject, release } from './object-table.js';
import type { ViommuObject } from './viommu.js';

export interface HwptFlags {
  /** Made by iommufd for an attach to an IOAS. */
  readonly autoDomain: boolean;
  readonly nestParent: boolean;
  readonly dirtyTracking: boolean;
  /** Allocated with `IOMMU_HWPT_ALLOC_PASID`: may be attached at a PASID. */
  readonly pasidCompat: boolean;
}

abstract class HwptObject extends IommufdObject {
  /** The FAULT object receiving this HWPT's I/O page faults (`IOMMU_HWPT_FAULT_ID_VALID`), if any. */
  private faultQueue: FaultObject | undefined;

  constructor(
    readonly domain: IommuDomain,
    readonly driver: IommuDriver,
    readonly flags: HwptFlags,
    protected readonly core: IommuCore,
  ) {
    super();
  }

  get fault(): FaultObject | undefined {
    return this.faultQueue;
  }

  /** Routes this HWPT's page faults to `fault` (set once, right after allocation). */
  useFault(fault: FaultObject): void {
    hold(fault);
    this.faultQueue = fault;
  }

  protected releaseCommon(): void {
    this.core.setIopfHandler(this.domain, undefined);
    if (this.fault) release(this.fault);
    this.domain.free();
  }
}

export class HwptPagingObject extends HwptObject {
  readonly type = 'hwpt-paging';

  /** The domain must already be filled into `ioas` (see `IoPagetable.addDomain`). */
  constructor(
    readonly ioas: IoasObject,
    domain: IommuDomain,
    driver: IommuDriver,
    flags: HwptFlags,
    core: IommuCore,
  ) {
    super(domain, driver, flags, core);
    hold(ioas);
    ioas.hwpts.push(this);
  }

  /** `IOMMU_HWPT_SET_DIRTY_TRACKING`: enabling first clears the dirty state of every mapped page. */
  setDirtyTracking(enabled: boolean): void {
    const domain = this.domain;
    if (!this.flags.dirtyTracking || !domain.setDirtyTracking || !domain.readAndClearDirty) {
      throw new IommufdError('EOPNOTSUPP', `HWPT ${this.id} was not allocated with dirty tracking`);
    }
    if (enabled)
      for (const area of this.ioas.iopt.listAreas())
        domain.readAndClearDirty(iova(area.iova), area.length, () => {}, true);
    domain.setDirtyTracking(enabled);
  }

  destroy(): void {
    this.ioas.iopt.removeDomain(this.domain);
    this.ioas.hwpts.splice(this.ioas.hwpts.indexOf(this), 1);
    release(this.ioas);
    this.releaseCommon();
  }
}

export class HwptNestedObject extends HwptObject {
  readonly type = 'hwpt-nested';

  constructor(
    /** The nest-parent HWPT whose domain is stage 2. */
    readonly parent: HwptPagingObject,
    /** The vIOMMU it was allocated on, if any. */
    readonly viommu: ViommuObject | undefined,
    domain: IommuDomain,
    driver: IommuDriver,
    flags: HwptFlags,
    core: IommuCore,
  ) {
    super(domain, driver, flags, core);
    hold(viommu ?? parent);
  }

  destroy(): void {
    release(this.viommu ?? this.parent);
    this.releaseCommon();
  }
}

export type HwptObjectType = HwptPagingObject | HwptNestedObject;
