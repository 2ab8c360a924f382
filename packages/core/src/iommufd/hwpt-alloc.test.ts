/** HWPT_ALLOC (hwpt-alloc.ts) through `IommuFd`: what a HWPT allocated with a fault ID sends to its FAULT queue. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type IommufdRig, iommufdRig, RW } from '../../test/iommufd-rig.js';
import { errnoOf } from '../errors/iommufd-error.js';
import { NO_PASID } from '../iommu/translation.js';

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
});
afterEach(() => r.dispose());

describe('HWPT_ALLOC with IOMMU_HWPT_FAULT_ID_VALID', () => {
  it('each I/O page fault record names the dev_id of the device that faulted (struct iommu_hwpt_pgfault.dev_id)', () => {
    const { fd, system } = r;
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory: r.memory, length: 0x1000n, iova: 0x10_0000n, ...RW });
    const faultId = fd.faultQueueAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, faultId });
    fd.attach(r.devId0, hwpt);
    fd.attach(r.devId1, hwpt);
    const fault = (device: string, iova: bigint) =>
      system.iommuCore.reportPageRequest(system.device(device), {
        pasid: NO_PASID,
        iova,
        access: 1,
        groupIndex: 0,
        last: true,
      });
    fault('dev1', 0x20_0000n);
    fault('dev0', 0x30_0000n);
    expect(fd.faultRead(faultId).map((f) => [f.devId, f.addr])).toEqual([
      [r.devId1, 0x20_0000n],
      [r.devId0, 0x30_0000n],
    ]);
  });
});

describe('HWPT_ALLOC flags', () => {
  /** A nest-parent HWPT on an IOAS with one page mapped. */
  const nestParent = () => {
    const ioas = r.fd.ioasAlloc();
    r.fd.ioasMap({ ioasId: ioas, memory: r.memory, length: 0x1000n, iova: 0x10_0000n, ...RW });
    return r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { nestParent: true } });
  };

  it('IOMMU_HWPT_ALLOC_PASID: only a HWPT allocated with it, paging or nested, attaches at a PASID', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const plain = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    const pasid = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { pasid: true } });
    expect(errnoOf(() => fd.attach(r.devId0, plain, 1))).toBe('EINVAL');
    expect(fd.attach(r.devId0, pasid, 1)).toBe(pasid);
    fd.detach(r.devId0, 1);
    const s2 = nestParent();
    const nested = fd.hwptAlloc({ devId: r.devId0, ptId: s2, data: { tag: 1 } });
    const nestedPasid = fd.hwptAlloc({ devId: r.devId0, ptId: s2, data: { tag: 2 }, flags: { pasid: true } });
    expect(errnoOf(() => fd.attach(r.devId0, nested, 1))).toBe('EINVAL');
    expect(fd.attach(r.devId0, nestedPasid, 1)).toBe(nestedPasid);
  });

  it('a dirty-tracking HWPT needs an IOMMU with dirty tracking (EOPNOTSUPP), and nothing is left behind', () => {
    const { fd, system } = r;
    const ioas = fd.ioasAlloc();
    const driver = system.iommus[0]!.driver;
    const hwInfo = driver.hwInfo.bind(driver);
    Object.defineProperty(driver, 'hwInfo', {
      value: (device: never) => {
        const info = hwInfo(device);
        return { ...info, capabilities: { ...info.capabilities, dirtyTracking: false } };
      },
    });
    const before = fd.objects();
    expect(errnoOf(() => fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { dirtyTracking: true } }))).toBe(
      'EOPNOTSUPP',
    );
    expect(fd.objects()).toEqual(before);
    expect(fd.hwptAlloc({ devId: r.devId0, ptId: ioas })).toBeGreaterThan(0);
  });
});
