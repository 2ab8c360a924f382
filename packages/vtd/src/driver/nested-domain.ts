/**
 * A nested domain of the VT-d driver (Linux intel/nested.c): a user's first-stage table on a nest-parent
 * second-stage domain, from the uAPI's `struct iommu_hwpt_vtd_s1`. VT-d has no vIOMMU object in mainline
 * Linux: the nested HWPT is allocated on the parent HWPT itself and invalidated through its own id.
 *
 * - Data (`iommu_hwpt_vtd_s1`): `flags` (SRE, EAFE, WPE), `pgtblAddr` (the first-stage root, a GPA the
 *   unit walks through the parent) and `addrWidth` (48: 4-level, 57: 5-level). Linux copies the data at
 *   allocation and judges it at attach (`intel_pasid_setup_nested`): an address width other than 48 or 57,
 *   57 without CAP.FL5LP, SRE without ECAP.SRS and EAFE without ECAP.EAFS are `EINVAL` then, and so here.
 *   Flag bits the uAPI does not define are refused at allocation (`EOPNOTSUPP`, iommufd's answer to
 *   unknown flags); Linux ignores them.
 * - Attach writes a nested PASID entry (PGTT 011b) with the domain's own DID, the user's FSPTPTR, FLPM and
 *   flags, and the parent's SSPTPTR, AW and SSADE — at RID_PASID (`attachDev`) or at a PASID
 *   (`setDevPasid`, Linux `intel_nested_set_dev_pasid`).
 * - `cacheInvalidateUser` takes `iommu_hwpt_vtd_s1_invalidate` entries (Linux
 *   `intel_nested_cache_invalidate_user`): flag bits other than LEAF or a non-zero reserved word are
 *   `EOPNOTSUPP`; an address not 4 KiB aligned, or `npages` = 2^64 − 1 ("everything") with a non-zero
 *   address, is `EINVAL`; each good entry becomes PASID-based IOTLB invalidations of the domain's DID at
 *   every PASID it is attached at (`npages` 0 sends nothing). The uAPI entry has no hardware-error field
 *   (drafts had one, dropped before merge), so an invalidation the unit refuses reaches the user as an
 *   errno only.
 * - A change to the parent reaches the nested translations through the driver's flush of the parent,
 *   which names every nested DID on it too (Linux's nesting cache tags).
 */
import {
  type Hpa,
  type InvalidationResult,
  type IommuDomain,
  IommufdError,
  iova,
  objectArg,
  u32Arg,
  u64Arg,
} from '@iommukit/core';
import { FLPM } from '../hw/pasid-entry.js';
import type { VtdPagingDomain } from './paging-domain.js';

/** `iommu_hwpt_vtd_s1.flags` bits (include/uapi/linux/iommufd.h). */
export const VTD_S1 = { SRE: 1n << 0n, EAFE: 1n << 1n, WPE: 1n << 2n } as const;
const VTD_S1_FLAGS = VTD_S1.SRE | VTD_S1.EAFE | VTD_S1.WPE;

/** `iommu_hwpt_vtd_s1_invalidate.flags`: only leaf entries changed (the invalidation hint). */
export const VTD_INV_FLAGS_LEAF = 1;

/** `npages` that means the whole address space (with address 0). */
export const VTD_INV_ALL_PAGES = 2n ** 64n - 1n;

/** Vendor data of a VT-d nested HWPT (uAPI `struct iommu_hwpt_vtd_s1`). */
export interface VtdS1Data {
  /** `VTD_S1` bits. */
  readonly flags?: number | bigint;
  /** Guest-physical address of the first-stage root table. */
  readonly pgtblAddr: number | bigint;
  /** 48 (4-level) or 57 (5-level). */
  readonly addrWidth: number;
}

/** One user invalidation entry (uAPI `struct iommu_hwpt_vtd_s1_invalidate`). */
export interface VtdS1Invalidation {
  readonly addr: number | bigint;
  /** Pages of 4 KiB; `VTD_INV_ALL_PAGES` with address 0: everything. */
  readonly npages: number | bigint;
  /** `VTD_INV_FLAGS_LEAF` or 0. */
  readonly flags?: number;
  /** `__reserved`: must be 0. */
  readonly reserved?: number;
}

/** The stage-1 configuration a nested PASID entry carries. */
export interface VtdS1Config {
  readonly fsptptr: number;
  readonly flpm: number;
  readonly sre: boolean;
  readonly wpe: boolean;
  readonly eafe: boolean;
}

/** A checked invalidation: `pages` undefined means the whole address space. */
export interface UserInvalidation {
  readonly addr: number;
  readonly pages: number | undefined;
  readonly leafOnly: boolean;
}

/** What a nested domain needs from its driver. */
export interface NestedDomainHost {
  /** Performs one user invalidation wherever the domain is attached. */
  invalidate(domain: VtdNestedDomain, inv: UserInvalidation): void;
  /** The domain was freed: the driver returns its DID. */
  release(domain: VtdNestedDomain): void;
}

export class VtdNestedDomain implements IommuDomain {
  readonly type = 'nested';
  readonly pgsizeBitmap = 0n;
  /** The user's input space: its first-stage tables decide what is mapped (lower canonical half). */
  readonly aperture;
  /** Context and PASID entries installing the domain; `free` refuses while any is left. */
  attachments = 0;
  private freed = false;

