/**
 * The request a device puts on its IOMMU port and what comes back. This is the hot path, so everything is
 * a `number`: the IOVA travels as a 4 KiB page frame number plus in-page offset (docs/design.md §3, tier 2).
 * A failed translation is data (an {@link IommuFault}), never an exception.
 */

/** Access and permission bits (requested access on a request, granted permission on a result). */
export const PERM_READ = 1;
export const PERM_WRITE = 2;
export const PERM_EXEC = 4;
/** Privileged (supervisor) access. */
export const PERM_PRIV = 8;

/** The `pasid` of a request that carries no PASID (ARM: no SubstreamID). */
export const NO_PASID = -1;

export interface TranslationRequest {
  /** StreamID / RID / DeviceID the IOMMU indexes its device table with. */
  readonly streamId: number;
  /** PASID (SubstreamID), or {@link NO_PASID}. */
  readonly pasid: number;
  readonly iovaPfn: number;
  readonly offset: number;
  /**
   * PERM_* bits the access needs (PERM_READ or PERM_WRITE, optionally EXEC and PRIV). A PCIe endpoint sets
   * EXEC and PRIV only with a PASID: they travel in the PASID TLP prefix.
   */
  readonly access: number;
}

export interface TranslationOk {
  readonly ok: true;
  /** Output page frame number (host physical for a host IOMMU). */
  readonly pfn: number;
  /** PERM_READ/WRITE/EXEC bits the mapping grants at the request's privilege level. */
  readonly perm: number;
  /** log2 of the mapping's size (12 for a 4 KiB page, 21 for a 2 MiB block): an ATC may cache it whole. */
  readonly pageShift: number;
}

export interface TranslationFailure {
  readonly ok: false;
  readonly fault: IommuFault;
  /**
   * Set when the IOMMU holds the transaction instead of terminating it (SMMUv3 stall model): the access
   * is neither done nor refused yet. The IOMMU later calls `EndpointPort.completeStalled` with this id and
   * the transaction's final translation (after software resumed or terminated it).
   */
  readonly stallId?: number;
}

export type TranslationResult = TranslationOk | TranslationFailure;

/**
 * Vendor-neutral classes of failure. The vendor's own name for it (an SMMUv3 event id, a VT-d fault reason,
 * an AMD event code) is in {@link IommuFault.vendorCode}.
 */
export type FaultKind =
  | 'translation'
  | 'permission'
  | 'address-size'
  | 'access-flag'
  | 'walk-abort'
  | 'bad-stream'
  | 'bad-pasid'
  | 'bad-config'
  | 'config-abort'
  | 'ats-disabled'
  /** An interrupt request the remapping unit blocked (no entry, entry not present, source mismatch, …). */
  | 'interrupt';

export interface IommuFault {
  readonly kind: FaultKind;
  /** The vendor's code: `F_TRANSLATION`, `C_BAD_STE`, `DMAR_FR_0x06`, `IO_PAGE_FAULT`. */
  readonly vendorCode: string;
  /** Which stage failed, for two-stage hardware. */
  readonly stage?: 1 | 2;
  readonly streamId: number;
  readonly pasid: number;
  readonly iova: bigint;
  readonly access: number;
  /** Whether the hardware wrote a record of it (event queue, fault log, fault recording register). */
  readonly recorded: boolean;
}
