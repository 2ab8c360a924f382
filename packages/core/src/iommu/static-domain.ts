/**
 * A driver's blocking or identity domain (Linux's static `blocked_domain` / `identity_domain`): no page
 * table, only a mode the driver writes into the device's table entry (abort / bypass). Mapping into it is
 * refused; it lives as long as the driver.
 */
import { iova } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { DomainType, IommuDomain } from './driver.js';

export class StaticDomain implements IommuDomain {
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

  // Stryker disable next-line BlockStatement: an empty body returns undefined too
  iovaToPhys(): undefined {
    return undefined;
  }

  free(): void {}
}
