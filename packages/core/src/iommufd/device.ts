/**
 * DEVICE object (`IOMMUFD_OBJ_DEVICE`): a device bound to an iommufd context, and the attach, replace and
 * detach rules of `iommufd_device_attach/replace/detach`, at the RID (NO_PASID) and at PASIDs:
 *
 * - attaching where something is attached is `EBUSY` (use replace); replace needs an attachment
 *   (`EINVAL`) and is a no-op to the same HWPT; detaching an unattached PASID is a silent no-op;
 * - at a PASID the device needs the PASID capability and the PASID must fit (`EINVAL`), the driver must
 *   support it (`EOPNOTSUPP`), the HWPT must be PASID-compatible and so must the RID's (`EINVAL`); a RID
 *   may not move to a non-compatible HWPT while PASIDs are attached (`EINVAL`);
 * - an IOAS target picks a compatible auto HWPT or makes one (never at a PASID: auto HWPTs are not
 *   PASID-compatible); an auto HWPT is freed when its last device leaves;
 * - the device's reserved regions are reserved in the IOAS of a paging HWPT attached at its RID;
 * - the device's MSI doorbell mappings (see msi-mappings.ts) follow it from domain to domain;
 * - on failure nothing changes; unanswered page faults of the old HWPT are answered `invalid`;
 * - a HWPT with a fault queue turns the device's I/O page faults on (`driver.enableIopf`: the endpoint's
 *   PRI) before it is attached, counted per attachment as Linux's `idev->iopf_enabled`
 *   (`iommufd_fault_iopf_enable` in `iommufd_hwpt_attach_device` / `_replace_device`); the last such
 *   attachment going turns them off (`iommufd_fault_iopf_disable`).
 */
import { IommufdError, isIommufdError } from '../errors/iommufd-error.js';
import type { HwInfo, IommuDeviceRef, IommuDriver } from '../iommu/driver.js';
import type { IommuCore } from '../iommu/iommu-core.js';
import { NO_PASID } from '../iommu/translation.js';
import type { HwptObjectType, HwptPagingObject } from './hw-pagetable.js';
import type { IoasObject } from './ioas.js';
import type { MsiMappings, MsiTarget } from './msi-mappings.js';
import { hold, IommufdObject, type ObjectTable, release } from './object-table.js';
import type { VdeviceObject } from './viommu.js';

/** Makes a new auto paging HWPT on an IOAS for a device (supplied by the context). */
export type AutoHwptFactory = (device: DeviceObject, ioas: IoasObject) => HwptPagingObject;

export class DeviceObject extends IommufdObject {
  readonly type = 'device';
  /** HWPT attached at the RID (NO_PASID) and at each PASID. */
  readonly attachments = new Map<number, HwptObjectType>();
  vdevice: VdeviceObject | undefined;
  /** Attachments (RID and PASIDs) on a HWPT with a fault queue: I/O page faults are on while any. */
  private iopfUsers = 0;

  constructor(
    readonly device: IommuDeviceRef,
    readonly driver: IommuDriver,
    private readonly core: IommuCore,
    private readonly table: ObjectTable,
    private readonly msi: MsiMappings,
  ) {
    super();
  }

  /** Where this device's MSI doorbell mappings go now (the paging domain at its RID), if anywhere. */
  get msiTarget(): MsiTarget | undefined {
    const hwpt = this.attachments.get(NO_PASID);
    return hwpt ? msiTargetOf(hwpt) : undefined;
  }

  /**
   * `IOMMU_GET_HW_INFO`. The PASID width is the device's and the IOMMU's smaller one; a device without
   * PASID reports 0 and no PASID capabilities (Linux: `out_max_pasid_log2` from `dev->iommu->max_pasids`).
   */
  hwInfo(): HwInfo {
    const info = this.driver.hwInfo(this.device);
    const maxPasidLog2 = Math.min(this.device.pasidBits, info.maxPasidLog2);
    if (maxPasidLog2 > 0) return { ...info, maxPasidLog2 };
    return {
      ...info,
      maxPasidLog2,
      capabilities: { ...info.capabilities, pasidExec: false, pasidPriv: false },
    };
  }

