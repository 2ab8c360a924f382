/**
 * An iommufd context — one "open /dev/iommu" — and its operations, in the shape and with the error rules
 * of the Linux iommufd uAPI (docs/iommufd.md lists them). Objects are referred to by ID, as ioctls do;
 * each method names the ioctl it models.
 */
import { alignDown, type Hpa, iova as makeIova, PAGE_SIZE, toHex, U64_MAX } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type {
  HwInfo,
  InvalidationResult,
  IommuDeviceRef,
  IommuDomain,
  PagingDomainFlags,
} from '../iommu/driver.js';
import type { IommuCore } from '../iommu/iommu-core.js';
import { swMsiWindowOf } from '../iommu/sw-msi-cookie.js';
import { NO_PASID } from '../iommu/translation.js';
import type { MsiDoorbell } from '../msi/msi-controller.js';
import type { ITracer } from '../trace/tracer.js';
import {
  arrayArg,
  boolArg,
  flagsArg,
  integerArg,
  objectArg,
  optionalU32Arg,
  optionalU64Arg,
  pasidArg,
  stringArg,
  u32Arg,
  u64Arg,
} from './arguments.js';
import { DeviceObject } from './device.js';
import { type DirtyBitmapRequest, readDirtyBitmap } from './dirty-bitmap.js';
import { FaultObject, type FaultResponseCode, type PageFaultRecord } from './fault-queue.js';
import { type HwptFlags, HwptNestedObject, type HwptObjectType, HwptPagingObject } from './hw-pagetable.js';
import { IoasObject } from './ioas.js';
import { MsiMappings } from './msi-mappings.js';
import { hold, ObjectTable } from './object-table.js';
import { type UserMemory, userMemoryArg } from './user-memory.js';
import { VdeviceObject, type Vevent, VeventqObject, ViommuObject } from './viommu.js';

export type { DirtyBitmap, DirtyBitmapRequest } from './dirty-bitmap.js';

const PAGE = BigInt(PAGE_SIZE);

export interface MapRequest {
  readonly ioasId: number;
  readonly memory: UserMemory;
  /** Offset into `memory` (default 0); the range must lie inside `memory` (`EINVAL`). */
  readonly offset?: bigint;
  readonly length: bigint;
  /** Fixed IOVA (`IOMMU_IOAS_MAP_FIXED_IOVA`); absent: iommufd picks one. */
  readonly iova?: bigint;
  readonly readable: boolean;
  readonly writeable: boolean;
}

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

/** The result of `IOMMU_HWPT_INVALIDATE`: every entry was handled. A failure throws, with `context.handled`. */
export interface InvalidateOutcome {
  readonly handled: number;
}

/** The IRQ layer's answer to "which physical doorbell do this device's MSIs go to" (its msi-parent). */
export type MsiDoorbellLookup = (device: IommuDeviceRef) => MsiDoorbell;

export class IommuFd {
  private readonly table = new ObjectTable();
  private readonly msi = new MsiMappings();
  private closed = false;

  constructor(
    private readonly core: IommuCore,
    private readonly tracer: ITracer,
    /** Devices bound to any context: a device may be bound to one at a time. */
    private readonly bound: Set<IommuDeviceRef>,
    /** Absent: the system has no MSI controller, and MSI operations are `ENODEV`. */
    private readonly msiDoorbellOf?: MsiDoorbellLookup,
  ) {}

  // --- objects -------------------------------------------------------------------------------------

  /** `IOMMU_DESTROY`: `ENOENT` for an unknown (or tombstoned) ID, `EBUSY` while the object is in use. */
  destroy(id: number): void {
    this.live();
    id = u32Arg(id, 'object ID');
    this.table.destroy(id);
    this.log('destroy', `destroy object ${id}`, { id });
  }

  /** Closing the context: every object is destroyed, leaf first, and bound devices are released. */
  close(): void {
    if (this.closed) return;
    for (const object of this.table.list()) if (object instanceof DeviceObject) this.unbind(object.id);
    this.table.close();
    this.closed = true;
  }

  /** The object types and IDs alive now (for inspection and tests). */
  objects(): { id: number; type: string; users: number }[] {
    return this.table.list().map((o) => ({ id: o.id, type: o.type, users: o.users }));
  }

