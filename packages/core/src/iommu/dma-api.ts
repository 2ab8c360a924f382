/**
 * The kernel DMA API on an IOMMU (Linux dma-iommu.c): a device the kernel drives itself gets a paging
 * domain of its own; `map` hands out IOVAs from an allocator over the domain's aperture minus the
 * device's reserved regions, and `unmap` returns only once the IOTLB invalidation has completed. The SW
 * MSI cookie maps MSI doorbell pages into the device's SW MSI window, so an MSI write (a DMA to an IOVA)
 * reaches the interrupt controller through the IOMMU.
 */
import { alignUp, type Hpa, hpa, type Iova, iova as makeIova, PAGE_SIZE, toHex } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuDeviceRef, IommuDomain, Prot } from './driver.js';
import type { IommuCore } from './iommu-core.js';
import { IovaAllocator } from './iova-allocator.js';
import type { SwMsiWindow } from './sw-msi-cookie.js';

const PAGE = BigInt(PAGE_SIZE);

export class DmaApiDomain {
  readonly domain: IommuDomain;
  private readonly iovas: IovaAllocator;
  /** The SW MSI window (Linux `iommu_get_msi_cookie`), if the driver reserves one. */
  readonly msiWindow: SwMsiWindow | undefined;
  private readonly mappings = new Map<bigint, bigint>();

  constructor(
    readonly device: IommuDeviceRef,
    private readonly core: IommuCore,
  ) {
    const driver = core.driverOf(device);
    this.domain = driver.domainAllocPaging();
    const reserved = driver.reservedRegions?.(device) ?? [];
    this.msiWindow = reserved.find((r) => r.type === 'sw-msi');
    // IOVA 0 is never handed out.
    // Stryker disable next-line EqualityOperator: an aperture starting at PAGE gives the start PAGE either way
    const start = this.domain.aperture.start > PAGE ? this.domain.aperture.start : PAGE;
    this.iovas = new IovaAllocator(start, this.domain.aperture.end, reserved);
    try {
      core.attachDevice(device, this.domain);
    } catch (error) {
      this.domain.free();
      throw error;
    }
  }

  /** `dma_map_single`: maps `[paddr, paddr + size)` and returns the IOVA the device uses for `paddr`. */
  map(paddr: Hpa, size: bigint, prot: Prot): Iova {
    if (size <= 0n) throw new IommufdError('EINVAL', 'DMA mapping of zero length');
    const offset = paddr % PAGE;
    const length = alignUp(offset + size, PAGE);
    const base = this.iovas.alloc(length, PAGE);
    this.domain.map(makeIova(base), hpa(paddr - offset), length, prot);
    this.mappings.set(base, length);
    return makeIova(base + offset);
  }

  /** `dma_unmap_single`: unmaps the mapping `map` returned `iova` for; returns after the IOTLB flush. */
  unmap(iova: Iova): void {
    const base = iova - (iova % PAGE);
    const length = this.mappings.get(base);
    if (length === undefined) throw new IommufdError('EINVAL', `no DMA mapping at ${toHex(iova)}`);
    this.domain.unmap(makeIova(base), length);
    this.domain.iotlbSync();
    this.iovas.free(base, length);
    this.mappings.delete(base);
  }

  /**
   * SW MSI cookie (Linux `iommu_dma_prepare_msi`): maps the page holding `doorbell` into the SW MSI
   * window, once per page, and returns the IOVA the device must write its MSIs to.
   */
  mapMsiDoorbell(doorbell: Hpa): Iova {
    const window = this.msiWindow;
    if (!window) throw new IommufdError('EOPNOTSUPP', `${this.device.name} has no SW MSI window`);
    return this.core.msiCookie(this.domain, window).map(doorbell);
  }

  /**
   * Maps `[start, start + length)` one to one (an IORT RMR / IOMMU_RESV_DIRECT region the firmware
   * describes), writable only, as the kernel does for a reserved MSI region before the device runs.
   */
  mapIdentity(start: bigint, length: bigint): void {
    this.domain.map(makeIova(start), hpa(start), length, { read: false, write: true });
  }

  /** Detaches the device (back to blocked) and frees the domain. */
  release(): void {
    this.core.detachDevicePasid(this.device, -1);
    this.domain.free();
  }
}
