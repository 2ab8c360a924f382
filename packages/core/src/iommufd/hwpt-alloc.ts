/**
 * `IOMMU_HWPT_ALLOC` (Linux `iommufd_hwpt_alloc`): what a HWPT can be allocated on, which flags each kind
 * takes, and in which order the checks answer. A paging HWPT goes on an IOAS (also made implicitly, as an
 * auto HWPT, by an attach to an IOAS); a nested HWPT goes on a nest-parent paging HWPT or a vIOMMU, from
 * vendor data. The fault queue is looked up only once the HWPT exists, so flag errors come first.
 */
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuDeviceRef, IommuDomain, PagingDomainFlags } from '../iommu/driver.js';
import type { IommuCore } from '../iommu/iommu-core.js';
import { flagsArg, optionalU32Arg, u32Arg } from './arguments.js';
import { DeviceObject } from './device.js';
import type { FaultObject } from './fault-queue.js';
import { type HwptFlags, HwptNestedObject, type HwptObjectType, HwptPagingObject } from './hw-pagetable.js';
import { IoasObject } from './ioas.js';
import type { ObjectTable } from './object-table.js';
import { ViommuObject } from './viommu.js';

export interface HwptAllocRequest {
  readonly devId: number;
  /** An IOAS (paging HWPT), a nest-parent paging HWPT or a vIOMMU (nested HWPT). */
  readonly ptId: number;
  readonly flags?: PagingDomainFlags;
  /** A FAULT object receiving this HWPT's I/O page faults (`IOMMU_HWPT_FAULT_ID_VALID`). */
  readonly faultId?: number;
  /** Vendor data for a nested HWPT (the guest STE, the VT-d stage-1 pointer, the guest DTE). */
  readonly data?: unknown;
}

/** What a HWPT is allocated on. */
export type HwptParent = IoasObject | HwptPagingObject | ViommuObject;

/** Allocates the HWPT `request` asks for, for `device`; on failure nothing is left behind. */
export function allocHwpt(
  table: ObjectTable,
  core: IommuCore,
  device: DeviceObject,
  request: HwptAllocRequest,
): { hwpt: HwptObjectType; parent: HwptParent } {
  const flags = flagsArg(request.flags, 'flags', ['nestParent', 'dirtyTracking', 'pasid'] as const);
  const faultId = optionalU32Arg(request.faultId, 'fault_id');
  const parent = hwptParent(table, u32Arg(request.ptId, 'pt_id'));
  const hwpt =
    parent.type === 'ioas'
      ? allocPagingHwpt(table, core, device, parent, flags, faultId !== undefined, false)
      : allocNestedHwpt(table, core, device, parent, flags, request.data);
  if (faultId !== undefined) routeFaults(table, core, hwpt, faultId);
  return { hwpt, parent };
}

/** A paging HWPT on `ioas`, filled with its areas (Linux `iommufd_hwpt_paging_alloc`). */
export function allocPagingHwpt(
  table: ObjectTable,
  core: IommuCore,
  device: DeviceObject,
  ioas: IoasObject,
  flags: PagingDomainFlags,
  withFault: boolean,
  autoDomain: boolean,
): HwptPagingObject {
  if (flags.nestParent && withFault)
    throw new IommufdError('EOPNOTSUPP', 'a nest parent cannot take a fault queue');
  if (flags.dirtyTracking && !device.driver.hwInfo(device.device).capabilities.dirtyTracking) {
    throw new IommufdError('EOPNOTSUPP', `${device.driver.instance} has no dirty tracking`);
  }
  const domain = device.driver.domainAllocPaging(flags);
  try {
    ioas.iopt.addDomain(domain);
  } catch (error) {
    domain.free();
    throw error;
  }
  const hwptFlags: HwptFlags = {
    autoDomain,
    nestParent: flags.nestParent ?? false,
    dirtyTracking: flags.dirtyTracking ?? false,
    pasidCompat: flags.pasid ?? false,
  };
  return table.add(new HwptPagingObject(ioas, domain, device.driver, hwptFlags, core));
}