  // --- devices -------------------------------------------------------------------------------------

  /**
   * Binds a device (VFIO cdev bind): it starts blocked. `EBUSY` if it is bound elsewhere. The binding
   * holds a reference on the device object until `unbind`, so `destroy` of a bound device is `EBUSY`.
   */
  bind(device: IommuDeviceRef): number {
    this.live();
    objectArg(device, 'device');
    const driver = this.core.driverOf(device);
    if (this.bound.has(device))
      throw new IommufdError('EBUSY', `${device.name} is already bound to an iommufd`, {
        device: device.name,
      });
    const object = this.table.add(new DeviceObject(device, driver, this.core, this.table, this.msi));
    // The calling driver is a user until unbind (Linux iommufd_device_bind).
    hold(object);
    this.bound.add(device);
    this.log('device.bind', `bind ${device.name} → dev_id ${object.id}`, {
      device: device.name,
      devId: object.id,
    });
    return object.id;
  }

  /** Unbinds a device: detaches everything, destroys its vDEVICE (leaving a tombstone), frees the ID. */
  unbind(devId: number): void {
    devId = u32Arg(devId, 'dev_id');
    const object = this.table.get<DeviceObject>(devId, 'device');
    this.table.remove(object);
    this.bound.delete(object.device);
    this.log('device.unbind', `unbind dev_id ${devId}`, { devId });
  }

  /**
   * `IOMMU_GET_HW_INFO`. The PASID width is the device's and the IOMMU's smaller one; a device without
   * PASID reports 0 and no PASID capabilities (Linux: `out_max_pasid_log2` from `dev->iommu->max_pasids`).
   */
  hwInfo(devId: number): HwInfo {
    const object = this.device(devId);
    const info = object.driver.hwInfo(object.device);
    const maxPasidLog2 = Math.min(object.device.pasidBits, info.maxPasidLog2);
    if (maxPasidLog2 > 0) return { ...info, maxPasidLog2 };
    return {
      ...info,
      maxPasidLog2,
      capabilities: { ...info.capabilities, pasidExec: false, pasidPriv: false },
    };
  }

  /** `IOMMU_DEVICE_ATTACH` (VFIO_DEVICE_ATTACH_IOMMUFD_PT): returns the attached HWPT's ID. */
  attach(devId: number, ptId: number, pasid: number = NO_PASID): number {
    const device = this.device(devId);
    ptId = u32Arg(ptId, 'pt_id');
    pasid = pasidArg(pasid);
    const target = this.table.get<HwptObjectType | IoasObject>(ptId, 'ioas', 'hwpt-paging', 'hwpt-nested');
    const hwptId = device.attach(target, pasid, this.makeAuto);
    this.log('device.attach', `attach dev_id ${devId}${pasidText(pasid)} → HWPT ${hwptId}`, {
      devId,
      ptId,
      hwptId,
      pasid,
    });
    return hwptId;
  }

  /** Replace: atomically moves the attachment at `pasid` to another HWPT or IOAS. */
  replace(devId: number, ptId: number, pasid: number = NO_PASID): number {
    const device = this.device(devId);
    ptId = u32Arg(ptId, 'pt_id');
    pasid = pasidArg(pasid);
    const target = this.table.get<HwptObjectType | IoasObject>(ptId, 'ioas', 'hwpt-paging', 'hwpt-nested');
    const hwptId = device.replace(target, pasid, this.makeAuto);
    this.log('device.replace', `replace dev_id ${devId}${pasidText(pasid)} → HWPT ${hwptId}`, {
      devId,
      ptId,
      hwptId,
      pasid,
    });
    return hwptId;
  }

  /** Detach: the RID goes back to blocking DMA; a PASID loses its domain. */
  detach(devId: number, pasid: number = NO_PASID): void {
    pasid = pasidArg(pasid);
    this.device(devId).detach(pasid);
    this.log('device.detach', `detach dev_id ${devId}${pasidText(pasid)}`, { devId, pasid });
  }

