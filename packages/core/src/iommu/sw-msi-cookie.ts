/**
 * The SW MSI cookie of a paging domain (Linux dma-iommu `iommu_dma_prepare_msi` /
 * `iommu_dma_get_msi_page`): the kernel maps each MSI doorbell page a device of the domain needs into the
 * device's SW MSI window, one IOVA page per doorbell page, in the order they are first asked for, and
 * rewrites the device's MSI address to that IOVA. The MSI write is then an ordinary DMA write the IOMMU
 * translates.
 */
import { alignDown, type Hpa, hpa, type Iova, iova, PAGE_SIZE } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuDomain, ReservedRegion } from './driver.js';

const PAGE = BigInt(PAGE_SIZE);

export class SwMsiCookie {
  /** IOVA page of each doorbell page mapped so far. */
  private readonly pages = new Map<bigint, bigint>();

  constructor(
    readonly domain: IommuDomain,
    readonly window: Pick<ReservedRegion, 'start' | 'length'>,
  ) {}

  /** Maps the page holding `doorbell` (once) and returns the IOVA a device must write its MSIs to. */
  map(doorbell: Hpa): Iova {
    const page = alignDown(doorbell, PAGE);
    let at = this.pages.get(page);
    if (at === undefined) {
      at = this.window.start + BigInt(this.pages.size) * PAGE;
      if (at + PAGE > this.window.start + this.window.length)
        throw new IommufdError('ENOSPC', 'the SW MSI window is full');
      this.domain.map(iova(at), hpa(page), PAGE, { read: false, write: true });
      this.pages.set(page, at);
    }
    return iova(at + (doorbell - page));
  }

  /** Doorbell pages mapped so far and their IOVAs. */
  mapped(): { readonly doorbellPage: bigint; readonly iova: bigint }[] {
    return [...this.pages].map(([doorbellPage, at]) => ({ doorbellPage, iova: at }));
  }
}
