/**
 * AMD paging domains (Linux iommu.c `struct protection_domain`, `amd_iommu_domain_alloc_paging_flags`,
 * `amd_iommu_map_pages`, `amd_iommu_unmap_pages`, `amd_iommu_iotlb_sync`, `amd_iommu_iotlb_sync_map`,
 * `amd_iommu_flush_iotlb_all`): one `@iommukit/pagetables` table and the bookkeeping of its flushes.
 * - v1 (`PD_MODE_V1`, AMD pub. 48882 §2.2.3 host page tables): an `amdV1Format` table the DTE's Mode and
 *   root point to.
 * - v2 (`PD_MODE_V2`, Linux io_pgtable_v2 / generic-pt x86-64, `amd_iommu_domain_alloc_paging_v2`; the
 *   guest tables of §2.2's guest translation): an `x86Format` table of 4 or 5 levels (the unit-wide
 *   `amd_iommu_gpt_level`), 52 physical-address bits, which a GCR3 table entry points to — the only kind
 *   Linux attaches at a PASID, and at the RID through GCR3[0] with GIoV. Every leaf has U = 1 and A, and
 *   RW + D when writable, as Linux's v2 leaves (`IOMMU_PAGE_USER`): DMA at a PASID is a user-level access.
 *
 * Geometry: a v1 domain's DTE.Mode is the table's depth ({@link amdDomainLevels}): the levels the asked
 * input width needs (4 for Linux's default 48-bit width), at most EFR.HATS allows (`amd_iommu_hpt_level`,
 * up to PAGE_MODE_6_LEVEL); the aperture is what the depth translates (for v2, the lower half of the
 * x86-64 space: 47 or 56 bits). The table does not grow with mappings as
 * Linux's v1 `increase_address_space` did: its depth is fixed at allocation, as iommupt's is.
 *
 * Invalidation (domain-flush.ts through the driver's {@link DomainFlush}): `unmap` only gathers what the
 * table reports, and `iotlbSync` flushes one range from the lowest to the highest gathered address, as
 * Linux's `amd_iommu_iotlb_sync` flushes `gather->start` to `gather->end`; `map` flushes its range only with
 * NpCache (`amd_iommu_iotlb_sync_map`), the unit caching not-present entries then.
 */
import {
  type DomainType,
  type Hpa,
  hpa,
  type IommuDomain,
  IommufdError,
  IotlbGather,
  type Iova,
  iova as makeIova,
  type Prot,
  toHex,
} from '@iommukit/core';
import {
  type AmdV1Config,
  type AmdV1Format,
  amdV1Format,
  IoPageTable,
  type IoPageTableContext,
  type X86Format,
  x86Format,
} from '@iommukit/pagetables';
import { HOST_ADDRESS_BITS } from '../hw/translate.js';

/** The page-table kind of a domain (Linux `enum protection_domain_mode`). */
export type AmdPageTable = 'v1' | 'v2';

/** How a domain's TLB maintenance reaches the hardware (the driver knows where the domain is attached). */
export interface DomainFlush {
  /** Invalidates `[iova, iova + size)` wherever the domain is attached (Linux `amd_iommu_domain_flush_pages`). */
  pages(domain: AmdPagingDomain, iova: number, size: number): void;
  /** Invalidates everything the domain has cached (Linux `amd_iommu_domain_flush_all`). */
  all(domain: AmdPagingDomain): void;
}

/** Linux's default DMA address width for a v1 domain: 48 bits, PAGE_MODE_4_LEVEL. */
export const DEFAULT_ADDRESS_WIDTH = 48;

export interface AmdPagingDomainConfig {
  /** Driver-unique id (the core's). */
  readonly id: number;
  /** The DomainID the device table entries carry (Linux `pdom->id`). */
  readonly domainId: number;
  readonly pageTable: AmdPageTable;
  /** v1: DTE.Mode, 1 to 6 levels (see {@link amdDomainLevels}); v2: 4 or 5 (DTE.GuestPagingMode). */
  readonly levels: number;
  /** Where the table lives: the bus, the driver's frame allocator, its access counter. */
  readonly context: IoPageTableContext;
  /** The capability header's NpCache: maps are flushed too. */
  readonly npCache: boolean;
  readonly flush: DomainFlush;
  /** Called once the domain is freed: the driver returns its DomainID. */
  readonly released?: () => void;
}

/**
 * The v1 depth for an input width of `addressWidth` bits: ⌈(width − 12) / 9⌉ levels (Linux
 * `get_paging_mode`), at least 1; `EINVAL` when the unit's EFR.HATS depth (`hostLevels`) is too shallow.
 */