  /** The HWPT ID attached at `pasid`, if any (for inspection). */
  attachedHwpt(devId: number, pasid: number = NO_PASID): number | undefined {
    return this.device(devId).attachments.get(pasidArg(pasid))?.id;
  }

  // --- MSI -----------------------------------------------------------------------------------------

  /**
   * The host sets up a bound device's MSI (VFIO_DEVICE_SET_IRQS → `iommufd_sw_msi`): maps the page of its
   * physical doorbell into the device's SW MSI window, in its current domain and every one it moves to,
   * and returns the address to program into the device. A device whose IOMMU has no SW MSI window (a
   * hardware MSI window, as on x86) uses the doorbell address untranslated.
   */
  deviceSetupSwMsi(devId: number, doorbell: Hpa): bigint {
    const device = this.device(devId);
    doorbell = u64Arg(doorbell, 'doorbell') as Hpa;
    const reserved = swMsiWindowOf(device.driver, device.device);
    if (!reserved) return doorbell;
    const window = this.msi.swMsiWindow ?? reserved;
    const doorbellPage = alignDown(doorbell, PAGE);
    const iovaPage = this.msi.swMsiIovaPage(window, doorbellPage);
    this.msi.add(device, { kind: 'sw-msi', iovaPage, doorbellPage, ioas: undefined }, device.msiTarget);
    const address = iovaPage + (doorbell - doorbellPage);
    this.log(
      'msi.sw-msi',
      `dev_id ${devId}: MSI doorbell ${toHex(doorbell)} at SW MSI IOVA ${toHex(address)}`,
      {
        devId,
        doorbell,
        iova: address,
      },
    );
    return address;
  }

  /**
   * `IOMMU_OPTION_SW_MSI_START` / `IOMMU_OPTION_SW_MSI_SIZE`: where this context puts SW MSI doorbells
   * instead of the driver's window, so a VMM can keep them out of the guest's way (and declare the range
   * to the guest as an RMR). `EINVAL` unaligned or empty, `EBUSY` once a SW MSI doorbell is mapped.
   */
  setSwMsiWindow(start: bigint, length: bigint): void {
    this.live();
    start = u64Arg(start, 'SW MSI start');
    length = u64Arg(length, 'SW MSI length');
    if (start + length - 1n > U64_MAX) throw new IommufdError('EOVERFLOW', 'SW MSI window overflows 64 bits');
    if (start % PAGE !== 0n || length <= 0n || length % PAGE !== 0n)
      throw new IommufdError('EINVAL', `SW MSI window ${toHex(start)}+${toHex(length)} is not whole pages`);
    this.msi.setSwMsiWindow({ start, length });
    this.log('msi.window', `SW MSI window moved to ${toHex(start)}+${toHex(length)}`, { start, length });
  }

  /**
   * `ioasMapMsi` (MSI passthrough, docs/design.md §7 flow 5): maps the page of the device's physical MSI doorbell at
   * `gpa` (the page of the VMM's virtual controller doorbell) in the IOAS's domains the device uses, and
   * keeps that range out of IOAS mappings. `EEXIST` if the IOAS maps memory there, or if a domain the
   * device is attached to already holds another device's different doorbell page there — give the
   * device its own HWPT and retry. `ENODEV` without an MSI controller; `EINVAL` for an unaligned GPA.
   */
  ioasMapMsi(ioasId: number, devId: number, gpa: bigint): void {
    const ioas = this.ioas(ioasId);
    const device = this.device(devId);
    gpa = u64Arg(gpa, 'MSI GPA');
    if (!this.msiDoorbellOf) throw new IommufdError('ENODEV', 'the system has no MSI controller');
    if (gpa % PAGE !== 0n) throw new IommufdError('EINVAL', `MSI GPA ${toHex(gpa)} is not page aligned`);
    if (ioas.iopt.overlapsArea(gpa, PAGE))
      throw new IommufdError('EEXIST', `IOAS ${ioasId} maps memory at ${toHex(gpa)}`);
    const doorbellPage = this.msiDoorbellOf(device.device).page;
    const mapping = { kind: 'passthrough', iovaPage: gpa, doorbellPage, ioas } as const;
    const target = device.msiTarget?.ioas === ioas ? device.msiTarget : undefined;
    ioas.iopt.reserve(mapping, gpa, PAGE);
    try {
      this.msi.add(device, mapping, target);
    } catch (error) {
      ioas.iopt.releaseReserved(mapping);
      throw error;
    }
    this.log(
      'msi.map',
      `IOAS ${ioasId}: dev_id ${devId}'s MSI doorbell page ${toHex(mapping.doorbellPage)} at GPA ${toHex(gpa)}`,
      { ioasId, devId, gpa, doorbellPage: mapping.doorbellPage },
    );
  }

