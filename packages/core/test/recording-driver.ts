/**
 * A driver whose paging domains only record what they are asked (map, unmap, IOTLB sync, free) in one
 * shared call log, for tests of the kernel-side users of a driver (the DMA API, the SW MSI cookie): the
 * order of those calls is what the kernel promises, e.g. that `dma_unmap` returns after the IOTLB sync.
 */
import { type Hpa, type Iova, iova, toHex } from '../src/address/address.js';
import { IommufdError } from '../src/errors/iommufd-error.js';
import type { IommuDeviceRef, IommuDomain, IommuDriver, Prot, ReservedRegion } from '../src/iommu/driver.js';
import { StaticDomain } from '../src/iommu/static-domain.js';

/** How a prot reads in the log: `rw`, `r-`, `-w`, `--`. */
const protText = (prot: Prot) => `${prot.read ? 'r' : '-'}${prot.write ? 'w' : '-'}`;

export class RecordingDomain implements IommuDomain {
  readonly type = 'paging';
  readonly pgsizeBitmap = 1n << 12n;
  readonly aperture: { readonly start: Iova; readonly end: Iova };

  constructor(
    readonly id: number,
    aperture: { start: bigint; end: bigint },
    private readonly log: string[],
  ) {
    this.aperture = { start: iova(aperture.start), end: iova(aperture.end) };
  }

  map(at: Iova, paddr: Hpa, size: bigint, prot: Prot): void {
    this.log.push(`map d${this.id} ${toHex(at)} -> ${toHex(paddr)} +${toHex(size)} ${protText(prot)}`);
  }

  unmap(at: Iova, size: bigint): bigint {
    this.log.push(`unmap d${this.id} ${toHex(at)} +${toHex(size)}`);
    return size;
  }

  iotlbSync(): void {
    this.log.push(`sync d${this.id}`);
  }

  iovaToPhys(): undefined {
    return undefined;
  }

  free(): void {
    this.log.push(`free d${this.id}`);
  }
}

export interface RecordingDriverOptions {
  /** The aperture of the paging domains (default: 48-bit IOVAs). */
  readonly aperture?: { start: bigint; end: bigint };
  readonly reserved?: readonly ReservedRegion[];
  /** Attaching a paging domain fails with EINVAL (as a domain the device cannot use). */
  readonly refuseAttach?: boolean;
}

export function recordingDriver(options: RecordingDriverOptions = {}) {
  const log: string[] = [];
  let nextId = 1;
  const blockedDomain = new StaticDomain(0, 'blocked');
  const driver: IommuDriver = {
    instance: 'rec0',
    probe: () => {},
    probeDevice: () => {},
    releaseDevice: () => {},
    domainAllocPaging: () =>
      new RecordingDomain(nextId++, options.aperture ?? { start: 0n, end: (1n << 48n) - 1n }, log),
    blockedDomain,
    attachDev: (domain, device) => {
      log.push(`attach ${device.name} d${domain.id}`);
      if (options.refuseAttach && domain !== blockedDomain)
        throw new IommufdError('EINVAL', `${device.name} cannot use domain ${domain.id}`);
    },
    hwInfo: () => ({
      type: 'recording',
      data: {},
      maxPasidLog2: 0,
      capabilities: { dirtyTracking: false, pasidExec: false, pasidPriv: false },
    }),
    shutdown: () => {},
  };
  if (options.reserved) {
    const reserved = options.reserved;
    driver.reservedRegions = () => reserved;
  }
  return { driver, log, blockedDomain };
}

export const testDevice = (name: string): IommuDeviceRef =>
  ({ name, rid: 0, streamId: 0, pasidBits: 0 }) as unknown as IommuDeviceRef;
