/**
 * The contract between the iommu core and a vendor's host driver, in the shape of Linux's `iommu_ops` and
 * `iommu_domain_ops`. A driver reaches its hardware only through MMIO registers and structures in memory
 * (docs/design.md §1): its context gives it the bus and its register base, never the hardware model object.
 *
 * Mandatory members are what every IOMMU has (probe, paging domains, RID attach). Optional members are
 * features (PASID attach, nesting, vIOMMU, dirty tracking, page responses); each documents what the core
 * does when a driver leaves it out — usually fail the request with `EOPNOTSUPP`, as the kernel does.
 */
import type { Hpa, Iova } from '../address/address.js';
import type { IommufdError } from '../errors/iommufd-error.js';
import type { InterruptRemappingDriver } from '../msi/interrupt-remapping.js';
import type { PageRequest, PageResponse } from './hardware.js';
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
  /**
   * Firmware says the device tolerates stalled transactions (device tree `dma-can-stall`): a driver may
   * configure its faults to stall (SMMUv3 CD.S / STE.S2S) instead of terminating them.
   */
  readonly canStall?: boolean;
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

/** Flags of `domainAllocPaging`, as `IOMMU_HWPT_ALLOC_*` in the uAPI. */
export interface PagingDomainFlags {
  /** The domain will be the stage-2 parent of nested domains and vIOMMUs. */
  readonly nestParent?: boolean;
  /** The domain tracks dirty pages (the driver must support it, else `EOPNOTSUPP`). */
  readonly dirtyTracking?: boolean;
  /** The domain may be attached at a PASID. */
  readonly pasid?: boolean;
}

/** Outcome of a batch of user invalidation entries: the kernel's partial-failure convention. */
export interface InvalidationResult {
  /** Entries fully handled, in order; entries after a failure are not looked at. */
  readonly handled: number;
  /** Why entry number `handled` failed, if one did. */
  readonly error?: IommufdError;
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
  /** Turns hardware dirty tracking on or off (paging domains allocated with `dirtyTracking`). */
  setDirtyTracking?(enabled: boolean): void;
  /**
   * Reports the dirty pages in `[iova, iova + size)` by calling `record(pageIova, pageSize)` for each, and
   * clears their dirty state unless `clear` is false. Clearing needs a TLB flush, which the domain does.
   */
  readAndClearDirty?(
    iova: Iova,
    size: bigint,
    record: (iova: bigint, size: bigint) => void,
    clear: boolean,
  ): void;
  /**
   * User cache invalidation for a nested domain (Linux `cache_invalidate_user`): vendor entries in order,
   * stopping at the first that fails. Absent: the domain has no user-managed caches (`EOPNOTSUPP`).
   */
  cacheInvalidateUser?(entries: readonly unknown[]): InvalidationResult;
}

/** Vendor information for `IOMMU_GET_HW_INFO`. */
export interface HwInfo {
  /** The vendor's info type (`arm-smmuv3`, `intel-vtd`, `amd`, `mock`). */
  readonly type: string;
  /** The vendor's info fields (register values a VMM uses to build its vIOMMU). */
  readonly data: Readonly<Record<string, number | bigint>>;
  /** log2 of the PASIDs the device may use through this IOMMU (0: no PASID support). */
  readonly maxPasidLog2: number;
  readonly capabilities: {
    readonly dirtyTracking: boolean;
    readonly pasidExec: boolean;
    readonly pasidPriv: boolean;
  };
}

/** A region of IOVA space a device must not have mapped for DMA (Linux `iommu_resv_region`). */
export interface ReservedRegion {
  readonly start: bigint;
  readonly length: bigint;
  /**
   * `sw-msi`: the window where the kernel maps MSI doorbells itself (SW MSI cookie); `msi`: a hardware
   * MSI window; `reserved`: never usable.
   */
  readonly type: 'sw-msi' | 'msi' | 'reserved';
}

/** Where a vIOMMU sends vendor event records for devices it owns (iommufd's vEVENTQ). */
export interface ViommuEventSink {
  report(type: string, record: Uint32Array): void;
}

/** The driver's half of a vIOMMU: a VM's slice of one physical IOMMU (Linux `struct iommufd_viommu`). */
export interface ViommuDriverObject {
  /** vIOMMU type (`arm-smmuv3`, `mock`). */
  readonly type: string;
  /** Binds a virtual ID (vSID, vRID, vDeviceID) to a device; the driver translates IDs with it. */
  vdeviceAlloc(device: IommuDeviceRef, virtId: bigint): void;
  vdeviceDestroy(device: IommuDeviceRef): void;
  /** Allocates a nested domain from vendor data (the guest's STE, DTE, …) on this vIOMMU. */
  domainAllocNested(data: unknown): IommuDomain;
  /** Raw vendor invalidation entries (guest commands), in order, stopping at the first failure. */
  cacheInvalidate(entries: readonly unknown[]): InvalidationResult;
  destroy(): void;
}