  /** MSI doorbell pages installed in a HWPT's paging domain (a nested HWPT: its parent's), for inspection. */
  msiPages(
    hwptId: number,
  ): { readonly iovaPage: bigint; readonly doorbellPage: bigint; readonly users: number }[] {
    const hwpt = this.table.get<HwptObjectType>(u32Arg(hwptId, 'hwpt_id'), 'hwpt-paging', 'hwpt-nested');
    return this.msi.installedIn(hwpt.type === 'hwpt-paging' ? hwpt.domain : hwpt.parent.domain);
  }

  // --- IOAS ----------------------------------------------------------------------------------------

  /** `IOMMU_IOAS_ALLOC`. */
  ioasAlloc(): number {
    this.live();
    const id = this.table.add(new IoasObject()).id;
    this.log('ioas.alloc', `IOAS ${id}`, { id });
    return id;
  }

  /** `IOMMU_IOAS_MAP`: returns the IOVA used. */
  ioasMap(request: MapRequest): bigint {
    const r = objectArg<MapRequest>(request, 'map request');
    const ioas = this.ioas(r.ioasId);
    const memory = userMemoryArg(r.memory);
    const offset = r.offset === undefined ? 0n : integerArg(r.offset, 'offset');
    const length = u64Arg(r.length, 'length');
    const prot = { read: boolArg(r.readable, 'readable'), write: boolArg(r.writeable, 'writeable') };
    const iova = ioas.iopt.map(optionalU64Arg(r.iova, 'IOVA'), memory, offset, length, prot);
    this.log(
      'ioas.map',
      `IOAS ${ioas.id}: map ${memory.description} at IOVA ${toHex(iova)}+${toHex(length)}`,
      {
        ioasId: ioas.id,
        iova,
        length,
      },
    );
    return iova;
  }

  /** `IOMMU_IOAS_UNMAP`: returns the bytes unmapped; `(0, 2^64 − 1)` unmaps everything. */
  ioasUnmap(ioasId: number, iova: bigint, length: bigint): bigint {
    const ioas = this.ioas(ioasId);
    iova = u64Arg(iova, 'IOVA');
    length = u64Arg(length, 'length');
    const bytes = ioas.iopt.unmap(iova, length);
    this.log(
      'ioas.unmap',
      `IOAS ${ioasId}: unmap IOVA ${toHex(iova)}+${toHex(length)}: ${toHex(bytes)} bytes`,
      { ioasId, iova, length, bytes },
    );
    return bytes;
  }

  /** `IOMMU_IOAS_COPY`: maps the memory behind `[srcIova, +length)` of one IOAS into another; returns the IOVA. */
  ioasCopy(request: {
    srcIoasId: number;
    dstIoasId: number;
    srcIova: bigint;
    length: bigint;
    dstIova?: bigint;
    readable: boolean;
    writeable: boolean;
  }): bigint {
    const r = objectArg<typeof request>(request, 'copy request');
    const src = this.ioas(r.srcIoasId);
    const dst = this.ioas(r.dstIoasId);
    const srcIova = u64Arg(r.srcIova, 'source IOVA');
    const length = u64Arg(r.length, 'length');
    const dstIova = optionalU64Arg(r.dstIova, 'destination IOVA');
    const prot = { read: boolArg(r.readable, 'readable'), write: boolArg(r.writeable, 'writeable') };
    // Linux iommufd_ioas_copy / iopt_get_pages.
    if (length >= U64_MAX || srcIova >= U64_MAX || (dstIova ?? 0n) >= U64_MAX)
      throw new IommufdError('EOVERFLOW', 'IOVA or length is ULONG_MAX or more');
    if (!prot.read && !prot.write) throw new IommufdError('EINVAL', 'copy needs READABLE or WRITEABLE');
    if (length === 0n) throw new IommufdError('EINVAL', 'copy of zero length');
    if (srcIova + length - 1n > U64_MAX)
      throw new IommufdError('EOVERFLOW', 'source range overflows 64 bits');
    const pieces = src.iopt.slice(srcIova, length);
    let at: bigint | undefined = dstIova;
    let first: bigint | undefined;
    const made: bigint[] = [];
    try {
      for (const piece of pieces) {
        const mapped = dst.iopt.map(at, piece.memory, piece.offset, piece.length, prot);
        first ??= mapped;
        made.push(mapped);
        at = mapped + piece.length;
      }
    } catch (error) {
      for (const m of made) dst.iopt.unmap(m, pieces[made.indexOf(m)]!.length);
      throw error;
    }
    return first!;
  }

