/**
 * `IOMMU_VIOMMU_ALLOC`, `IOMMU_VDEVICE_ALLOC` and `IOMMU_VEVENTQ_ALLOC` (Linux viommu.c, eventq.c): the
 * rules for making the vIOMMU objects of viommu.ts. Arguments arrive already checked and looked up.
 */

import { toHex } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { PasidAllocator } from '../iommu/pasid-allocator.js';
import type { DeviceObject } from './device.js';
import type { HwptPagingObject } from './hw-pagetable.js';
import type { ObjectTable } from './object-table.js';
import { VdeviceObject, VeventqObject, ViommuObject } from './viommu.js';
import { VpasidTable } from './vpasid.js';

/** A vIOMMU of `type` on a nest-parent HWPT, for the IOMMU behind `device`. */
export function allocViommu(
  table: ObjectTable,
  device: DeviceObject,
  parent: HwptPagingObject,
  type: string,
): ViommuObject {
  if (type === 'default') throw new IommufdError('EOPNOTSUPP', 'vIOMMU type "default" is not allocatable');
  if (!parent.flags.nestParent) throw new IommufdError('EINVAL', `HWPT ${parent.id} is not a nest parent`);
  if (parent.driver !== device.driver)
    throw new IommufdError('EINVAL', `HWPT ${parent.id} is on another IOMMU than ${device.device.name}`);
  if (!device.driver.viommuAlloc)
    throw new IommufdError('EOPNOTSUPP', `${device.driver.instance} has no vIOMMU support`);
  // The driver reports events before the object exists only if it misbehaves; route them once it does.
  const sink = {
    target: undefined as ViommuObject | undefined,
    report: (t: string, r: Uint32Array) => sink.target?.report(t, r),
  };
  const driverObject = device.driver.viommuAlloc(parent.domain, type, sink);
  const viommu = table.add(new ViommuObject(parent, device.driver, type, driverObject));
  sink.target = viommu;
  return viommu;
}

/** Binds virtual ID `virtId` to `device` on `viommu`: one vDEVICE per device, one per ID (`EEXIST`). */
export function allocVdevice(
  table: ObjectTable,
  viommu: ViommuObject,
  device: DeviceObject,
  virtId: bigint,
  pasids: PasidAllocator,
): VdeviceObject {
  if (device.driver !== viommu.driver)
    throw new IommufdError(
      'EINVAL',
      `${device.device.name} is behind another IOMMU than vIOMMU ${viommu.id}`,
    );
  if (device.vdevice)
    throw new IommufdError('EEXIST', `${device.device.name} already has vDEVICE ${device.vdevice.id}`);
  if (viommu.vdevices.has(virtId))
    throw new IommufdError('EEXIST', `virtual ID ${toHex(virtId)} is taken on vIOMMU ${viommu.id}`);
  viommu.driverObject.vdeviceAlloc(device.device, virtId);
  const width = Math.min(device.device.pasidBits, device.driver.hwInfo(device.device).maxPasidLog2);
  return table.add(new VdeviceObject(viommu, device, virtId, new VpasidTable(pasids, width)));
}

/** A vEVENTQ of `depth` events: one per (vIOMMU, event type). */
export function allocVeventq(
  table: ObjectTable,
  viommu: ViommuObject,
  type: string,
  depth: number,
): VeventqObject {
  if (type === 'default') throw new IommufdError('EOPNOTSUPP', 'vEVENTQ type "default" is not allocatable');
  if (depth === 0) throw new IommufdError('EINVAL', `vEVENTQ depth ${depth} must be positive`);
  if (viommu.veventqs.has(type))
    throw new IommufdError('EEXIST', `vIOMMU ${viommu.id} already has a ${type} vEVENTQ`);
  return table.add(new VeventqObject(viommu, type, depth));
}