export interface IommuDriver {
  readonly instance: string;
  /** Brings the hardware up from its ID registers: allocate queues and tables, enable translation. */
  probe(): void;
  /** Prepares per-device structures (Linux `probe_device`); the device starts blocked. */
  probeDevice(device: IommuDeviceRef): void;
  /** Tears down what `probeDevice` set up; the device is left blocked. */
  releaseDevice(device: IommuDeviceRef): void;
  /** Allocates an empty paging domain (Linux `domain_alloc_paging_flags`); `EOPNOTSUPP` for unsupported flags. */
  domainAllocPaging(flags?: PagingDomainFlags): IommuDomain;
  /** The domain that blocks all DMA. */
  readonly blockedDomain: IommuDomain;
  /** The domain that passes DMA through untranslated, when the hardware has bypass. */
  readonly identityDomain?: IommuDomain;
  /**
   * Attaches the device's RID (no PASID) to `domain`, replacing whatever it had, hitlessly where the
   * hardware allows. Throws `EINVAL` when the domain cannot serve this device (the core then tries
   * another domain, as iommufd's auto-domain search does).
   */
  attachDev(domain: IommuDomain, device: IommuDeviceRef): void;
  /** Vendor info and capabilities for `IOMMU_GET_HW_INFO`. */
  hwInfo(device: IommuDeviceRef): HwInfo;
  /** IOVA regions the device must not use (e.g. the SW MSI window). Absent: none. */
  reservedRegions?(device: IommuDeviceRef): readonly ReservedRegion[];
  /**
   * Attaches `domain` at `pasid` of the device, replacing what the PASID had (Linux `set_dev_pasid`).
   * Absent: the hardware cannot attach at a PASID; the core answers `EOPNOTSUPP`.
   */
  setDevPasid?(domain: IommuDomain, device: IommuDeviceRef, pasid: number): void;
  /** Blocks DMA at `pasid` again (Linux `remove_dev_pasid`). Present whenever `setDevPasid` is. */
  removeDevPasid?(device: IommuDeviceRef, pasid: number): void;
  /**
   * Allocates, for `device`, a nested domain on a nest-parent paging domain from vendor data, for vendors
   * whose nested domains need no vIOMMU (VT-d). The device is the one the HWPT is allocated through, as
   * Linux's `domain_alloc_nested(dev, parent, flags, user_data)` receives it: a driver checks the data
   * against what that device and its IOMMU support. Absent: `EOPNOTSUPP`.
   */
  domainAllocNested?(device: IommuDeviceRef, parent: IommuDomain, data: unknown): IommuDomain;
  /** Allocates a vIOMMU on a nest-parent domain. Absent: `EOPNOTSUPP`. */
  viommuAlloc?(parent: IommuDomain, type: string, events: ViommuEventSink): ViommuDriverObject;
  /**
   * The driver's interrupt remapping (its IR domain), present when the hardware has a remapping unit and
   * the driver enabled it. Absent: devices behind this IOMMU send compatibility-format MSIs.
   */
  readonly interruptRemapping?: InterruptRemappingDriver;
  /** Answers a page request group the driver reported (PRI response, stall resume). */
  pageResponse?(device: IommuDeviceRef, response: PageResponse): void;
  /**
   * Turns the device's I/O page faults on (Linux `iommu_dev_enable_feature(dev, IOMMU_DEV_FEAT_IOPF)`, which
   * iommufd calls when a HWPT with a fault queue is attached): a PCIe driver enables the endpoint's PRI.
   * iommufd counts the attachments and calls this for the first one only. Absent: the device needs nothing
   * enabled to report page faults (a stall-capable device, or a model without PRI).
   */
  enableIopf?(device: IommuDeviceRef): void;
  /** Undoes `enableIopf` (the last attachment with a fault queue went). Present whenever `enableIopf` is. */
  disableIopf?(device: IommuDeviceRef): void;
  /** Disables translation and releases what `probe` allocated. */
  shutdown(): void;
}

/** How a driver reports an event the hardware logged (its IRQ handler calls this). */
export type FaultReporter = (fault: IommuFault, device: IommuDeviceRef | undefined) => void;

/** How a driver reports a recoverable page request (PRI, stall) for the I/O page fault path. */
export type PageRequestReporter = (device: IommuDeviceRef, request: PageRequest) => void;