  /** `IOMMU_IOAS_ALLOW_IOVAS`: replaces the allowed ranges (inclusive `last`); empty clears them. */
  ioasAllowIovas(ioasId: number, ranges: readonly { start: bigint; last: bigint }[]): void {
    const ioas = this.ioas(ioasId);
    const checked = arrayArg<unknown>(ranges, 'allowed ranges').map((range, i) => {
      const r = objectArg<{ start: unknown; last: unknown }>(range, `range ${i}`);
      return { start: u64Arg(r.start, `range ${i} start`), last: u64Arg(r.last, `range ${i} last`) };
    });
    ioas.iopt.setAllowed(checked);
  }

  /** `IOMMU_IOAS_IOVA_RANGES`: usable holes (complement of reserved ranges) and the required alignment. */
  ioasIovaRanges(ioasId: number): { ranges: { start: bigint; last: bigint }[]; alignment: bigint } {
    const iopt = this.ioas(ioasId).iopt;
    return { ranges: iopt.iovaRanges(), alignment: iopt.iovaAlignment };
  }

  /** `IOMMU_OPTION` `IOMMU_OPTION_HUGE_PAGES` on an IOAS. */
  ioasSetHugePages(ioasId: number, enabled: boolean): void {
    this.ioas(ioasId).iopt.setHugePages(boolArg(enabled, 'huge pages'));
  }

  // --- HWPT ----------------------------------------------------------------------------------------

  /** `IOMMU_HWPT_ALLOC`: a paging HWPT on an IOAS, or a nested one on a nest-parent HWPT or vIOMMU. */
  hwptAlloc(request: HwptAllocRequest): number {
    const r = objectArg<HwptAllocRequest>(request, 'HWPT_ALLOC request');
    const device = this.device(r.devId);
    const flags = flagsArg(r.flags, 'flags', ['nestParent', 'dirtyTracking', 'pasid'] as const);
    const faultId = optionalU32Arg(r.faultId, 'fault_id');
    const pt = this.hwptParent(u32Arg(r.ptId, 'pt_id'));
    let hwpt: HwptObjectType;
    if (pt.type === 'ioas') hwpt = this.allocPaging(device, pt, flags, faultId !== undefined, false);
    else hwpt = this.allocNested(device, pt, flags, r.data);
    // Linux iommufd_hwpt_alloc looks the fault queue up only once the HWPT exists: flag errors come first.
    if (faultId !== undefined) {
      let fault: FaultObject;
      try {
        fault = this.table.get<FaultObject>(faultId, 'fault');
      } catch (error) {
        this.table.remove(hwpt);
        throw error;
      }
      hwpt.useFault(fault);
      this.core.setIopfHandler(hwpt.domain, (dev, req) => fault.enqueue(dev, this.devIdOf(dev), req));
    }
    this.log('hwpt.alloc', `HWPT ${hwpt.id} (${hwpt.type}) on object ${pt.id}`, {
      hwptId: hwpt.id,
      ptId: pt.id,
      type: hwpt.type,
    });
    return hwpt.id;
  }