export function amdDomainLevels(hostLevels: number, addressWidth = DEFAULT_ADDRESS_WIDTH): number {
  const levels = Math.max(1, Math.ceil((addressWidth - 12) / 9));
  if (levels > hostLevels)
    throw new IommufdError(
      'EINVAL',
      `a ${addressWidth}-bit address width needs ${levels} levels; EFR.HATS allows ${hostLevels}`,
      { addressWidth },
    );
  return levels;
}

export class AmdPagingDomain implements IommuDomain {
  readonly id: number;
  readonly type: DomainType = 'paging';
  readonly domainId: number;
  readonly pageTable: AmdPageTable;
  readonly levels: number;
  readonly format: AmdV1Format | X86Format;
  readonly table: IoPageTable;
  readonly pgsizeBitmap: bigint;
  readonly aperture: { readonly start: Iova; readonly end: Iova };
  /** Device table entries pointing at the domain; the driver counts them, `free` refuses while any is left. */
  attachments = 0;
  private readonly flush: DomainFlush;
  private readonly npCache: boolean;
  private readonly released: (() => void) | undefined;
  private gather = new IotlbGather();
  private freed = false;

  constructor(config: AmdPagingDomainConfig) {
    this.id = config.id;
    this.domainId = config.domainId;
    this.pageTable = config.pageTable;
    this.levels = config.levels;
    this.flush = config.flush;
    this.npCache = config.npCache;
    this.released = config.released;
    this.format =
      config.pageTable === 'v1'
        ? amdV1Format({ levels: config.levels as AmdV1Config['levels'], oas: HOST_ADDRESS_BITS })
        : x86Format({ levels: config.levels as 4 | 5, oas: HOST_ADDRESS_BITS });
    this.table = new IoPageTable<unknown>(this.format, config.context, {
      flush: {
        tlbAddPage: (iova, size) => this.gather.leaves.push([Number(iova), Number(iova + size)]),
        tlbFlushWalk: (iova, size) => this.gather.walks.push([Number(iova), Number(iova + size)]),
      },
    });
    this.pgsizeBitmap = this.table.pgsizeBitmap;
    this.aperture = { start: makeIova(0n), end: makeIova((1n << BigInt(this.format.ias)) - 1n) };
  }

  /** The table's root: the DTE's host page-table root (v1) or a GCR3 entry's guest CR3 (v2). */
  get rootPa(): number {
    return this.table.rootPa;
  }

  map(iova: Iova, paddr: Hpa, size: bigint, prot: Prot): void {
    this.checkLive();
    if (size > 0n && iova + size - 1n > this.aperture.end)
      throw new IommufdError(
        'EINVAL',
        `domain ${this.id}: IOVA ${toHex(iova)}+${toHex(size)} passes the aperture end ${toHex(this.aperture.end)}`,
        { domain: this.id },
      );
    this.table.map(iova, paddr, size, this.pageTable === 'v2' ? { ...prot, priv: false } : prot);
    if (this.npCache) this.flush.pages(this, Number(iova), Number(size));
  }

  unmap(iova: Iova, size: bigint): bigint {
    this.checkLive();
    return this.table.unmap(iova, size);
  }

  iotlbSync(): void {
    if (this.gather.empty) return;
    const [start, end] = this.gather.span();
    this.gather = new IotlbGather();
    this.flush.pages(this, start, end - start);
  }

  iovaToPhys(iova: Iova): Hpa | undefined {
    this.checkLive();
    const pa = this.table.iovaToPhys(iova);
    return pa === undefined ? undefined : hpa(pa);
  }

  /** Invalidates everything the domain has cached, what was gathered included (Linux `amd_iommu_flush_iotlb_all`). */
  flushIotlbAll(): void {
    this.checkLive();
    this.gather = new IotlbGather();
    this.flush.all(this);
  }

  /** Releases the table (Linux `amd_iommu_domain_free`); detaching flushed whatever the caches held. */
  free(): void {
    if (this.freed) return;
    if (this.attachments > 0)
      throw new IommufdError('EBUSY', `domain ${this.id} is still attached to ${this.attachments} devices`, {
        domain: this.id,
      });
    this.freed = true;
    this.gather = new IotlbGather();
    this.table.free();
    this.released?.();
  }

  private checkLive(): void {
    if (this.freed) throw new IommufdError('ENOENT', `domain ${this.id} was freed`, { domain: this.id });
  }
}