  /** Attaches to a HWPT or IOAS at `pasid`; returns the HWPT's ID (the auto HWPT's for an IOAS). */
  attach(target: HwptObjectType | IoasObject, pasid: number, makeAuto: AutoHwptFactory): number {
    if (this.attachments.has(pasid)) {
      throw new IommufdError(
        'EBUSY',
        `${this.device.name} already has a HWPT at ${pasidName(pasid)}; use replace`,
        this.ctx(pasid),
      );
    }
    this.checkPasid(pasid);
    const hwpt = target.type === 'ioas' ? this.pickAuto(target, pasid, makeAuto) : target;
    if (target.type !== 'ioas') this.install(hwpt, pasid);
    return hwpt.id;
  }

  /** Replaces the HWPT at `pasid` atomically; returns the new HWPT's ID. */
  replace(target: HwptObjectType | IoasObject, pasid: number, makeAuto: AutoHwptFactory): number {
    const old = this.attachments.get(pasid);
    if (!old)
      throw new IommufdError(
        'EINVAL',
        `${this.device.name} has nothing attached at ${pasidName(pasid)} to replace`,
        this.ctx(pasid),
      );
    if (target === old) return old.id;
    const hwpt = target.type === 'ioas' ? this.pickAuto(target, pasid, makeAuto, old) : target;
    if (target.type !== 'ioas') this.install(hwpt, pasid, old);
    return hwpt.id;
  }

  /** Detaches `pasid` (the RID goes back to blocked); a silent no-op when nothing is attached there. */
  detach(pasid: number): void {
    const old = this.attachments.get(pasid);
    if (!old) return;
    this.core.detachDevicePasid(this.device, pasid);
    if (pasid === NO_PASID) this.msi.uninstall(this, msiTargetOf(old).domain);
    this.attachments.delete(pasid);
    this.leave(old, pasid);
    release(this);
  }

  destroy(): void {
    for (const pasid of [...this.attachments.keys()].filter((p) => p !== NO_PASID)) this.detach(pasid);
    this.detach(NO_PASID);
    for (const mapping of this.msi.of(this)) mapping.ioas?.iopt.releaseReserved(mapping);
    this.msi.forget(this);
    if (this.vdevice) this.table.remove(this.vdevice, true);
  }

  /** Tries the IOAS's auto HWPTs in order (EINVAL = incompatible, try the next), else makes one. */
  private pickAuto(
    ioas: IoasObject,
    pasid: number,
    makeAuto: AutoHwptFactory,
    old?: HwptObjectType,
  ): HwptObjectType {
    if (pasid !== NO_PASID)
      throw new IommufdError(
        'EINVAL',
        'an IOAS cannot be attached at a PASID (auto HWPTs are not PASID-compatible)',
      );
    for (const candidate of ioas.hwpts.filter((h) => h.flags.autoDomain)) {
      if (candidate === old) return old;
      try {
        this.install(candidate, pasid, old);
        return candidate;
      } catch (error) {
        if (!isIommufdError(error, 'EINVAL')) throw error;
      }
    }
    const fresh = makeAuto(this, ioas);
    try {
      this.install(fresh, pasid, old);
    } catch (error) {
      this.table.remove(fresh);
      throw error;
    }
    return fresh;
  }