  /**
   * `IOMMU_HWPT_INVALIDATE` on a nested HWPT or a vIOMMU: vendor entries in order. On the first failing
   * entry it throws that entry's error with `context.handled` = entries that took effect before it.
   */
  hwptInvalidate(id: number, entries: readonly unknown[]): InvalidateOutcome {
    id = u32Arg(id, 'hwpt_id');
    entries = arrayArg(entries, 'entries');
    const target = this.table.get<HwptObjectType | ViommuObject>(id);
    let result: InvalidationResult;
    if (target.type !== 'hwpt-nested' && target.type !== 'viommu')
      throw new IommufdError(
        'EINVAL',
        `object ${id} is a ${target.type}: invalidate a nested HWPT or a vIOMMU`,
      );
    if (target.type === 'viommu') result = target.driverObject.cacheInvalidate(entries);
    else if (target.domain.cacheInvalidateUser) result = target.domain.cacheInvalidateUser(entries);
    else throw new IommufdError('EOPNOTSUPP', `HWPT ${id} has no user-managed caches`);
    this.log(
      'hwpt.invalidate',
      `invalidate on object ${id}: ${result.handled}/${entries.length} entries handled`,
      {
        id,
        handled: result.handled,
        entries: entries.length,
      },
    );
    if (result.error) {
      throw new IommufdError(
        result.error.code,
        result.error.message.replace(/^\w+: /, ''),
        { ...result.error.context, handled: result.handled },
        {
          cause: result.error,
        },
      );
    }
    return { handled: result.handled };
  }

  /** `IOMMU_HWPT_SET_DIRTY_TRACKING`: enabling first clears the dirty state of every mapped page. */
  hwptSetDirtyTracking(hwptId: number, enabled: boolean): void {
    const hwpt = this.table.get<HwptPagingObject>(u32Arg(hwptId, 'hwpt_id'), 'hwpt-paging');
    enabled = boolArg(enabled, 'enabled');
    const domain = hwpt.domain;
    if (!hwpt.flags.dirtyTracking || !domain.setDirtyTracking || !domain.readAndClearDirty) {
      throw new IommufdError('EOPNOTSUPP', `HWPT ${hwptId} was not allocated with dirty tracking`);
    }
    if (enabled)
      for (const area of hwpt.ioas.iopt.listAreas())
        domain.readAndClearDirty(makeIova(area.iova), area.length, () => {}, true);
    domain.setDirtyTracking(enabled);
  }

  /**
   * `IOMMU_HWPT_GET_DIRTY_BITMAP`: sets bit n of `request.bitmap` when page n (of `pageSize` bytes) of
   * `[iova, +length)` was written; clears the dirty state as it reads unless `noClear`.
   */
  hwptGetDirtyBitmap(hwptId: number, request: DirtyBitmapRequest): void {
    readDirtyBitmap(this.table.get<HwptPagingObject>(u32Arg(hwptId, 'hwpt_id'), 'hwpt-paging'), request);
  }

  // --- vIOMMU, vDEVICE, vEVENTQ, FAULT -------------------------------------------------------------

  /** `IOMMU_VIOMMU_ALLOC` on a nest-parent paging HWPT, for the IOMMU behind `devId`. */
  viommuAlloc(devId: number, hwptId: number, type: string): number {
    const device = this.device(devId);
    const parent = this.table.get<HwptPagingObject>(u32Arg(hwptId, 'hwpt_id'), 'hwpt-paging');
    type = stringArg(type, 'vIOMMU type');
    if (type === 'default') throw new IommufdError('EOPNOTSUPP', 'vIOMMU type "default" is not allocatable');
    if (!parent.flags.nestParent) throw new IommufdError('EINVAL', `HWPT ${hwptId} is not a nest parent`);
    if (parent.driver !== device.driver)
      throw new IommufdError('EINVAL', `HWPT ${hwptId} is on another IOMMU than ${device.device.name}`);
    if (!device.driver.viommuAlloc)
      throw new IommufdError('EOPNOTSUPP', `${device.driver.instance} has no vIOMMU support`);
    // The driver reports events before the object exists only if it misbehaves; route them once it does.
    const sink = {
      target: undefined as ViommuObject | undefined,
      report: (t: string, r: Uint32Array) => sink.target?.report(t, r),
    };
    const driverObject = device.driver.viommuAlloc(parent.domain, type, sink);
    const viommu = this.table.add(new ViommuObject(parent, device.driver, type, driverObject));
    sink.target = viommu;
    this.log('viommu.alloc', `vIOMMU ${viommu.id} (${type}) on HWPT ${hwptId}`, {
      viommuId: viommu.id,
      hwptId,
      type,
    });
    return viommu.id;
  }

