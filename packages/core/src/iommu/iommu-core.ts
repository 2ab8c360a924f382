/**
 * The iommu core between users (iommufd, the kernel DMA API) and vendor drivers (Linux
 * drivers/iommu/iommu.c): it knows which domain each device has at its RID and at each PASID, calls the
 * driver to change that, and routes recoverable page requests to the handler of the domain they hit.
 * Every device is its own group (PCIe devices behind ACS); multi-device groups are not modelled yet.
 */

import type { Hpa } from '../address/address.js';
import { token } from '../di/token.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuDeviceRef, IommuDomain, IommuDriver } from './driver.js';
import type { PageRequest, PageResponse } from './hardware.js';
import { inHardwareMsiWindow, SwMsiCookie, type SwMsiWindow, swMsiWindowOf } from './sw-msi-cookie.js';
import { NO_PASID } from './translation.js';

/** Handles a page request on a domain (iommufd's fault queue, SVA's fault handler). */
export type IopfHandler = (device: IommuDeviceRef, request: PageRequest) => void;

interface DeviceState {
  readonly driver: IommuDriver;
  /** Domain at the RID (NO_PASID) and at each PASID. */
  readonly domains: Map<number, IommuDomain>;
  /** The PASID table is the user's (SMMUv3 CD table, AMD GCR3 table): see {@link IommuCore.reportPageRequest}. */
  readonly userPasidTable: boolean;
  /** Domains of other instances may be attached (the plugin's `crossInstanceDomains`). */
  readonly crossInstanceDomains: boolean;
}

/** How the device's IOMMU is driven, as far as the core cares. */
export interface DeviceIommuTraits {
  /**
   * The PASID table belongs to the user of a nested domain (Linux `iommu_ops.user_pasid_table`): the
   * plugin's `pasidTableOwner` is `user`.
   */
  readonly userPasidTable: boolean;
  /** A paging domain may be attached to devices behind several instances (`crossInstanceDomains`). */
  readonly crossInstanceDomains?: boolean;
}

export const IIommuCore = token<IommuCore>('iommukit.IommuCore');

export class IommuCore {
  private readonly devices = new Map<IommuDeviceRef, DeviceState>();
  private readonly iopfHandlers = new Map<IommuDomain, IopfHandler>();
  private readonly msiCookies = new WeakMap<IommuDomain, SwMsiCookie>();

  /** Registers a probed device and its driver; it starts on the driver's blocking domain. */
  addDevice(
    device: IommuDeviceRef,
    driver: IommuDriver,
    traits: DeviceIommuTraits = { userPasidTable: false },
  ): void {
    this.devices.set(device, {
      driver,
      domains: new Map([[NO_PASID, driver.blockedDomain]]),
      userPasidTable: traits.userPasidTable,
      crossInstanceDomains: traits.crossInstanceDomains === true,
    });
  }

  removeDevice(device: IommuDeviceRef): void {
    this.devices.delete(device);
  }

  driverOf(device: IommuDeviceRef): IommuDriver {
    const state = this.devices.get(device);
    if (!state)
      throw new IommufdError('ENODEV', `${device.name} is not behind an IOMMU`, { device: device.name });
    return state.driver;
  }

  /** Whether a paging domain of another instance may be offered to the device's driver. */
  sharesDomainsAcrossInstances(device: IommuDeviceRef): boolean {
    return this.state(device).crossInstanceDomains;
  }

  /** The domain at `pasid` (NO_PASID: the RID), if any. */
  domainAt(device: IommuDeviceRef, pasid: number = NO_PASID): IommuDomain | undefined {
    return this.devices.get(device)?.domains.get(pasid);
  }

  /**
   * `iommu_dma_prepare_msi`: the address a device must write its MSIs to so they reach `doorbell`. On a
   * paging domain with a SW MSI window the doorbell page is mapped there (the domain's SW MSI cookie);
   * without an IOMMU, on an identity domain, or with a hardware MSI window the doorbell address is used
   * as it is.
   */
  prepareMsi(device: IommuDeviceRef, doorbell: Hpa): bigint {
    const state = this.devices.get(device);
    if (!state) return doorbell;
    const domain = state.domains.get(NO_PASID)!;
    if (domain.type === 'blocked')
      throw new IommufdError('EINVAL', `${device.name} is blocked: attach a domain before setting up MSIs`, {
        device: device.name,
      });
    if (domain.type === 'identity') return doorbell;
    if (inHardwareMsiWindow(state.driver, device, doorbell)) return doorbell;
    const window = swMsiWindowOf(state.driver, device);
    if (!window) return doorbell;
    return this.msiCookie(domain, window).map(doorbell);
  }

