/**
 * A paging domain of the mock driver: a domain ID and a 3-level page table in host memory that the driver
 * edits through the bus, as a kernel edits its page tables. `unmap` gathers the ranges it cleared;
 * `iotlbSync` sends the range invalidations, so the TLB cannot serve a stale entry afterwards. With dirty
 * tracking on, the hardware sets PTE.D on writes and `readAndClearDirty` reports and clears it.
 */
import {
  type AccessCounter,
  type Hpa,
  hpa,
  type IFrameAllocator,
  type IommuDomain,
  IommufdError,
  type Iova,
  type ITracer,
  type MemoryBus,
  iova as makeIova,
  type PagingDomainFlags,
  type Prot,
  toHex,
} from '@iommukit/core';
import {
  PT_IOVA_BITS,
  PT_LEVELS,
  PTE_D,
  PTE_P,
  PTE_R,
  PTE_W,
  pteAddressPfn,
  pteWords,
  ptIndex,
} from './formats.js';

const PAGE = 4096n;
const APERTURE_END = (1n << BigInt(PT_IOVA_BITS)) - 1n;

/** What a domain needs from its driver. */
export interface DomainHost {
  readonly instance: string;
  readonly bus: MemoryBus;
  readonly memory: IFrameAllocator;
  readonly counter: AccessCounter;
  readonly tracer: ITracer;
  /** CAP.CM: a map is followed by a range invalidation too (the hardware may cache not-present entries). */
  readonly cachingMode: boolean;
  invalidateRange(domainId: number, iova: bigint, size: bigint): void;
  invalidateDomain(domainId: number): void;
  releaseDomainId(domainId: number): void;
  /** Rewrites the context entries of every attachment of the domain (dirty tracking changed). */
  refreshAttachments(domain: MockPagingDomain): void;
}

export class MockPagingDomain implements IommuDomain {
  readonly type = 'paging';
  readonly pgsizeBitmap = PAGE;
  readonly aperture = { start: makeIova(0n), end: makeIova(APERTURE_END) };
  readonly rootPfn: number;
  /** Attachments (`sid` or `sid:pasid`), this domain's own or as the stage 2 of nested domains. */
  readonly attached = new Set<string>();
  dirtyTracking = false;
  private readonly tables = new Set<number>();
  private gathered: [bigint, bigint] | undefined;
  private readonly pte = new Uint32Array(2);
  private freed = false;

  constructor(
    readonly id: number,
    readonly flags: PagingDomainFlags,
    private readonly host: DomainHost,
  ) {
    this.rootPfn = this.allocTable();
  }

  map(iova: Iova, paddr: Hpa, size: bigint, prot: Prot): void {
    this.checkLive();
    this.checkRange(iova, size);
    if (paddr % PAGE !== 0n)
      throw new IommufdError('EINVAL', `physical address ${toHex(paddr)} is not 4 KiB aligned`);
    if (!prot.read && !prot.write)
      throw new IommufdError('EINVAL', 'a mapping needs read or write permission');
    const firstPfn = Number(iova / PAGE);
    const pages = Number(size / PAGE);
    for (let i = 0; i < pages; i++) {
      if (this.leafAddress(firstPfn + i) !== undefined) {
        throw new IommufdError(
          'EEXIST',
          `IOVA ${toHex(BigInt(firstPfn + i) * PAGE)} is already mapped in domain ${this.id}`,
          {
            domain: this.id,
          },
        );
      }
    }
    const flags = PTE_P | (prot.read ? PTE_R : 0) | (prot.write ? PTE_W : 0);
    const outPfn = Number(paddr / PAGE);
    for (let i = 0; i < pages; i++) this.writeLeaf(firstPfn + i, pteWords(outPfn + i, flags));
    // Caching mode: a not-present entry may be cached, so a new mapping is invalidated like a removed one
    // (Linux intel-iommu's iotlb_sync_map with CAP.CM).
    if (this.host.cachingMode) this.host.invalidateRange(this.id, iova, size);
    if (this.host.tracer.enabled) {
      this.host.tracer.trace(
        'driver',
        this.host.instance,
        'map',
        `domain ${this.id}: map IOVA ${toHex(iova)}+${toHex(size)} → ${toHex(paddr)} (${pages} PTEs)`,
        {
          domain: this.id,
          iova,
          paddr,
          size,
        },
      );
    }
  }

  unmap(iova: Iova, size: bigint): bigint {
    this.checkLive();
    this.checkRange(iova, size);
    const firstPfn = Number(iova / PAGE);
    let unmapped = 0n;
    for (let i = 0; i < Number(size / PAGE); i++) {
      const slot = this.leafSlot(firstPfn + i, false);
      if (slot === undefined || !this.readPte(slot)) continue;
      this.pte[0] = 0;
      this.pte[1] = 0;
      this.host.bus.writeWords(slot, this.pte, 2, this.host.counter);
      unmapped += PAGE;
    }
    if (unmapped > 0n) {
      const end = iova + size;
      this.gathered = this.gathered ? [min(this.gathered[0], iova), max(this.gathered[1], end)] : [iova, end];
    }
    if (this.host.tracer.enabled) {
      this.host.tracer.trace(
        'driver',
        this.host.instance,
        'unmap',
        `domain ${this.id}: unmap IOVA ${toHex(iova)}+${toHex(size)}: ${toHex(unmapped)} bytes cleared`,
        {
          domain: this.id,
          iova,
          size,
          unmapped,
        },
      );
    }
    return unmapped;
  }