  /** Checks compatibility, reserves, attaches through the core, then moves references. */
  private install(hwpt: HwptObjectType, pasid: number, old?: HwptObjectType): void {
    const shared = hwpt.type === 'hwpt-paging' && this.core.sharesDomainsAcrossInstances(this.device);
    if (hwpt.driver !== this.driver && !shared) {
      throw new IommufdError(
        'EINVAL',
        `HWPT ${hwpt.id} belongs to ${hwpt.driver.instance}, ${this.device.name} is behind ${this.driver.instance}`,
        this.ctx(pasid),
      );
    }
    if (pasid !== NO_PASID) {
      if (!hwpt.flags.pasidCompat)
        throw new IommufdError(
          'EINVAL',
          `HWPT ${hwpt.id} was not allocated PASID-compatible`,
          this.ctx(pasid),
        );
      const rid = this.attachments.get(NO_PASID);
      if (rid && !rid.flags.pasidCompat) {
        throw new IommufdError('EINVAL', `the RID's HWPT ${rid.id} is not PASID-compatible`, this.ctx(pasid));
      }
    } else if (!hwpt.flags.pasidCompat && this.core.attachedPasids(this.device).length > 0) {
      throw new IommufdError(
        'EINVAL',
        `HWPT ${hwpt.id} is not PASID-compatible and PASIDs are attached`,
        this.ctx(pasid),
      );
    }
    if (hwpt.flags.dirtyTracking && !this.driver.hwInfo(this.device).capabilities.dirtyTracking) {
      throw new IommufdError('EINVAL', `${this.device.name} cannot do dirty tracking`, this.ctx(pasid));
    }
    const newIoas = pasid === NO_PASID && hwpt.type === 'hwpt-paging' ? hwpt.ioas : undefined;
    const oldIoas = old?.type === 'hwpt-paging' && pasid === NO_PASID ? old.ioas : undefined;
    const reserveNew = newIoas !== undefined && newIoas !== oldIoas;
    if (reserveNew) this.reserveRegions(newIoas);
    // MSI doorbells go into the new domain before the device can use it, and leave the old one after.
    const msiNew = pasid === NO_PASID ? msiTargetOf(hwpt) : undefined;
    const msiOld = pasid === NO_PASID && old ? msiTargetOf(old) : undefined;
    const moveMsi = msiNew !== undefined && msiNew.domain !== msiOld?.domain;
    try {
      if (moveMsi) this.msi.install(this, msiNew);
      try {
        if (hwpt.fault) this.iopfGet();
        try {
          if (pasid === NO_PASID) this.core.attachDevice(this.device, hwpt.domain);
          else this.core.attachDevicePasid(this.device, hwpt.domain, pasid);
        } catch (error) {
          if (hwpt.fault) this.iopfPut();
          throw error;
        }
      } catch (error) {
        if (moveMsi) this.msi.uninstall(this, msiNew.domain);
        throw error;
      }
    } catch (error) {
      if (reserveNew) newIoas.iopt.releaseReserved(this);
      throw error;
    }
    if (moveMsi && msiOld) this.msi.uninstall(this, msiOld.domain);
    hold(hwpt);
    this.attachments.set(pasid, hwpt);
    if (old) this.leave(old, pasid, newIoas);
    else hold(this);
  }

  /** Drops what this device held through `old` at `pasid`: refs, reservations, faults, an empty auto HWPT. */
  private leave(old: HwptObjectType, pasid: number, stillReservedOn?: IoasObject): void {
    if (old.type === 'hwpt-paging' && pasid === NO_PASID && old.ioas !== stillReservedOn)
      old.ioas.iopt.releaseReserved(this);
    if (old.fault) {
      old.fault.abandon(this.device, pasid);
      this.iopfPut();
    }
    release(old);
    if (old.type === 'hwpt-paging' && old.flags.autoDomain && old.users === 1) this.table.remove(old);
  }

  /** One more attachment with a fault queue; the first turns I/O page faults on (may refuse: nothing changed). */
  private iopfGet(): void {
    if (this.iopfUsers === 0) this.driver.enableIopf?.(this.device);
    this.iopfUsers++;
  }

  /** One attachment with a fault queue fewer; the last turns I/O page faults off. */
  private iopfPut(): void {
    this.iopfUsers--;
    if (this.iopfUsers === 0) this.driver.disableIopf?.(this.device);
  }

  private reserveRegions(ioas: IoasObject): void {
    const regions = this.driver.reservedRegions?.(this.device) ?? [];
    try {
      for (const r of regions) ioas.iopt.reserve(this, r.start, r.length);
    } catch (error) {
      ioas.iopt.releaseReserved(this);
      throw error;
    }
  }

  private checkPasid(pasid: number): void {
    if (pasid === NO_PASID) return;
    const width = this.hwInfo().maxPasidLog2;
    if (this.device.pasidBits === 0)
      throw new IommufdError('EINVAL', `${this.device.name} has no PASID capability`, this.ctx(pasid));
    // pasidArg made it a __u32: only the width can refuse it.
    if (pasid >= 2 ** width) {
      throw new IommufdError(
        'EINVAL',
        `PASID ${pasid} is out of range for ${this.device.name} (${width} bits)`,
        this.ctx(pasid),
      );
    }
    if (!this.driver.setDevPasid)
      throw new IommufdError(
        'EOPNOTSUPP',
        `${this.driver.instance} cannot attach at a PASID`,
        this.ctx(pasid),
      );
  }

  private ctx(pasid: number) {
    return { device: this.device.name, devId: this.id, pasid: pasid === NO_PASID ? undefined : pasid };
  }
}

/** The paging domain (and its IOAS) behind a HWPT: its own, or a nested HWPT's stage-2 parent's. */
function msiTargetOf(hwpt: HwptObjectType): MsiTarget {
  const paging = hwpt.type === 'hwpt-paging' ? hwpt : hwpt.parent;
  return { domain: paging.domain, ioas: paging.ioas };
}

function pasidName(pasid: number): string {
  return pasid === NO_PASID ? 'its RID' : `PASID ${pasid}`;
}
