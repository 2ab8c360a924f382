/**
 * The mock vIOMMU: a VM's slice of a mock IOMMU on a nest-parent domain. It keeps the vDEVICE table
 * (virtual ID ↔ device), allocates nested domains, runs the guest's invalidation entries with IDs
 * translated, and forwards fault records of its devices as `mock` vEVENTQ events with the stream ID
 * replaced by the virtual ID.
 */
import {
  type InvalidationResult,
  type IommuDeviceRef,
  type IommuDomain,
  IommufdError,
  toHex,
  type ViommuDriverObject,
  type ViommuEventSink,
} from '@iommukit/core';
import type { MockPagingDomain } from './domain.js';
import { type MockViommuInvalidation, parseViommuEntry, runEntries } from './invalidation.js';

export const MOCK_VIOMMU_TYPE = 'mock';
export const MOCK_VEVENT_TYPE = 'mock';

export interface ViommuHost {
  allocNested(parent: MockPagingDomain, data: unknown, viommu: MockViommu): IommuDomain;
  invalidateS1(parent: MockPagingDomain, tag: number, range?: { iova: bigint; size: bigint }): void;
  invalidateDevice(device: IommuDeviceRef): void;
  forget(viommu: MockViommu): void;
}

export class MockViommu implements ViommuDriverObject {
  readonly type = MOCK_VIOMMU_TYPE;
  private readonly byVirtId = new Map<bigint, IommuDeviceRef>();
  private readonly byDevice = new Map<IommuDeviceRef, bigint>();

  constructor(
    readonly parent: MockPagingDomain,
    private readonly host: ViommuHost,
    private readonly events: ViommuEventSink,
  ) {}

  vdeviceAlloc(device: IommuDeviceRef, virtId: bigint): void {
    if (virtId >= 1n << 32n)
      throw new IommufdError('EINVAL', `mock virtual IDs are 32 bits; ${toHex(virtId)} is not`);
    this.byVirtId.set(virtId, device);
    this.byDevice.set(device, virtId);
  }

  /** The virtual ID of `device` on this vIOMMU, if it has a vDEVICE here. */
  virtIdOf(device: IommuDeviceRef): bigint | undefined {
    return this.byDevice.get(device);
  }

  vdeviceDestroy(device: IommuDeviceRef): void {
    const virtId = this.byDevice.get(device);
    if (virtId === undefined) return;
    this.byDevice.delete(device);
    this.byVirtId.delete(virtId);
  }

  domainAllocNested(data: unknown): IommuDomain {
    return this.host.allocNested(this.parent, data, this);
  }

  cacheInvalidate(entries: readonly unknown[]): InvalidationResult {
    return runEntries<MockViommuInvalidation>(entries, parseViommuEntry, (entry) => {
      if (entry.op !== 'device') {
        this.host.invalidateS1(this.parent, entry.tag, entry.op === 'range' ? entry : undefined);
        return;
      }
      const device = this.byVirtId.get(entry.virtId);
      if (!device) throw new IommufdError('EIO', `no vDEVICE with virtual ID ${toHex(entry.virtId)}`);
      this.host.invalidateDevice(device);
    });
  }

  /** Forwards a fault record of one of this vIOMMU's devices, with its virtual ID in word 1. */
  forwardFault(device: IommuDeviceRef, record: Uint32Array): boolean {
    const virtId = this.byDevice.get(device);
    if (virtId === undefined) return false;
    const event = Uint32Array.from(record);
    event[1] = Number(virtId);
    this.events.report(MOCK_VEVENT_TYPE, event);
    return true;
  }

  destroy(): void {
    this.byVirtId.clear();
    this.byDevice.clear();
    this.host.forget(this);
  }
}
