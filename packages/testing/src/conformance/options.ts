/**
 * What a plugin tells the conformance kit beyond its contract: instance options, and the vendor-specific
 * pieces the nesting cases need (the shape of nested HWPT data, how to lay out a stage-1 table in guest
 * memory, and invalidation entries). Cases whose hooks are absent are reported as not applicable.
 */
import type { MsiControllerModule } from '@iommukit/core';

/** Writes 32-bit words at an intermediate (guest-physical) address of the nesting test's stage 2. */
export type IpaWriter = (ipa: bigint, words: ArrayLike<number>) => void;

export interface NestingHooks {
  /**
   * vIOMMU type to allocate (`arm-smmuv3`, `mock`): nested HWPTs are allocated on the vIOMMU and
   * invalidated through it. Absent: the plugin nests on the nest-parent HWPT itself, as VT-d does (no
   * vIOMMU object), and each nested HWPT is invalidated through its own id; the vIOMMU, vDEVICE and vEVENTQ
   * cases are then skipped as not applicable.
   */
  readonly viommuType?: string;
  /** vEVENTQ type carrying fault events (`arm-smmuv3`, `mock`); with `viommuType` only. */
  readonly veventType?: string;
  /**
   * Builds a stage-1 table at intermediate addresses from `allocIpa` (4 KiB pages, zeroed) that maps each
   * `iova` to its `ipa` read-write, and returns the vendor data for a nested HWPT using it with `tag` (an
   * ASID or similar, when the format has one).
   */
  buildStage1(args: {
    readonly maps: readonly { readonly iova: bigint; readonly ipa: bigint }[];
    readonly tag: number;
    readonly allocIpa: () => bigint;
    readonly write: IpaWriter;
  }): unknown;
  /** An invalidation entry for the vIOMMU (or nested HWPT) that succeeds (invalidates everything tagged `tag`). */
  readonly validInvalidation: (tag: number) => unknown;
  /** An invalidation entry the driver must reject, and the errno it must reject it with. */
  readonly invalidInvalidation: { readonly entry: unknown; readonly errno: string };
}

export interface ConformanceOptions {
  /** Options for the plugin's IOMMU instance (`iommus[].options`). */
  readonly instanceOptions?: Record<string, unknown>;
  /**
   * The platform's MSI controller, for an IOMMU that signals its own faults by MSI only (VT-d, AMD-Vi):
   * without one its driver never hears of a fault. Absent: the system has no MSI controller.
   */
  readonly msi?: { readonly module: MsiControllerModule; readonly options?: Record<string, unknown> };
  /** Nesting, vIOMMU, vDEVICE, vEVENTQ and user invalidation cases; absent: not applicable. */
  readonly nesting?: NestingHooks;
}