  iotlbSync(): void {
    if (!this.gathered) return;
    const [start, end] = this.gathered;
    this.gathered = undefined;
    this.host.invalidateRange(this.id, start, end - start);
  }

  setDirtyTracking(enabled: boolean): void {
    if (!this.flags.dirtyTracking)
      throw new IommufdError('EOPNOTSUPP', `domain ${this.id} was not allocated for dirty tracking`);
    this.dirtyTracking = enabled;
    this.host.refreshAttachments(this);
  }

  readAndClearDirty(
    iova: Iova,
    size: bigint,
    record: (iova: bigint, size: bigint) => void,
    clear: boolean,
  ): void {
    this.checkLive();
    const firstPfn = Number(iova / PAGE);
    let cleared = false;
    for (let i = 0; i < Number(size / PAGE); i++) {
      const slot = this.leafSlot(firstPfn + i, false);
      if (slot === undefined || !this.readPte(slot) || (this.pte[0]! & PTE_D) === 0) continue;
      record(BigInt(firstPfn + i) * PAGE, PAGE);
      if (!clear) continue;
      this.pte[0] = (this.pte[0]! & ~PTE_D) >>> 0;
      this.host.bus.writeWords(slot, this.pte, 1, this.host.counter);
      cleared = true;
    }
    // Cached translations remember the dirty state: flush them so the next write sets D again.
    if (cleared) this.host.invalidateRange(this.id, iova, size);
  }

  iovaToPhys(iova: Iova): Hpa | undefined {
    const pfn = this.leafAddress(Number(iova / PAGE));
    return pfn === undefined ? undefined : hpa(BigInt(pfn) * PAGE + (iova % PAGE));
  }

  free(): void {
    if (this.freed) return;
    if (this.attached.size > 0) {
      throw new IommufdError(
        'EBUSY',
        `domain ${this.id} is still attached to ${this.attached.size} device(s)`,
        { domain: this.id },
      );
    }
    this.freed = true;
    this.host.invalidateDomain(this.id);
    for (const pfn of this.tables) this.host.memory.freeFrames(hpa(BigInt(pfn) * PAGE), 1);
    this.tables.clear();
    this.host.releaseDomainId(this.id);
  }

  /** Number of page-table pages the domain holds (for leak checks). */
  get tablePages(): number {
    return this.tables.size;
  }

  private checkLive(): void {
    if (this.freed) throw new IommufdError('ENOENT', `domain ${this.id} was freed`);
  }

  private checkRange(iova: bigint, size: bigint): void {
    if (size <= 0n || iova % PAGE !== 0n || size % PAGE !== 0n) {
      throw new IommufdError(
        'EINVAL',
        `IOVA ${toHex(iova)}+${toHex(size)} is not a non-empty 4 KiB aligned range`,
      );
    }
    if (iova + size - 1n > APERTURE_END) {
      throw new IommufdError(
        'EINVAL',
        `IOVA ${toHex(iova)}+${toHex(size)} is outside the ${PT_IOVA_BITS}-bit aperture`,
      );
    }
  }

  /** Physical address of the leaf PTE for `iovaPfn`; allocates missing tables when `create`. */
  private leafSlot(iovaPfn: number, create: boolean): number | undefined {
    let table = this.rootPfn;
    for (let level = 0; level < PT_LEVELS - 1; level++) {
      const slot = table * 4096 + ptIndex(iovaPfn, level) * 8;
      if (this.readPte(slot)) {
        table = pteAddressPfn(this.pte[0]!, this.pte[1]!);
        continue;
      }
      if (!create) return undefined;
      const next = this.allocTable();
      this.host.bus.writeWords(slot, pteWords(next, PTE_P), 2, this.host.counter);
      table = next;
    }
    return table * 4096 + ptIndex(iovaPfn, PT_LEVELS - 1) * 8;
  }

  private leafAddress(iovaPfn: number): number | undefined {
    const slot = this.leafSlot(iovaPfn, false);
    if (slot === undefined || !this.readPte(slot)) return undefined;
    return pteAddressPfn(this.pte[0]!, this.pte[1]!);
  }

  private writeLeaf(iovaPfn: number, words: [number, number]): void {
    this.host.bus.writeWords(this.leafSlot(iovaPfn, true)!, words, 2, this.host.counter);
  }

  /** Reads the PTE at `addr` into `this.pte`; returns whether it is present. */
  private readPte(addr: number): boolean {
    if (!this.host.bus.readWords(addr, this.pte, 2, this.host.counter)) return false;
    return (this.pte[0]! & PTE_P) !== 0;
  }

  private allocTable(): number {
    const pfn = Number(this.host.memory.allocFrames(1) / PAGE);
    this.tables.add(pfn);
    return pfn;
  }
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);
const max = (a: bigint, b: bigint) => (a > b ? a : b);
