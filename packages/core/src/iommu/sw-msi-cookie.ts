/**
 * The SW MSI cookie of a paging domain (Linux dma-iommu `iommu_dma_prepare_msi` /
 * `iommu_dma_get_msi_page`): the kernel maps each MSI doorbell page a device of the domain needs into the
 * device's SW MSI window, one IOVA page per doorbell page, in the order they are first asked for, and
 * rewrites the device's MSI address to that IOVA. The MSI write is then an ordinary DMA write the IOMMU
 * translates.
 */
import { alignDown, type Hpa, hpa, type Iova, iova, PAGE_SIZE } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuDeviceRef, IommuDomain, IommuDriver, ReservedRegion } from './driver.js';

const PAGE = BigInt(PAGE_SIZE);

/** A SW MSI window: where doorbell pages are mapped, one IOVA page each. */
export type SwMsiWindow = Pick<ReservedRegion, 'start' | 'length'>;

/** The SW MSI window a driver reserves for a device, if it has one (a hardware MSI window does not count). */
export function swMsiWindowOf(driver: IommuDriver, device: IommuDeviceRef): SwMsiWindow | undefined {
  return driver.reservedRegions?.(device).find((r) => r.type === 'sw-msi');
}

/**
 * Whether `address` lies in a hardware MSI window the driver reserves for the device (x86's interrupt
 * window): an MSI there is never DMA-translated, so no SW MSI mapping is made for it.
 */
export function inHardwareMsiWindow(driver: IommuDriver, device: IommuDeviceRef, address: bigint): boolean {
  return (
    driver
      .reservedRegions?.(device)
      .some((r) => r.type === 'msi' && address >= r.start && address < r.start + r.length) ?? false
  );
}

/** The IOVA page of the `index`-th doorbell page in a SW MSI window; `ENOSPC` past its end. */
export function swMsiSlot(window: SwMsiWindow, index: number): bigint {
  const at = window.start + BigInt(index) * PAGE;
  if (at + PAGE > window.start + window.length) throw new IommufdError('ENOSPC', 'the SW MSI window is full');
  return at;
}

export class SwMsiCookie {
  /** IOVA page of each doorbell page mapped so far. */
  private readonly pages = new Map<bigint, bigint>();

  constructor(
    readonly domain: IommuDomain,
    readonly window: SwMsiWindow,
  ) {}

  /** Maps the page holding `doorbell` (once) and returns the IOVA a device must write its MSIs to. */
  map(doorbell: Hpa): Iova {
    const page = alignDown(doorbell, PAGE);
    let at = this.pages.get(page);
    if (at === undefined) {
      at = swMsiSlot(this.window, this.pages.size);
      this.domain.map(iova(at), hpa(page), PAGE, { read: false, write: true });
      this.pages.set(page, at);
    }
    return iova(at + (doorbell - page));
  }
}
