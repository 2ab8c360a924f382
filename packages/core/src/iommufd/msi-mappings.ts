/**
 * MSI doorbell pages iommufd maps itself into the paging domains its devices use, so their MSI writes —
 * DMA writes to an IOVA — reach the physical interrupt controller:
 *
 * - **SW MSI** (Linux `iommufd_sw_msi`, the legacy cookie): when the host sets up a bound device's IRQs,
 *   the doorbell page goes at `sw_msi_start + n × PAGE`, where n is the page's index in this context
 *   (the same IOVA in every domain of the fd).
 * - **MSI passthrough** (`ioasMapMsi`, the direction argued upstream for MSIs through nested domains): the VMM names the GPA of its
 *   virtual controller's doorbell page, and the physical doorbell page goes there, in the VM's stage 2.
 *
 * Either way the mapping follows the device: it is installed in the paging domain the device is attached
 * to at its RID (for a nested HWPT, its stage-2 parent) and in every domain it moves to, and leaves a
 * domain with the last device that needs it. One domain can hold only one page at an address: a second
 * device wanting a different doorbell page there gets `EEXIST`, and its VMM must give it its own HWPT.
 */
import { alignDown, hpa, iova, PAGE_SIZE, toHex, U64_MAX } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuDomain } from '../iommu/driver.js';
import { type SwMsiWindow, swMsiSlot } from '../iommu/sw-msi-cookie.js';
import type { IoasObject } from './ioas.js';

const PAGE = BigInt(PAGE_SIZE);

/** One doorbell page a device needs at an IOVA page. */
export interface MsiMapping {
  readonly kind: 'sw-msi' | 'passthrough';
  readonly iovaPage: bigint;
  readonly doorbellPage: bigint;
  /** Passthrough mappings belong to one IOAS (the VM's GPA space); SW MSI ones go into any domain. */
  readonly ioas: IoasObject | undefined;
}

interface Installed {
  readonly doorbellPage: bigint;
  readonly users: Set<object>;
}

/** The paging domain a device's MSI mappings go into, and the IOAS it belongs to. */
export interface MsiTarget {
  readonly domain: IommuDomain;
  readonly ioas: IoasObject;
}

export class MsiMappings {
  /** SW MSI doorbell pages in the order first set up: the index decides the IOVA. */
  private readonly swMsiPages: bigint[] = [];
  /** The context's own SW MSI window (IOMMU_OPTION_SW_MSI_START/SIZE), if the user moved it. */
  private swMsiWindow: SwMsiWindow | undefined;
  private readonly byDevice = new Map<object, MsiMapping[]>();
  private readonly installed = new Map<IommuDomain, Map<bigint, Installed>>();

  /**
   * Moves the context's SW MSI window: `EOVERFLOW` past 2^64 − 1, `EINVAL` unless whole pages, `EBUSY`
   * once a SW MSI doorbell is mapped in the old one.
   */
  setSwMsiWindow(start: bigint, length: bigint): void {
    if (start + length - 1n > U64_MAX) throw new IommufdError('EOVERFLOW', 'SW MSI window overflows 64 bits');
    if (start % PAGE !== 0n || length <= 0n || length % PAGE !== 0n)
      throw new IommufdError('EINVAL', `SW MSI window ${toHex(start)}+${toHex(length)} is not whole pages`);
    if (this.swMsiPages.length > 0)
      throw new IommufdError('EBUSY', 'SW MSI doorbells are already mapped in the old window');
    this.swMsiWindow = { start, length };
  }

  /**
   * SW MSI: `device` needs the page of `doorbell` at its slot in the context's window (else `reserved`,
   * the driver's); installs it in `target`, if any, and returns the address the device writes MSIs to.
   */
  addSwMsi(device: object, reserved: SwMsiWindow, doorbell: bigint, target: MsiTarget | undefined): bigint {
    const doorbellPage = alignDown(doorbell, PAGE);
    const iovaPage = this.swMsiIovaPage(this.swMsiWindow ?? reserved, doorbellPage);
    this.add(device, { kind: 'sw-msi', iovaPage, doorbellPage, ioas: undefined }, target);
    return iovaPage + (doorbell - doorbellPage);
  }

  /**
   * MSI passthrough: `device` needs its doorbell page at page `gpa` of `ioas`, which reserves it; installs
   * it in `target`, if any, and returns the doorbell page. `EINVAL` unaligned, `EEXIST` over memory the
   * IOAS maps. On failure nothing changes.
   */
  addPassthrough(
    device: object,
    ioas: IoasObject,
    gpa: bigint,
    doorbellPage: bigint,
    target: MsiTarget | undefined,
  ): bigint {
    if (gpa % PAGE !== 0n) throw new IommufdError('EINVAL', `MSI GPA ${toHex(gpa)} is not page aligned`);
    if (ioas.iopt.overlapsArea(gpa, PAGE))
      throw new IommufdError('EEXIST', `IOAS ${ioas.id} maps memory at ${toHex(gpa)}`);
    const mapping = { kind: 'passthrough', iovaPage: gpa, doorbellPage, ioas } as const;
    ioas.iopt.reserve(mapping, gpa, PAGE);
    try {
      this.add(device, mapping, target);
    } catch (error) {
      ioas.iopt.releaseReserved(mapping);
      throw error;
    }
    return doorbellPage;
  }

