/**
 * The contract between endpoint devices and a vendor's IOMMU hardware model. The hardware model owns its
 * MMIO registers (on the bus) and reads its tables from memory; devices reach it only through these calls,
 * as transactions reach a real IOMMU from the PCIe fabric.
 */
import type { InterruptRemappingHardware } from '../msi/interrupt-remapping.js';
import type { TranslationRequest, TranslationResult } from './translation.js';

/** What the IOMMU can send back to an endpoint: ATS invalidations and PRI responses. */
export interface EndpointPort {
  /**
   * ATS invalidation request for `[iova, iova + size)` at `pasid` (undefined: every PASID and no PASID).
   * A size of 2^64 or more means the whole address space.
   */
  invalidateAtc(pasid: number | undefined, iova: bigint, size: bigint): void;
  /** Delivers a PRI page group response. */
  pageResponse(response: PageResponse): void;
  /**
   * Ends a transaction the IOMMU held (`TranslationFailure.stallId`): `result` is its translation on
   * retry, or the fault it was terminated with. A retry that stalls again keeps the same id and is not
   * reported until it ends.
   */
  completeStalled(stallId: number, result: TranslationResult): void;
}

/** A PCIe PRI page request (one page of a page request group). */
export interface PageRequest {
  readonly pasid: number;
  readonly iova: bigint;
  readonly access: number;
  /** Page request group index (PRGI), 9 bits on PCIe. */
  readonly groupIndex: number;
  /** Last request of its group. */
  readonly last: boolean;
}

export type PageResponseCode = 'success' | 'invalid' | 'failure';

export interface PageResponse {
  readonly pasid: number;
  readonly groupIndex: number;
  readonly code: PageResponseCode;
}

export interface IommuHardware {
  /** Instance name from the config (`iommu0`). */
  readonly instance: string;
  /** The register window on the physical bus. */
  readonly mmio: { readonly base: bigint; readonly size: number };
  /** Translates an untranslated DMA request (the only mandatory path). */
  translate(request: TranslationRequest): TranslationResult;
  /**
   * ATS translation request from an endpoint's ATC. Its `access` carries NW (PERM_WRITE), Privileged Mode
   * Requested (PERM_PRIV) and Execute Requested (PERM_EXEC); a completion's `perm` is the R/W/Exe granted
   * to that privilege level alone, possibly less than asked, and Exe only when requested. Hardware without
   * ATS leaves it out; endpoints then always send untranslated requests.
   */
  atsTranslate?(request: TranslationRequest): TranslationResult;
  /**
   * The interrupt remapping unit (x86): a device's write without PASID into the interrupt window goes here
   * instead of `translate`. Hardware without one leaves it out; such writes are then DMA like any other.
   */
  readonly interruptRemapping?: InterruptRemappingHardware;
  /** PRI page request from an endpoint. Hardware without PRI leaves it out. */
  pageRequest?(streamId: number, request: PageRequest): void;
  /** Makes an endpoint reachable for ATS invalidations and PRI responses. */
  connectEndpoint(streamId: number, port: EndpointPort): void;
  disconnectEndpoint(streamId: number): void;
  /** Identification register values (hex strings), shown by `iommukit vendors`. */
  identify(): Readonly<Record<string, string>>;
  /** Counters: TLB hits and misses, walks, faults recorded, commands executed. */
  stats(): Readonly<Record<string, number>>;
}
