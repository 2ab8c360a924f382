/** MSI doorbell pages iommufd maps for its devices (msi-mappings.ts), driven through `IommuFd`. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type IommufdRig, iommufdRig, RW } from '../../test/iommufd-rig.js';
import { U64_MAX } from '../address/address.js';
import { errnoOf } from '../errors/iommufd-error.js';

const PAGE = 0x1000n;

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
});
afterEach(() => r.dispose());

describe('MSI passthrough (ioasMapMsi)', () => {
  it('reserves the doorbell GPA in the IOAS: an automatic IOAS_MAP that would land there goes past it, a fixed one is EINVAL', () => {
    const { fd, memory } = r;
    // On a fresh IOAS, one page is allocated at the first page above IOVA 0 (Linux iopt_alloc_iova).
    const probe = fd.ioasAlloc();
    expect(fd.ioasMap({ ioasId: probe, memory, length: PAGE, ...RW })).toBe(PAGE);

    const ioas = fd.ioasAlloc();
    fd.ioasMapMsi(ioas, r.devId0, PAGE);
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual([
      { start: 0n, last: PAGE - 1n },
      { start: 2n * PAGE, last: U64_MAX },
    ]);
    expect(errnoOf(() => fd.ioasMap({ ioasId: ioas, memory, length: PAGE, iova: PAGE, ...RW }))).toBe(
      'EINVAL',
    );
    expect(fd.ioasMap({ ioasId: ioas, memory, length: PAGE, ...RW })).toBe(2n * PAGE);
    // The device attached to the IOAS writes its MSIs to that GPA: the doorbell page is mapped there.
    const hwpt = fd.attach(r.devId0, ioas);
    const dev0 = r.system.device('dev0');
    const doorbell = r.system.requireMsi().doorbellFor({ name: dev0.name, deviceId: dev0.streamId });
    expect(fd.msiPages(hwpt)).toEqual([{ iovaPage: PAGE, doorbellPage: doorbell.page, users: 1 }]);
  });
});
