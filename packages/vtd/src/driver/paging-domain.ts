/**
 * VT-d paging domains (Linux intel/iommu.c `struct dmar_domain` of a paging domain): one page table —
 * second stage (the VT-d second-stage format, legacy or scalable mode) or first stage (x86-64 paging,
 * scalable mode only) — and the bookkeeping of its TLB maintenance.
 *
 * Geometry (Linux `paging_domain_alloc`): the second stage walks `levels` tables from SAGAW
 * ({@link vtdDomainLevels}: the widest SAGAW depth at or below the width asked, as
 * `__iommu_calculate_agaw` picks the AGAW), its aperture is [0, 2^min(table width, MGAW) − 1]; the first
 * stage is 4-level, or 5-level with CAP.FL5LP, and its aperture is the lower canonical half
 * [0, 2^(N−1) − 1], N = 48 or 57 ("skip bit [N-1]"). Page sizes: 4 KiB, plus CAP.SLLPS's 2 MiB / 1 GiB
 * (second stage) or 2 MiB and, with CAP.FL1GP, 1 GiB (first stage).
 *
 * Invalidation goes through the driver's {@link DomainFlush}, which knows where the domain is attached
 * (DIDs, PASIDs, device-TLBs) and which descriptor each needs:
 * - `map`: a not-present → present change needs a flush only where the unit may cache not-present
 *   entries, i.e. caching mode with a second-stage table, or a write-buffer flush with CAP.RWBF (Linux
 *   `iotlb_sync_map` set at allocation, `cache_tag_flush_range_np`): then `flush.mapped`.
 * - `unmap` only gathers what the table reports (leaves removed; tables freed or blocks split), and
 *   `iotlbSync` flushes the merged ranges (Linux `intel_iommu_tlb_sync` → `cache_tag_flush_range`), each
 *   leaf-only (IH = 1) when no paging-structure entry in it changed.
 *
 * Dirty tracking (second stage with ECAP.SLADS, Linux `intel_dirty_ops`): the table reads the D bits the
 * unit sets while the PASID entries carry SSADE; turning tracking on or off is the driver's rewrite of
 * those entries (`onDirtyTracking`, Linux `intel_pasid_setup_dirty_tracking`); reading clears D and flushes
 * the cleaned leaves, so the next write through a cached entry marks them again.
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
  mergeRanges,
  type Prot,
  toHex,
} from '@iommukit/core';
import {
  IoPageTable,
  type IoPageTableContext,
  type VtdSsFormat,
  vtdSsFormat,
  type X86Format,
  x86Format,
} from '@iommukit/pagetables';
import type { SsLevels, VtdFeatures } from '../hw/features.js';

/** Which table a domain is: what the driver writes as PGTT (scalable mode) or TT (legacy mode). */
export type VtdStage = 'first' | 'second';

/**
 * How a domain's TLB maintenance reaches the hardware. The driver implements it: it knows every place the
 * domain is installed (DID, PASID, device-TLB) and which invalidation descriptor each needs.
 */
export interface DomainFlush {
  /**
   * Invalidates `[iova, iova + size)` wherever the domain is attached (IOTLB, paging-structure caches,
   * device-TLBs); `leafOnly`: only leaves changed, so the invalidation hint (IH) may be set.
   */
  range(domain: VtdPagingDomain, iova: number, size: number, leafOnly: boolean): void;
  /** Invalidates everything the domain has cached (Linux `cache_tag_flush_all`). */
  all(domain: VtdPagingDomain): void;
  /**
   * `[iova, iova + size)` went from not present to present (Linux `cache_tag_flush_range_np`): with caching
   * mode and a second-stage domain an IOTLB invalidation, otherwise a write-buffer flush (CAP.RWBF).
   * Called only when the domain's {@link VtdPagingDomain.syncMap} is set.
   */
  mapped?(domain: VtdPagingDomain, iova: number, size: number): void;
}

/** The unit's features a domain's geometry depends on. */
export type PagingDomainFeatures = Pick<
  VtdFeatures,
  | 'sagaw'
  | 'mgawBits'
  | 'hostAddressBits'
  | 'secondStage2MiB'
  | 'secondStage1GiB'
  | 'firstStage'
  | 'firstStage1GiB'
  | 'firstStage5Level'
  | 'scalableMode'
  | 'secondStageAccessDirty'
  | 'writeBufferFlush'
>;

export interface VtdPagingDomainConfig {
  readonly id: number;
  readonly stage: VtdStage;
  /** Table depth (see {@link vtdDomainLevels}). */
  readonly levels: number;
  readonly features: PagingDomainFeatures;
  /** Where the table lives: the bus, the host frame allocator, the access counter. */
  readonly context: IoPageTableContext;
  /** Allocated with `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`: second stage with ECAP.SLADS only. */
  readonly dirtyTracking?: boolean;
  /** Allocated with `IOMMU_HWPT_ALLOC_NEST_PARENT`: nested domains may use it as their second stage. */
  readonly nestParent?: boolean;
  /** CAP.CM: the unit may cache not-present second-stage entries. */
  readonly cachingMode: boolean;
  readonly flush: DomainFlush;
  /** The driver's rewrite of the attached PASID entries' SSADE (see {@link VtdPagingDomain.onDirtyTracking}). */
  readonly onDirtyTracking?: (enabled: boolean) => void;
  /** Called once the domain is freed: the driver returns its DID. */
  readonly released?: () => void;
}