  /** `IOMMU_VDEVICE_ALLOC`: binds `virtId` to a device on the vIOMMU. */
  vdeviceAlloc(viommuId: number, devId: number, virtId: bigint): number {
    const viommu = this.table.get<ViommuObject>(u32Arg(viommuId, 'viommu_id'), 'viommu');
    const device = this.device(devId);
    // One key type for the vIOMMU's table: 8 and 8n are the same virtual ID.
    virtId = u64Arg(virtId, 'virtual ID');
    if (device.driver !== viommu.driver)
      throw new IommufdError(
        'EINVAL',
        `${device.device.name} is behind another IOMMU than vIOMMU ${viommuId}`,
      );
    if (device.vdevice)
      throw new IommufdError('EEXIST', `${device.device.name} already has vDEVICE ${device.vdevice.id}`);
    if (viommu.vdevices.has(virtId))
      throw new IommufdError('EEXIST', `virtual ID ${toHex(virtId)} is taken on vIOMMU ${viommuId}`);
    viommu.driverObject.vdeviceAlloc(device.device, virtId);
    const vdevice = this.table.add(new VdeviceObject(viommu, device, virtId));
    this.log(
      'vdevice.alloc',
      `vDEVICE ${vdevice.id}: ${device.device.name} is virtual ID ${toHex(virtId)} on vIOMMU ${viommuId}`,
      {
        vdeviceId: vdevice.id,
        virtId,
      },
    );
    return vdevice.id;
  }

  /** `IOMMU_VEVENTQ_ALLOC`: one queue per (vIOMMU, event type). */
  veventqAlloc(viommuId: number, type: string, depth: number): number {
    const viommu = this.table.get<ViommuObject>(u32Arg(viommuId, 'viommu_id'), 'viommu');
    type = stringArg(type, 'vEVENTQ type');
    depth = u32Arg(depth, 'depth');
    if (type === 'default') throw new IommufdError('EOPNOTSUPP', 'vEVENTQ type "default" is not allocatable');
    if (depth === 0) throw new IommufdError('EINVAL', `vEVENTQ depth ${depth} must be positive`);
    if (viommu.veventqs.has(type))
      throw new IommufdError('EEXIST', `vIOMMU ${viommuId} already has a ${type} vEVENTQ`);
    return this.table.add(new VeventqObject(viommu, type, depth)).id;
  }

  /** Reads (and frees) events from a vEVENTQ. */
  veventqRead(veventqId: number, max?: number): Vevent[] {
    const queue = this.table.get<VeventqObject>(u32Arg(veventqId, 'veventq_id'), 'veventq');
    return queue.read(optionalU32Arg(max, 'max'));
  }

  /** `IOMMU_FAULT_QUEUE_ALLOC`. */
  faultQueueAlloc(): number {
    this.live();
    return this.table.add(new FaultObject(this.core)).id;
  }

  /** Reads whole fault groups from a FAULT object. */
  faultRead(faultId: number): PageFaultRecord[] {
    return this.table.get<FaultObject>(u32Arg(faultId, 'fault_id'), 'fault').read();
  }

  /** Answers a fault group by cookie; `EINVAL` for an unknown cookie. */
  faultRespond(faultId: number, cookie: number, code: FaultResponseCode): void {
    const fault = this.table.get<FaultObject>(u32Arg(faultId, 'fault_id'), 'fault');
    if (code !== 'success' && code !== 'invalid')
      throw new IommufdError('EINVAL', `page response code must be "success" or "invalid"`);
    fault.respond(u32Arg(cookie, 'cookie'), code);
  }

  // --- internals -----------------------------------------------------------------------------------

  private readonly makeAuto = (device: DeviceObject, ioas: IoasObject): HwptPagingObject =>
    this.allocPaging(device, ioas, {}, false, true);

