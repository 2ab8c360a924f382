/** The mock driver's blocking and identity domains: no page table, only a device table MODE. */
import { type DomainType, type IommuDomain, IommufdError, iova } from '@iommukit/core';

export class MockStaticDomain implements IommuDomain {
  readonly pgsizeBitmap = 0n;
  readonly aperture = { start: iova(0n), end: iova(0n) };

  constructor(
    readonly id: number,
    readonly type: Extract<DomainType, 'blocked' | 'identity'>,
  ) {}

  map(): void {
    throw new IommufdError('EOPNOTSUPP', `a ${this.type} domain has no page table to map into`);
  }

  unmap(): bigint {
    throw new IommufdError('EOPNOTSUPP', `a ${this.type} domain has no page table to unmap from`);
  }

  iotlbSync(): void {}

  iovaToPhys(): undefined {
    return undefined;
  }

  /** Static domains live as long as the driver. */
  free(): void {}
}