/** Linux DEFAULT_DOMAIN_ADDRESS_WIDTH: the widest table the unit has unless a narrower width is asked. */
export const DEFAULT_ADDRESS_WIDTH = 57;

/**
 * The table depth of a new domain for an input width of `addressWidth` bits. Second stage: the deepest
 * SAGAW depth not above the depth the width needs (Linux `__iommu_calculate_agaw`: AGAW
 * = ⌈(width − 30) / 9⌉, levels = AGAW + 2); `EINVAL` when SAGAW has none. First stage: 5 with CAP.FL5LP
 * and a width above 48 bits, else 4.
 */
export function vtdDomainLevels(
  stage: VtdStage,
  features: Pick<VtdFeatures, 'sagaw' | 'firstStage5Level'>,
  addressWidth = DEFAULT_ADDRESS_WIDTH,
): number {
  if (stage === 'first') return features.firstStage5Level && addressWidth > 48 ? 5 : 4;
  const most = Math.ceil((addressWidth - 30) / 9) + 2;
  const fits = features.sagaw.filter((levels) => levels <= most);
  if (fits.length === 0)
    throw new IommufdError(
      'EINVAL',
      `no second-stage depth in SAGAW [${features.sagaw.join(', ')}] fits a ${addressWidth}-bit address width`,
      { addressWidth },
    );
  return Math.max(...fits);
}

export class VtdPagingDomain implements IommuDomain {
  readonly id: number;
  readonly type: DomainType = 'paging';
  readonly stage: VtdStage;
  readonly levels: number;
  readonly format: VtdSsFormat | X86Format;
  readonly table: IoPageTable;
  readonly pgsizeBitmap: bigint;
  readonly aperture: { readonly start: Iova; readonly end: Iova };
  /** Allocated with dirty tracking. */
  readonly dirtyTracking: boolean;
  /** Allocated as a nest parent. */
  readonly nestParent: boolean;
  /** A map must be followed by `flush.mapped` (caching mode with a second stage, or CAP.RWBF). */
  readonly syncMap: boolean;
  private readonly released: (() => void) | undefined;
  /**
   * Called when dirty tracking turns on or off, before the domain records it: the driver sets or clears
   * SSADE in every PASID entry the domain is installed in and invalidates them (Linux
   * `intel_pasid_setup_dirty_tracking`); a throw leaves the state unchanged.
   */
  onDirtyTracking: ((enabled: boolean) => void) | undefined;
  /**
   * Context and PASID entries pointing at the domain; the driver counts them (attach +1, detach −1), and
   * `free` refuses with `EBUSY` while any is left.
   */
  attachments = 0;
  private tracking = false;
  private readonly flush: DomainFlush;
  private gather = new IotlbGather();
  private freed = false;

  constructor(config: VtdPagingDomainConfig) {
    const { id, stage, levels, features: f } = config;
    this.id = id;
    this.stage = stage;
    this.levels = levels;
    this.flush = config.flush;
    this.onDirtyTracking = config.onDirtyTracking;
    this.released = config.released;
    this.dirtyTracking = config.dirtyTracking === true;
    this.nestParent = config.nestParent === true;
    checkConfig(config);
    this.format =
      stage === 'second'
        ? vtdSsFormat({
            levels: levels as SsLevels,
            oas: f.hostAddressBits,
            sllps: (f.secondStage2MiB ? 1 : 0) | (f.secondStage1GiB ? 2 : 0),
            accessedDirty: this.dirtyTracking,
          })
        : x86Format({ levels: levels as 4 | 5, oas: f.hostAddressBits, gigaPages: f.firstStage1GiB });
    this.table = new IoPageTable<unknown>(this.format, config.context, {
      dirtyTracking: this.dirtyTracking,
      flush: {
        tlbAddPage: (iova, size) => this.gather.leaves.push([Number(iova), Number(iova + size)]),
        tlbFlushWalk: (iova, size) => this.gather.walks.push([Number(iova), Number(iova + size)]),
      },
    });
    this.pgsizeBitmap = this.table.pgsizeBitmap;
    // x86 formats already stop at the lower canonical half (ias 47 / 56); MGAW bounds the second stage.
    const width = stage === 'second' ? Math.min(this.format.ias, f.mgawBits) : this.format.ias;
    this.aperture = { start: makeIova(0n), end: makeIova((1n << BigInt(width)) - 1n) };
    this.syncMap = f.writeBufferFlush || (config.cachingMode && stage === 'second');
  }