  private allocPaging(
    device: DeviceObject,
    ioas: IoasObject,
    flags: PagingDomainFlags,
    withFault: boolean,
    autoDomain: boolean,
  ) {
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
    return this.table.add(new HwptPagingObject(ioas, domain, device.driver, hwptFlags, this.core));
  }

  private allocNested(
    device: DeviceObject,
    pt: HwptPagingObject | ViommuObject,
    flags: PagingDomainFlags,
    data: unknown,
  ) {
    // Linux iommufd_hwpt_alloc checks a vIOMMU's IOMMU first; iommufd_hwpt_nested_alloc and
    // iommufd_viommu_alloc_hwpt_nested then refuse other flags and no vendor data (`!user_data->len`) as
    // EOPNOTSUPP, before the parent's checks.
    if (pt.type === 'viommu' && pt.driver !== device.driver)
      throw new IommufdError('EINVAL', `${device.device.name} is behind another IOMMU than vIOMMU ${pt.id}`);
    if (flags.nestParent || flags.dirtyTracking)
      throw new IommufdError('EOPNOTSUPP', 'a nested HWPT takes only the PASID flag');
    if (data === undefined) throw new IommufdError('EOPNOTSUPP', 'a nested HWPT needs vendor data');
    const parent = pt.type === 'viommu' ? pt.parent : pt;
    if (!parent.flags.nestParent || parent.flags.autoDomain)
      throw new IommufdError('EINVAL', `HWPT ${parent.id} is not a nest parent`);
    if (parent.driver !== device.driver)
      throw new IommufdError(
        'EINVAL',
        `${device.device.name} is behind another IOMMU than HWPT ${parent.id}`,
      );
    let domain: IommuDomain;
    if (pt.type === 'viommu') domain = pt.driverObject.domainAllocNested(data);
    else if (device.driver.domainAllocNested) domain = device.driver.domainAllocNested(parent.domain, data);
    else throw new IommufdError('EOPNOTSUPP', `${device.driver.instance} nests only through a vIOMMU`);
    const hwptFlags: HwptFlags = {
      autoDomain: false,
      nestParent: false,
      dirtyTracking: false,
      pasidCompat: flags.pasid ?? false,
    };
    const viommu = pt.type === 'viommu' ? pt : undefined;
    return this.table.add(new HwptNestedObject(parent, viommu, domain, device.driver, hwptFlags, this.core));
  }

  private ioas(id: number): IoasObject {
    return this.table.get<IoasObject>(u32Arg(id, 'ioas_id'), 'ioas');
  }

  private device(id: number): DeviceObject {
    return this.table.get<DeviceObject>(u32Arg(id, 'dev_id'), 'device');
  }

  /** HWPT_ALLOC's `pt_id`: an IOAS, a paging HWPT or a vIOMMU; anything else, or nothing, is `EINVAL`. */
  private hwptParent(ptId: number): IoasObject | HwptPagingObject | ViommuObject {
    const pt = this.table.find(ptId);
    if (pt instanceof IoasObject || pt instanceof HwptPagingObject || pt instanceof ViommuObject) return pt;
    throw new IommufdError(
      'EINVAL',
      `object ${ptId} ${pt ? `is a ${pt.type}` : 'does not exist'}: a HWPT is allocated on an IOAS, a paging HWPT or a vIOMMU`,
      { ptId },
    );
  }

  private devIdOf(device: IommuDeviceRef): number {
    const object = this.table
      .list()
      .find((o): o is DeviceObject => o instanceof DeviceObject && o.device === device);
    return object?.id ?? 0;
  }

  private live(): void {
    if (this.closed) throw new IommufdError('EINVAL', 'the iommufd context is closed');
  }

  private log(
    name: string,
    message: string,
    args: Record<string, bigint | number | string | undefined>,
  ): void {
    if (!this.tracer.enabled) return;
    const clean: Record<string, bigint | number | string> = {};
    for (const [k, v] of Object.entries(args)) if (v !== undefined) clean[k] = v;
    this.tracer.trace('iommufd', 'iommufd', name, message, clean);
  }
}

function pasidText(pasid: number): string {
  return pasid === NO_PASID ? '' : ` PASID ${pasid}`;
}