  /** The SW MSI cookie of a paging domain, made on first use with `window`. */
  msiCookie(domain: IommuDomain, window: SwMsiWindow): SwMsiCookie {
    let cookie = this.msiCookies.get(domain);
    if (!cookie) {
      cookie = new SwMsiCookie(domain, window);
      this.msiCookies.set(domain, cookie);
    }
    return cookie;
  }

  /** PASIDs that have a domain attached. */
  attachedPasids(device: IommuDeviceRef): number[] {
    return [...(this.devices.get(device)?.domains.keys() ?? [])].filter((p) => p !== NO_PASID);
  }

  /** Attaches (or replaces) the domain at the RID. The driver's error leaves the old domain in place. */
  attachDevice(device: IommuDeviceRef, domain: IommuDomain): void {
    const state = this.state(device);
    state.driver.attachDev(domain, device);
    state.domains.set(NO_PASID, domain);
  }

  /** Attaches (or replaces) the domain at a PASID; `EOPNOTSUPP` if the driver cannot. */
  attachDevicePasid(device: IommuDeviceRef, domain: IommuDomain, pasid: number): void {
    const state = this.state(device);
    if (!state.driver.setDevPasid)
      throw new IommufdError('EOPNOTSUPP', `${state.driver.instance} cannot attach at a PASID`);
    state.driver.setDevPasid(domain, device, pasid);
    state.domains.set(pasid, domain);
  }

  /** Blocks the RID (NO_PASID) or removes the domain at a PASID. */
  detachDevicePasid(device: IommuDeviceRef, pasid: number): void {
    const state = this.state(device);
    if (pasid === NO_PASID) {
      state.driver.attachDev(state.driver.blockedDomain, device);
      state.domains.set(NO_PASID, state.driver.blockedDomain);
      return;
    }
    if (!state.domains.has(pasid)) return;
    state.driver.removeDevPasid?.(device, pasid);
    state.domains.delete(pasid);
  }

  setIopfHandler(domain: IommuDomain, handler: IopfHandler | undefined): void {
    // Stryker disable next-line ConditionalExpression: a domain mapped to no handler and an absent one read the same
    if (handler) this.iopfHandlers.set(domain, handler);
    else this.iopfHandlers.delete(domain);
  }

  /**
   * A page request from a driver: to the handler of the domain it hit, or answered `invalid` at once when
   * that domain has none (Linux `iommu_report_device_fault`). A request at a PASID nothing is attached at
   * goes, where the PASID table is the user's, to the nested domain at the RID: the user's table behind it
   * is where that PASID lives (Linux `find_fault_handler`).
   */
  reportPageRequest(device: IommuDeviceRef, request: PageRequest): void {
    const state = this.devices.get(device);
    // A request from a device the core no longer knows (released mid-flight) has nobody to answer it.
    if (!state) return;
    let domain = state.domains.get(request.pasid);
    if (domain === undefined && request.pasid !== NO_PASID && state.userPasidTable) {
      const rid = state.domains.get(NO_PASID)!;
      domain = rid.type === 'nested' ? rid : undefined;
    }
    const handler = domain ? this.iopfHandlers.get(domain) : undefined;
    if (handler) {
      handler(device, request);
      return;
    }
    if (request.last)
      this.respond(device, { pasid: request.pasid, groupIndex: request.groupIndex, code: 'invalid' });
  }

  /** Sends a page response through the device's driver. */
  respond(device: IommuDeviceRef, response: PageResponse): void {
    this.state(device).driver.pageResponse?.(device, response);
  }

  private state(device: IommuDeviceRef): DeviceState {
    const state = this.devices.get(device);
    if (!state)
      throw new IommufdError('ENODEV', `${device.name} is not behind an IOMMU`, { device: device.name });
    return state;
  }
}
