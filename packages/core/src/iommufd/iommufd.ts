/**
 * An iommufd context — one "open /dev/iommu" — and its operations, in the shape and with the error rules
 * of the Linux iommufd uAPI (docs/iommufd.md lists them). Objects are referred to by ID, as ioctls do;
 * each method names the ioctl it models.
 */
import type { Hpa } from '../address/address.js';
import { toHex } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { HwInfo, IommuDeviceRef } from '../iommu/driver.js';
import type { IommuCore } from '../iommu/iommu-core.js';
import { PasidAllocator } from '../iommu/pasid-allocator.js';
import { inHardwareMsiWindow, swMsiWindowOf } from '../iommu/sw-msi-cookie.js';
import { NO_PASID } from '../iommu/translation.js';
import type { MsiDoorbell } from '../msi/msi-controller.js';
import type { TraceArgs } from '../trace/trace-record.js';
import type { ITracer } from '../trace/tracer.js';
import {
  arrayArg,
  boolArg,
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
import type { HwptObjectType, HwptPagingObject } from './hw-pagetable.js';
import { allocHwpt, allocPagingHwpt, type HwptAllocRequest } from './hwpt-alloc.js';
import { type InvalidateOutcome, invalidateUserCaches, invalidationError } from './hwpt-invalidate.js';
import { IoasObject } from './ioas.js';
import { type CopyRequest, copyIoas } from './ioas-copy.js';
import { MsiMappings } from './msi-mappings.js';
import { hold, ObjectTable, release } from './object-table.js';
import { type UserMemory, userMemoryArg } from './user-memory.js';
import type { VdeviceObject, Vevent, VeventqObject, ViommuObject } from './viommu.js';
import { allocVdevice, allocVeventq, allocViommu } from './viommu-alloc.js';

export type { DirtyBitmap, DirtyBitmapRequest } from './dirty-bitmap.js';
export type { HwptAllocRequest } from './hwpt-alloc.js';
export type { InvalidateOutcome } from './hwpt-invalidate.js';
export type { CopyRequest } from './ioas-copy.js';

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
    /** The system's PASID space, where vDEVICEs take the physical PASIDs of guest ones. */
    private readonly pasids: PasidAllocator = new PasidAllocator(),
  ) {}

  // --- objects -------------------------------------------------------------------------------------

  /** `IOMMU_DESTROY`: `ENOENT` for an unknown (or tombstoned) ID, `EBUSY` while the object is in use. */
  destroy(id: number): void {
    this.live();
    id = u32Arg(id, 'object ID');
    this.table.destroy(id);
    if (this.tracer.enabled) this.trace('destroy', `destroy object ${id}`, { id });
  }

  /** Closing the context: every object is destroyed, leaf first, and bound devices are released. */
  close(): void {
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
    if (this.tracer.enabled)
      this.trace('device.bind', `bind ${device.name} → dev_id ${object.id}`, {
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
    if (this.tracer.enabled) this.trace('device.unbind', `unbind dev_id ${devId}`, { devId });
  }

  /** `IOMMU_GET_HW_INFO` (see `DeviceObject.hwInfo`). */
  hwInfo(devId: number): HwInfo {
    return this.device(devId).hwInfo();
  }

  /** `IOMMU_DEVICE_ATTACH` (VFIO_DEVICE_ATTACH_IOMMUFD_PT): returns the attached HWPT's ID. */
  attach(devId: number, ptId: number, pasid: number = NO_PASID): number {
    const device = this.device(devId);
    ptId = u32Arg(ptId, 'pt_id');
    pasid = pasidArg(pasid);
    const target = this.table.get<HwptObjectType | IoasObject>(ptId, 'ioas', 'hwpt-paging', 'hwpt-nested');
    const hwptId = device.attach(target, pasid, this.makeAuto);
    if (this.tracer.enabled)
      this.trace('device.attach', `attach dev_id ${devId}${pasidText(pasid)} → HWPT ${hwptId}`, {
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
    if (this.tracer.enabled)
      this.trace('device.replace', `replace dev_id ${devId}${pasidText(pasid)} → HWPT ${hwptId}`, {
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
    if (this.tracer.enabled)
      this.trace('device.detach', `detach dev_id ${devId}${pasidText(pasid)}`, { devId, pasid });
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
    // No window, or a doorbell in a hardware MSI window (x86's interrupt window): used as it is.
    if (!reserved || inHardwareMsiWindow(device.driver, device.device, doorbell)) return doorbell;
    const address = this.msi.addSwMsi(device, reserved, doorbell, device.msiTarget);
    if (this.tracer.enabled)
      this.trace(
        'msi.sw-msi',
        `dev_id ${devId}: MSI doorbell ${toHex(doorbell)} at SW MSI IOVA ${toHex(address)}`,
        { devId, doorbell, iova: address },
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
    this.msi.setSwMsiWindow(start, length);
    if (this.tracer.enabled)
      this.trace('msi.window', `SW MSI window moved to ${toHex(start)}+${toHex(length)}`, { start, length });
  }

  /**
   * `ioasMapMsi` (MSI passthrough, docs/design.md §7 flow 5): maps the page of the device's physical MSI doorbell at
   * `gpa` (the page of the VMM's virtual controller doorbell) in the IOAS's domains the device uses, and
   * keeps that range out of IOAS mappings. `EEXIST` if the IOAS maps memory there, or if a domain the
   * device is attached to already holds another device's different doorbell page there — give the
   * device its own HWPT and retry. `ENODEV` without an MSI controller; `EINVAL` for an unaligned GPA;
   * `EOPNOTSUPP` when the doorbell is in a hardware MSI window the IOMMU never translates (x86).
   */
  ioasMapMsi(ioasId: number, devId: number, gpa: bigint): void {
    const ioas = this.ioas(ioasId);
    const device = this.device(devId);
    gpa = u64Arg(gpa, 'MSI GPA');
    if (!this.msiDoorbellOf) throw new IommufdError('ENODEV', 'the system has no MSI controller');
    const doorbell = this.msiDoorbellOf(device.device);
    // An MSI to a hardware MSI window (x86's interrupt window) never goes through the IOAS: nothing to map.
    if (inHardwareMsiWindow(device.driver, device.device, doorbell.address))
      throw new IommufdError(
        'EOPNOTSUPP',
        `${doorbell.name}'s doorbell ${toHex(doorbell.address)} is in a hardware MSI window of dev_id ${devId}`,
        { devId },
      );
    const target = device.msiTarget?.ioas === ioas ? device.msiTarget : undefined;
    const doorbellPage = this.msi.addPassthrough(device, ioas, gpa, doorbell.page, target);
    if (this.tracer.enabled)
      this.trace(
        'msi.map',
        `IOAS ${ioasId}: dev_id ${devId}'s MSI doorbell page ${toHex(doorbellPage)} at GPA ${toHex(gpa)}`,
        { ioasId, devId, gpa, doorbellPage },
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
    if (this.tracer.enabled) this.trace('ioas.alloc', `IOAS ${id}`, { id });
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
    if (this.tracer.enabled)
      this.trace(
        'ioas.map',
        `IOAS ${ioas.id}: map ${memory.description} at IOVA ${toHex(iova)}+${toHex(length)}`,
        { ioasId: ioas.id, iova, length },
      );
    return iova;
  }

  /** `IOMMU_IOAS_UNMAP`: returns the bytes unmapped; `(0, 2^64 − 1)` unmaps everything. */
  ioasUnmap(ioasId: number, iova: bigint, length: bigint): bigint {
    const ioas = this.ioas(ioasId);
    iova = u64Arg(iova, 'IOVA');
    length = u64Arg(length, 'length');
    const bytes = ioas.iopt.unmap(iova, length);
    if (this.tracer.enabled)
      this.trace(
        'ioas.unmap',
        `IOAS ${ioasId}: unmap IOVA ${toHex(iova)}+${toHex(length)}: ${toHex(bytes)} bytes`,
        { ioasId, iova, length, bytes },
      );
    return bytes;
  }

  /** `IOMMU_IOAS_COPY`: maps the memory behind `[srcIova, +length)` of one IOAS into another; returns the IOVA. */
  ioasCopy(request: CopyRequest): bigint {
    const r = objectArg<CopyRequest>(request, 'copy request');
    const src = this.ioas(r.srcIoasId);
    const dst = this.ioas(r.dstIoasId);
    const srcIova = u64Arg(r.srcIova, 'source IOVA');
    const length = u64Arg(r.length, 'length');
    const dstIova = optionalU64Arg(r.dstIova, 'destination IOVA');
    const prot = { read: boolArg(r.readable, 'readable'), write: boolArg(r.writeable, 'writeable') };
    return copyIoas(src, dst, srcIova, length, dstIova, prot);
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
    const { hwpt, parent } = allocHwpt(this.table, this.core, this.device(r.devId), r);
    if (this.tracer.enabled)
      this.trace('hwpt.alloc', `HWPT ${hwpt.id} (${hwpt.type}) on object ${parent.id}`, {
        hwptId: hwpt.id,
        ptId: parent.id,
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
    const result = invalidateUserCaches(this.table.get(id), entries);
    if (this.tracer.enabled)
      this.trace(
        'hwpt.invalidate',
        `invalidate on object ${id}: ${result.handled}/${entries.length} entries handled`,
        { id, handled: result.handled, entries: entries.length },
      );
    if (result.error) throw invalidationError(result.error, result.handled);
    return { handled: result.handled };
  }

  /** `IOMMU_HWPT_SET_DIRTY_TRACKING` (see `HwptPagingObject.setDirtyTracking`). */
  hwptSetDirtyTracking(hwptId: number, enabled: boolean): void {
    const hwpt = this.table.get<HwptPagingObject>(u32Arg(hwptId, 'hwpt_id'), 'hwpt-paging');
    hwpt.setDirtyTracking(boolArg(enabled, 'enabled'));
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
    const viommu = allocViommu(this.table, device, parent, type);
    if (this.tracer.enabled)
      this.trace('viommu.alloc', `vIOMMU ${viommu.id} (${type}) on HWPT ${hwptId}`, {
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
    const vdevice = allocVdevice(this.table, viommu, device, virtId, this.pasids);
    if (this.tracer.enabled)
      this.trace(
        'vdevice.alloc',
        `vDEVICE ${vdevice.id}: ${device.device.name} is virtual ID ${toHex(virtId)} on vIOMMU ${viommuId}`,
        { vdeviceId: vdevice.id, virtId },
      );
    return vdevice.id;
  }

  // --- vPASID: a vDEVICE's guest PASIDs (vpasid.ts) --------------------------------------------------

  /**
   * A physical PASID for guest PASID `vpasid` of a vDEVICE, from the system's PASID space (`identity`: the
   * same number, `EBUSY` if the host uses it). `EINVAL` beyond the device's PASID width, `EEXIST` if mapped.
   */
  vdevicePasidMap(vdeviceId: number, vpasid: number, options: { readonly identity?: boolean } = {}): number {
    const vdevice = this.vdevice(vdeviceId);
    const ppasid = vdevice.pasids.map(u32Arg(vpasid, 'vPASID'), options.identity === true);
    if (this.tracer.enabled)
      this.trace('vdevice.pasid', `vDEVICE ${vdeviceId}: vPASID ${vpasid} is PASID ${ppasid}`, {
        vdeviceId,
        vpasid,
        ppasid,
      });
    return ppasid;
  }

  /** Gives guest PASID `vpasid`'s physical PASID back; `EBUSY` while something is attached at it. */
  vdevicePasidUnmap(vdeviceId: number, vpasid: number): void {
    const vdevice = this.vdevice(vdeviceId);
    if (vdevice.attachedVpasids.has(vpasid))
      throw new IommufdError('EBUSY', `vPASID ${vpasid} of vDEVICE ${vdeviceId} is attached`, {
        vdeviceId,
        vpasid,
      });
    vdevice.pasids.unmap(u32Arg(vpasid, 'vPASID'));
  }

  /**
   * Attaches (or replaces) `ptId` at guest PASID `vpasid` of a vDEVICE: at its physical PASID, which the
   * device's DMA then carries (the translation point ENQCMD and SIOV need). The vDEVICE is held until
   * the matching detach. `ENOENT` for an unmapped vPASID.
   */
  vdevicePasidAttach(vdeviceId: number, vpasid: number, ptId: number): number {
    const vdevice = this.vdevice(vdeviceId);
    const ppasid = vdevice.pasids.toPhysical(u32Arg(vpasid, 'vPASID'));
    const devId = vdevice.device.id;
    if (vdevice.attachedVpasids.has(vpasid)) return this.replace(devId, ptId, ppasid);
    const hwptId = this.attach(devId, ptId, ppasid);
    vdevice.attachedVpasids.add(vpasid);
    hold(vdevice);
    return hwptId;
  }

  /** Detaches guest PASID `vpasid` of a vDEVICE; `ENOENT` if nothing is attached there. */
  vdevicePasidDetach(vdeviceId: number, vpasid: number): void {
    const vdevice = this.vdevice(vdeviceId);
    if (!vdevice.attachedVpasids.delete(vpasid))
      throw new IommufdError('ENOENT', `vPASID ${vpasid} of vDEVICE ${vdeviceId} is not attached`, {
        vdeviceId,
        vpasid,
      });
    this.detach(vdevice.device.id, vdevice.pasids.toPhysical(vpasid));
    release(vdevice);
  }

  /** The guest PASID a physical one stands for on a vDEVICE (what a VMM reports to the guest), if any. */
  vdeviceVirtualPasid(vdeviceId: number, ppasid: number): number | undefined {
    return this.vdevice(vdeviceId).pasids.toVirtual(ppasid);
  }

  private vdevice(vdeviceId: number): VdeviceObject {
    return this.table.get<VdeviceObject>(u32Arg(vdeviceId, 'vdevice_id'), 'vdevice');
  }

  /** `IOMMU_VEVENTQ_ALLOC`: one queue per (vIOMMU, event type). */
  veventqAlloc(viommuId: number, type: string, depth: number): number {
    const viommu = this.table.get<ViommuObject>(u32Arg(viommuId, 'viommu_id'), 'viommu');
    type = stringArg(type, 'vEVENTQ type');
    depth = u32Arg(depth, 'depth');
    return allocVeventq(this.table, viommu, type, depth).id;
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
    allocPagingHwpt(this.table, this.core, device, ioas, {}, false, true);

  private ioas(id: number): IoasObject {
    return this.table.get<IoasObject>(u32Arg(id, 'ioas_id'), 'ioas');
  }

  private device(id: number): DeviceObject {
    return this.table.get<DeviceObject>(u32Arg(id, 'dev_id'), 'device');
  }

  private live(): void {
    if (this.closed) throw new IommufdError('EINVAL', 'the iommufd context is closed');
  }

  /** One `iommufd` trace record (the tracer drops it when tracing is off). */
  private trace(name: string, message: string, args: TraceArgs): void {
    this.tracer.trace('iommufd', 'iommufd', name, message, args);
  }
}

function pasidText(pasid: number): string {
  return pasid === NO_PASID ? '' : ` PASID ${pasid}`;
}
