/**
 * The host side of a shadowing vIOMMU (VT-d caching mode, AMD's dma-remap, the mock's shadow mode): one
 * assigned device's own IOAS, kept equal to what the guest's tables map, IOVA → guest RAM. A personality
 * walks the guest's tables over the range an invalidation names and hands the leaves it found to `sync`,
 * which unmaps what changed or went and maps what is new, one 4 KiB page at a time (so any page can later
 * be unmapped alone, as the guest may). `identity` maps all of guest RAM at IOVA = GPA (a pass-through
 * entry in the guest's tables). A leaf outside guest RAM maps nothing: the device's DMA there faults on the
 * host, where the guest's own IOMMU would have sent it elsewhere (peer-to-peer is not shadowed).
 */
import { U64_MAX } from '../address/address.js';
import type { IommuFd } from '../iommufd/iommufd.js';
import type { UserMemory } from '../iommufd/user-memory.js';

const PAGE = 4096n;

/** A 4 KiB page the guest's tables map: its guest-physical frame and whether it allows writes. */
export interface ShadowLeaf {
  readonly gpaPfn: number;
  readonly writable: boolean;
}

/** What one `sync` changed. */
export interface ShadowSyncResult {
  readonly mapped: number;
  readonly unmapped: number;
  /** Pages whose guest-physical frame is outside guest RAM, left unmapped. */
  readonly outsideRam: number;
}

export class ShadowMirror {
  /** What the IOAS maps now, by IOVA page. */
  readonly mapped = new Map<number, ShadowLeaf>();
  /** The IOAS maps all of guest RAM at IOVA = GPA. */
  identity = false;

  constructor(
    private readonly fd: IommuFd,
    readonly ioasId: number,
    private readonly guestRam: { readonly gpa: bigint; readonly memory: UserMemory },
  ) {}

  /**
   * Makes the IOAS map, over IOVA pages [first, end), exactly `wanted` (leaves found there by IOVA page).
   * Leaving identity first unmaps everything, so the whole range is then synced.
   */
  sync(first: number, end: number, wanted: ReadonlyMap<number, ShadowLeaf>): ShadowSyncResult {
    if (this.identity) {
      this.clear();
      first = 0;
      end = Number.POSITIVE_INFINITY;
    }
    let unmapped = 0;
    let mapped = 0;
    let outsideRam = 0;
    for (const [pfn, leaf] of this.mapped) {
      if (pfn < first || pfn >= end) continue;
      const want = wanted.get(pfn);
      if (want?.gpaPfn === leaf.gpaPfn && want.writable === leaf.writable) continue;
      this.fd.ioasUnmap(this.ioasId, BigInt(pfn) * PAGE, PAGE);
      this.mapped.delete(pfn);
      unmapped++;
    }
    for (const [pfn, leaf] of wanted) {
      if (pfn < first || pfn >= end || this.mapped.has(pfn)) continue;
      if (!this.mapPage(pfn, leaf)) {
        outsideRam++;
        continue;
      }
      this.mapped.set(pfn, leaf);
      mapped++;
    }
    return { mapped, unmapped, outsideRam };
  }

  /** Maps all of guest RAM at IOVA = GPA (nothing to do when it already does). */
  setIdentity(): void {
    if (this.identity) return;
    this.clear();
    const { gpa, memory } = this.guestRam;
    this.fd.ioasMap({
      ioasId: this.ioasId,
      memory,
      length: memory.length,
      iova: gpa,
      readable: true,
      writeable: true,
    });
    this.identity = true;
  }

  /** Unmaps everything. */
  clear(): void {
    if (this.identity || this.mapped.size > 0) this.fd.ioasUnmap(this.ioasId, 0n, U64_MAX);
    this.mapped.clear();
    this.identity = false;
  }

  private mapPage(iovaPfn: number, leaf: ShadowLeaf): boolean {
    const { gpa, memory } = this.guestRam;
    const offset = BigInt(leaf.gpaPfn) * PAGE - gpa;
    if (offset < 0n || offset + PAGE > memory.length) return false;
    this.fd.ioasMap({
      ioasId: this.ioasId,
      memory,
      offset,
      length: PAGE,
      iova: BigInt(iovaPfn) * PAGE,
      readable: true,
      writeable: leaf.writable,
    });
    return true;
  }
}
