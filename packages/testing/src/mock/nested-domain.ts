/**
 * A nested domain of the mock: a stage-1 table in the mock page-table format at an intermediate
 * (guest-physical) address, walked through its parent paging domain as stage 2. The stage-1 tag plays
 * the role of an ASID: the guest picks it, and nested IOTLB entries are tagged with (parent domain, tag).
 */
import {
  type Hpa,
  type InvalidationResult,
  type IommuDomain,
  IommufdError,
  iova,
  toHex,
} from '@iommukit/core';
import type { MockPagingDomain } from './domain.js';
import { PT_IOVA_BITS } from './formats.js';
import { type MockHwptInvalidation, parseHwptEntry, runEntries } from './invalidation.js';
import type { MockViommu } from './viommu.js';

/** Vendor data for a mock nested HWPT (the role of the guest's STE or stage-1 pointer). */
export interface MockNestedData {
  /** Stage-1 root table, an intermediate address (4 KiB aligned, below 2^39). */
  readonly s1Root: bigint;
  /** Stage-1 tag, 1..65535. */
  readonly tag: number;
}

export interface NestedHost {
  invalidateS1(parent: MockPagingDomain, tag: number, range?: { iova: bigint; size: bigint }): void;
  releaseDomainId(id: number): void;
}

export class MockNestedDomain implements IommuDomain {
  readonly type = 'nested';
  readonly pgsizeBitmap = 0n;
  readonly aperture = { start: iova(0n), end: iova((1n << BigInt(PT_IOVA_BITS)) - 1n) };
  readonly s1RootPfn: number;
  readonly tag: number;
  /** Attachments (`sid` or `sid:pasid`). */
  readonly attached = new Set<string>();
  private freed = false;

  constructor(
    readonly id: number,
    readonly parent: MockPagingDomain,
    data: unknown,
    private readonly host: NestedHost,
    /** The vIOMMU it was allocated on, if any: attaching a device needs the device's vDEVICE there. */
    readonly viommu?: MockViommu,
  ) {
    const { s1Root, tag } = parseNestedData(data);
    this.s1RootPfn = Number(s1Root / 4096n);
    this.tag = tag;
  }

  map(): void {
    throw new IommufdError(
      'EOPNOTSUPP',
      'a nested domain is mapped by its owner in its stage-1 table, not through map()',
    );
  }

  unmap(): bigint {
    throw new IommufdError('EOPNOTSUPP', 'a nested domain is unmapped by its owner in its stage-1 table');
  }

  iotlbSync(): void {}

  iovaToPhys(): Hpa | undefined {
    return undefined;
  }

  cacheInvalidateUser(entries: readonly unknown[]): InvalidationResult {
    return runEntries<MockHwptInvalidation>(entries, parseHwptEntry, (entry) =>
      this.host.invalidateS1(this.parent, this.tag, entry.op === 'range' ? entry : undefined),
    );
  }

  free(): void {
    if (this.freed) return;
    if (this.attached.size > 0) throw new IommufdError('EBUSY', `nested domain ${this.id} is still attached`);
    this.freed = true;
    this.host.invalidateS1(this.parent, this.tag);
    this.host.releaseDomainId(this.id);
  }
}

export function parseNestedData(data: unknown): MockNestedData {
  const d = data as Partial<MockNestedData> | null;
  if (typeof d !== 'object' || d === null || typeof d.s1Root !== 'bigint' || typeof d.tag !== 'number') {
    throw new IommufdError('EINVAL', 'mock nested data is { s1Root: bigint, tag: number }');
  }
  if (d.s1Root % 4096n !== 0n || d.s1Root >= 1n << BigInt(PT_IOVA_BITS)) {
    throw new IommufdError(
      'EINVAL',
      `stage-1 root ${toHex(d.s1Root)} is not a 4 KiB aligned address below 2^${PT_IOVA_BITS}`,
    );
  }
  if (!Number.isInteger(d.tag) || d.tag < 1 || d.tag > 0xffff)
    throw new IommufdError('EINVAL', `stage-1 tag ${d.tag} is not in 1..65535`);
  return { s1Root: d.s1Root, tag: d.tag };
}