function allocNestedHwpt(
  table: ObjectTable,
  core: IommuCore,
  device: DeviceObject,
  pt: HwptPagingObject | ViommuObject,
  flags: PagingDomainFlags,
  data: unknown,
): HwptNestedObject {
  // Linux iommufd_hwpt_alloc checks a vIOMMU's IOMMU first; iommufd_hwpt_nested_alloc and
  // iommufd_viommu_alloc_hwpt_nested then refuse other flags and no vendor data (`!user_data->len`) as
  // EOPNOTSUPP, before the parent's checks.
  if (pt.type === 'viommu' && pt.driver !== device.driver)
    throw new IommufdError('EINVAL', `${device.device.name} is behind another IOMMU than vIOMMU ${pt.id}`);
  if (flags.nestParent || flags.dirtyTracking)
    throw new IommufdError('EOPNOTSUPP', 'a nested HWPT takes only the PASID flag');
  if (data === undefined) throw new IommufdError('EOPNOTSUPP', 'a nested HWPT needs vendor data');
  // iommufd_hwpt_nested_alloc refuses a driver without domain_alloc_nested in the same breath.
  if (pt.type !== 'viommu' && !device.driver.domainAllocNested)
    throw new IommufdError('EOPNOTSUPP', `${device.driver.instance} nests only through a vIOMMU`);
  const parent = pt.type === 'viommu' ? pt.parent : pt;
  if (!parent.flags.nestParent || parent.flags.autoDomain)
    throw new IommufdError('EINVAL', `HWPT ${parent.id} is not a nest parent`);
  if (parent.driver !== device.driver)
    throw new IommufdError('EINVAL', `${device.device.name} is behind another IOMMU than HWPT ${parent.id}`);
  const domain: IommuDomain =
    pt.type === 'viommu'
      ? pt.driverObject.domainAllocNested(data)
      : device.driver.domainAllocNested!(device.device, parent.domain, data);
  const hwptFlags: HwptFlags = {
    autoDomain: false,
    nestParent: false,
    dirtyTracking: false,
    pasidCompat: flags.pasid ?? false,
  };
  const viommu = pt.type === 'viommu' ? pt : undefined;
  return table.add(new HwptNestedObject(parent, viommu, domain, device.driver, hwptFlags, core));
}

/** HWPT_ALLOC's `pt_id`: an IOAS, a paging HWPT or a vIOMMU; anything else, or nothing, is `EINVAL`. */
function hwptParent(table: ObjectTable, ptId: number): HwptParent {
  const pt = table.find(ptId);
  if (pt instanceof IoasObject || pt instanceof HwptPagingObject || pt instanceof ViommuObject) return pt;
  throw new IommufdError(
    'EINVAL',
    `object ${ptId} ${pt ? `is a ${pt.type}` : 'does not exist'}: a HWPT is allocated on an IOAS, a paging HWPT or a vIOMMU`,
    { ptId },
  );
}

/** Sends the new HWPT's I/O page faults to FAULT object `faultId`; if there is none, the HWPT goes again. */
function routeFaults(table: ObjectTable, core: IommuCore, hwpt: HwptObjectType, faultId: number): void {
  let fault: FaultObject;
  try {
    fault = table.get<FaultObject>(faultId, 'fault');
  } catch (error) {
    table.remove(hwpt);
    throw error;
  }
  hwpt.useFault(fault);
  core.setIopfHandler(hwpt.domain, (dev, req) => fault.enqueue(dev, devIdOf(table, dev), req));
}

/** The dev_id a device is bound as in this context (0 if it is not bound here). */
function devIdOf(table: ObjectTable, device: IommuDeviceRef): number {
  const object = table
    .list()
    .find((o): o is DeviceObject => o instanceof DeviceObject && o.device === device);
  return object?.id ?? 0;
}