  /** The root table, what the driver writes as SLPTPTR / SSPTPTR / FSPTPTR. */
  get rootPa(): number {
    return this.table.rootPa;
  }

  /** Dirty tracking is on: entries installing the domain must carry SSADE. */
  get dirtyTrackingEnabled(): boolean {
    return this.tracking;
  }

  get isFreed(): boolean {
    return this.freed;
  }

  map(iova: Iova, paddr: Hpa, size: bigint, prot: Prot): void {
    this.checkLive();
    if (size > 0n && iova + size - 1n > this.aperture.end)
      throw new IommufdError(
        'EINVAL',
        `domain ${this.id}: IOVA ${toHex(iova)}+${toHex(size)} passes the aperture end ${toHex(this.aperture.end)}`,
        { domain: this.id },
      );
    this.table.map(iova, paddr, size, prot);
    if (this.syncMap) this.flush.mapped?.(this, Number(iova), Number(size));
  }

  unmap(iova: Iova, size: bigint): bigint {
    this.checkLive();
    return this.table.unmap(iova, size);
  }

  iotlbSync(): void {
    if (this.gather.empty) return;
    const { leaves, walks } = this.gather;
    this.gather = new IotlbGather();
    const changed = mergeRanges(walks);
    for (const [start, end] of mergeRanges([...leaves, ...walks])) {
      const leafOnly = !changed.some(([s, e]) => s < end && start < e);
      this.flush.range(this, start, end - start, leafOnly);
    }
  }

  iovaToPhys(iova: Iova): Hpa | undefined {
    this.checkLive();
    const pa = this.table.iovaToPhys(iova);
    return pa === undefined ? undefined : hpa(pa);
  }

  setDirtyTracking(enabled: boolean): void {
    this.checkDirtyTracking();
    if (enabled === this.tracking) return;
    this.onDirtyTracking?.(enabled);
    this.tracking = enabled;
  }

  readAndClearDirty(
    iova: Iova,
    size: bigint,
    record: (iova: bigint, size: bigint) => void,
    clear: boolean,
  ): void {
    this.checkDirtyTracking();
    this.table.readAndClearDirty(iova, size, record, { clear });
    // Cleaned leaves were gathered: a cached writable entry would let writes through unmarked.
    if (clear) this.iotlbSync();
  }

  /** Invalidates everything the domain has cached, what was gathered included (Linux `intel_flush_iotlb_all`). */
  flushIotlbAll(): void {
    this.checkLive();
    this.gather = new IotlbGather();
    this.flush.all(this);
  }

  /**
   * Releases the table (Linux `domain_exit`). The caches hold nothing of it once the last attachment has
   * gone: detaching tears the entries down and invalidates by DID.
   */
  free(): void {
    if (this.freed) return;
    if (this.attachments > 0)
      throw new IommufdError('EBUSY', `domain ${this.id} is still installed in ${this.attachments} entries`, {
        domain: this.id,
      });
    this.freed = true;
    this.gather = new IotlbGather();
    this.table.free();
    this.released?.();
  }

  private checkDirtyTracking(): void {
    this.checkLive();
    if (!this.dirtyTracking)
      throw new IommufdError('EOPNOTSUPP', `domain ${this.id} was not allocated for dirty tracking`, {
        domain: this.id,
      });
  }

  private checkLive(): void {
    if (this.freed) throw new IommufdError('ENOENT', `domain ${this.id} was freed`, { domain: this.id });
  }
}

/** What the unit cannot give a domain: `EOPNOTSUPP` for a missing feature, `EINVAL` for a bad depth. */
function checkConfig(config: VtdPagingDomainConfig): void {
  const { stage, levels, features: f } = config;
  const refuse = (code: 'EINVAL' | 'EOPNOTSUPP', why: string) => {
    throw new IommufdError(code, `domain ${config.id}: ${why}`, { domain: config.id });
  };
  if (stage === 'first') {
    if (!f.scalableMode || !f.firstStage) refuse('EOPNOTSUPP', 'the unit has no first-stage translation');
    if (levels !== 4 && levels !== 5) refuse('EINVAL', `a first stage has 4 or 5 levels, not ${levels}`);
    if (levels === 5 && !f.firstStage5Level) refuse('EINVAL', '5-level first stage without CAP.FL5LP');
  } else if (!f.sagaw.includes(levels as SsLevels)) {
    refuse('EINVAL', `SAGAW [${f.sagaw.join(', ')}] has no ${levels}-level second stage`);
  }
  // Linux `ssads_supported`: SSADE lives in scalable-mode PASID entries of second-stage domains.
  if (config.dirtyTracking && (stage !== 'second' || !f.scalableMode || !f.secondStageAccessDirty))
    refuse('EOPNOTSUPP', 'dirty tracking needs a second stage and ECAP.SLADS in scalable mode');
}