  /** Mappings a device holds. */
  of(device: object): readonly MsiMapping[] {
    return this.byDevice.get(device) ?? [];
  }

  /**
   * Records a mapping for `device` and installs it in `target` (its current domain), if any. On `EEXIST`
   * nothing is recorded. A mapping the device already has is a no-op.
   */
  add(device: object, mapping: MsiMapping, target: MsiTarget | undefined): void {
    const list = this.byDevice.get(device) ?? [];
    if (list.some((m) => m.iovaPage === mapping.iovaPage && m.doorbellPage === mapping.doorbellPage)) return;
    if (list.some((m) => m.iovaPage === mapping.iovaPage)) {
      throw new IommufdError(
        'EEXIST',
        `the device already has another MSI doorbell at ${toHex(mapping.iovaPage)}`,
      );
    }
    if (target && applies(mapping, target)) this.installOne(device, mapping, target.domain);
    list.push(mapping);
    this.byDevice.set(device, list);
  }

  /** Installs every mapping of `device` that applies to `target`; all or nothing. */
  install(device: object, target: MsiTarget): void {
    const done: MsiMapping[] = [];
    try {
      for (const mapping of this.of(device)) {
        if (!applies(mapping, target)) continue;
        this.installOne(device, mapping, target.domain);
        done.push(mapping);
      }
    } catch (error) {
      for (const mapping of done) this.uninstallOne(device, mapping, target.domain);
      throw error;
    }
  }

  /** Drops `device`'s use of its mappings in `domain`; a page no device uses any more is unmapped. */
  uninstall(device: object, domain: IommuDomain): void {
    for (const mapping of this.of(device)) this.uninstallOne(device, mapping, domain);
  }

  /** Forgets a device (after it left every domain). */
  forget(device: object): void {
    this.byDevice.delete(device);
  }

  /** What is installed in a domain (for inspection). */
  installedIn(
    domain: IommuDomain,
  ): { readonly iovaPage: bigint; readonly doorbellPage: bigint; readonly users: number }[] {
    return [...(this.installed.get(domain) ?? [])].map(([iovaPage, i]) => ({
      iovaPage,
      doorbellPage: i.doorbellPage,
      users: i.users.size,
    }));
  }

  /** The SW MSI IOVA page for a doorbell page in this context (allocated on first use). */
  private swMsiIovaPage(window: SwMsiWindow, doorbellPage: bigint): bigint {
    const known = this.swMsiPages.indexOf(doorbellPage);
    const at = swMsiSlot(window, known < 0 ? this.swMsiPages.length : known);
    if (known < 0) this.swMsiPages.push(doorbellPage);
    return at;
  }

  private installOne(device: object, mapping: MsiMapping, domain: IommuDomain): void {
    let pages = this.installed.get(domain);
    const present = pages?.get(mapping.iovaPage);
    if (present) {
      if (present.doorbellPage !== mapping.doorbellPage) {
        throw new IommufdError(
          'EEXIST',
          `IOVA ${toHex(mapping.iovaPage)} of domain #${domain.id} already maps MSI doorbell page ${toHex(present.doorbellPage)}, not ${toHex(mapping.doorbellPage)}`,
          { domain: domain.id },
        );
      }
      present.users.add(device);
      return;
    }
    domain.map(iova(mapping.iovaPage), hpa(mapping.doorbellPage), PAGE, { read: false, write: true });
    if (!pages) {
      pages = new Map();
      this.installed.set(domain, pages);
    }
    pages.set(mapping.iovaPage, { doorbellPage: mapping.doorbellPage, users: new Set([device]) });
  }

  private uninstallOne(device: object, mapping: MsiMapping, domain: IommuDomain): void {
    const pages = this.installed.get(domain);
    const present = pages?.get(mapping.iovaPage);
    if (!present?.users.delete(device) || present.users.size > 0) return;
    pages!.delete(mapping.iovaPage);
    if (pages!.size === 0) this.installed.delete(domain);
    domain.unmap(iova(mapping.iovaPage), PAGE);
    domain.iotlbSync();
  }
}

function applies(mapping: MsiMapping, target: MsiTarget): boolean {
  return mapping.ioas === undefined || mapping.ioas === target.ioas;
}
