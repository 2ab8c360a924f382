/**
 * The contract between the iommu core and a vendor's host driver, in the shape of Linux's `iommu_ops` and
 * `iommu_domain_ops`. A driver reaches its hardware only through MMIO registers and structures in memory
 * (DESIGN.md §1): its context gives it the bus and its register base, never the hardware model object.
 *
 * This is the first version of the contract; the iommufd work (nested domains, vIOMMU, PASID attach, user
 * invalidation) extends it with optional members so existing drivers keep working.
 */
import type { Hpa, Iova } from '../address/address.js';
import type { IommuFault } from './translation.js';

export type DomainType = 'blocked' | 'identity' | 'paging' | 'nested' | 'sva';

/** Mapping protection, as `IOMMU_READ | IOMMU_WRITE` in Linux. */
export interface Prot {
  readonly read: boolean;
  readonly write: boolean;
  readonly exec?: boolean;
  readonly priv?: boolean;
}

/** What a driver knows about an endpoint (Linux: `struct device` + `iommu_fwspec` + PCI capabilities). */
export interface IommuDeviceRef {
  readonly name: string;
  /** PCI requester ID: bus << 8 | device << 3 | function. */
  readonly rid: number;
  /** The ID the IOMMU sees (SMMUv3 StreamID, VT-d source-id, AMD DeviceID). */
  readonly streamId: number;
  /** PASID capability width in bits (0: no PASID capability). */
  readonly pasidBits: number;
  /** The endpoint's PCI capabilities a driver may enable (config-space writes, not IOMMU back doors). */
  readonly pci: DevicePciControl;
}

export interface DevicePciControl {
  readonly hasAts: boolean;
  readonly hasPri: boolean;
  readonly hasPasid: boolean;
  setAtsEnabled(enabled: boolean): void;
  setPriEnabled(enabled: boolean): void;
  setPasidEnabled(enabled: boolean): void;
}

export interface IommuDomain {
  /** Driver-unique id (an ASID, domain-id or similar is the driver's business). */
  readonly id: number;
  readonly type: DomainType;
  /** Page sizes the domain can map, one bit per size (bit 12 = 4 KiB). */
  readonly pgsizeBitmap: bigint;
  /** Inclusive IOVA range the domain can translate. */
  readonly aperture: { readonly start: Iova; readonly end: Iova };
  /** Maps `[iova, iova + size)` to `[paddr, …)`; `EEXIST` if any part is mapped, `EINVAL` if misaligned. */
  map(iova: Iova, paddr: Hpa, size: bigint, prot: Prot): void;
  /**
   * Unmaps `[iova, iova + size)` and returns the bytes unmapped. The TLB invalidation it needs is only
   * queued; it is complete when {@link iotlbSync} returns.
   */
  unmap(iova: Iova, size: bigint): bigint;
  /** Completes every invalidation queued by `unmap` (Linux `iotlb_sync`). */
  iotlbSync(): void;
  /** Software walk of the domain's page table (Linux `iova_to_phys`). */
  iovaToPhys(iova: Iova): Hpa | undefined;
  /** Releases the domain's tables and ids; the domain must not be attached. */
  free(): void;
}

export interface IommuDriver {
  readonly instance: string;
  /** Brings the hardware up from its ID registers: allocate queues and tables, enable translation. */
  probe(): void;
  /** Prepares per-device structures (Linux `probe_device`); the device starts blocked. */
  probeDevice(device: IommuDeviceRef): void;
  /** Tears down what `probeDevice` set up; the device is left blocked. */
  releaseDevice(device: IommuDeviceRef): void;
  /** Allocates an empty paging domain (Linux `domain_alloc_paging`). */
  domainAllocPaging(): IommuDomain;
  /** The domain that blocks all DMA. */
  readonly blockedDomain: IommuDomain;
  /** The domain that passes DMA through untranslated, when the hardware has bypass. */
  readonly identityDomain?: IommuDomain;
  /**
   * Attaches the device's RID (no PASID) to `domain`, replacing whatever it had, hitlessly where the
   * hardware allows. Throws `EINVAL` when the domain cannot serve this device.
   */
  attachDev(domain: IommuDomain, device: IommuDeviceRef): void;
  /** Disables translation and releases what `probe` allocated. */
  shutdown(): void;
}

/** How a driver reports an event the hardware logged (its IRQ handler calls this). */
export type FaultReporter = (fault: IommuFault, device: IommuDeviceRef | undefined) => void;
