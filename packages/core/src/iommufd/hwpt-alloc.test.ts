/** HWPT_ALLOC (hwpt-alloc.ts) through `IommuFd`: what a HWPT allocated with a fault ID sends to its FAULT queue. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type IommufdRig, iommufdRig, RW } from '../../test/iommufd-rig.js';
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