  constructor(
    readonly id: number,
    readonly did: number,
    readonly parent: VtdPagingDomain,
    readonly data: { readonly flags: bigint; readonly pgtblAddr: bigint; readonly addrWidth: number },
    private readonly host: NestedDomainHost,
  ) {
    this.aperture = { start: iova(0n), end: iova((1n << BigInt(Math.min(data.addrWidth, 57) - 1)) - 1n) };
  }

  get isFreed(): boolean {
    return this.freed;
  }

  /** The first-stage fields of the PASID entry, judged as Linux's attach judges them (`EINVAL`). */
  s1Config(unit: { readonly fl5lp: boolean }): VtdS1Config {
    const { flags, pgtblAddr, addrWidth } = this.data;
    if (addrWidth !== 48 && addrWidth !== 57)
      throw new IommufdError('EINVAL', `first-stage address width ${addrWidth} is neither 48 nor 57`);
    if (addrWidth === 57 && !unit.fl5lp)
      throw new IommufdError('EINVAL', 'a 57-bit first stage needs 5-level paging (CAP.FL5LP)');
    return {
      // FSPTPTR holds bits 63:12: the entry drops the offset, as Linux's pasid_set_flptr does.
      fsptptr: Number(pgtblAddr & ~0xfffn),
      flpm: addrWidth === 57 ? FLPM.LEVEL_5 : FLPM.LEVEL_4,
      sre: (flags & VTD_S1.SRE) !== 0n,
      wpe: (flags & VTD_S1.WPE) !== 0n,
      eafe: (flags & VTD_S1.EAFE) !== 0n,
    };
  }

  map(): void {
    throw new IommufdError('EOPNOTSUPP', 'a nested domain is mapped by its owner in its first-stage tables');
  }

  unmap(): bigint {
    throw new IommufdError(
      'EOPNOTSUPP',
      'a nested domain is unmapped by its owner in its first-stage tables',
    );
  }

  iotlbSync(): void {}

  iovaToPhys(): Hpa | undefined {
    return undefined;
  }

  cacheInvalidateUser(entries: readonly unknown[]): InvalidationResult {
    let handled = 0;
    try {
      for (const entry of entries) {
        this.checkLive();
        this.host.invalidate(this, checkInvalidation(entry));
        handled++;
      }
      return { handled };
    } catch (error) {
      if (error instanceof IommufdError) return { handled, error };
      throw error;
    }
  }

  free(): void {
    if (this.freed) return;
    if (this.attachments > 0)
      throw new IommufdError('EBUSY', `nested domain ${this.id} is still attached`, { domain: this.id });
    this.freed = true;
    this.host.release(this);
  }

  private checkLive(): void {
    if (this.freed) throw new IommufdError('ENOENT', `nested domain ${this.id} was freed`);
  }
}

/** Checks the shape of `iommu_hwpt_vtd_s1` (see the module comment); unknown flag bits are `EOPNOTSUPP`. */
export function checkVtdS1Data(data: unknown): VtdNestedDomain['data'] {
  const d = objectArg<Partial<VtdS1Data>>(data, 'iommu_hwpt_vtd_s1');
  const flags = u64Arg(d.flags ?? 0, 'iommu_hwpt_vtd_s1.flags');
  if ((flags & ~VTD_S1_FLAGS) !== 0n)
    throw new IommufdError('EOPNOTSUPP', `iommu_hwpt_vtd_s1.flags ${flags} has bits besides SRE, EAFE, WPE`);
  return {
    flags,
    pgtblAddr: u64Arg(d.pgtblAddr, 'iommu_hwpt_vtd_s1.pgtbl_addr'),
    addrWidth: u32Arg(d.addrWidth, 'iommu_hwpt_vtd_s1.addr_width'),
  };
}

/** Checks one `iommu_hwpt_vtd_s1_invalidate` entry in Linux's order (see the module comment). */
export function checkInvalidation(entry: unknown): UserInvalidation {
  const e = objectArg<Partial<VtdS1Invalidation>>(entry, 'iommu_hwpt_vtd_s1_invalidate');
  const flags = u32Arg(e.flags ?? 0, 'iommu_hwpt_vtd_s1_invalidate.flags');
  const reserved = u32Arg(e.reserved ?? 0, 'iommu_hwpt_vtd_s1_invalidate.__reserved');
  if ((flags & ~VTD_INV_FLAGS_LEAF) !== 0 || reserved !== 0)
    throw new IommufdError(
      'EOPNOTSUPP',
      `invalidation flags ${flags} / reserved ${reserved} are not supported`,
    );
  const addr = u64Arg(e.addr, 'iommu_hwpt_vtd_s1_invalidate.addr');
  const npages = u64Arg(e.npages, 'iommu_hwpt_vtd_s1_invalidate.npages');
  if ((addr & 0xfffn) !== 0n || (npages === VTD_INV_ALL_PAGES && addr !== 0n))
    throw new IommufdError(
      'EINVAL',
      `invalidation of ${npages} pages at ${addr} is not 4 KiB aligned or not whole`,
    );
  const leafOnly = (flags & VTD_INV_FLAGS_LEAF) !== 0;
  // A range past the first-stage input space (2^57) is the whole space, as Linux's flush treats it.
  const end = addr + npages * 4096n;
  if (npages === VTD_INV_ALL_PAGES || end > 2n ** 57n) return { addr: 0, pages: undefined, leafOnly };
  return { addr: Number(addr), pages: Number(npages), leafOnly };
}
