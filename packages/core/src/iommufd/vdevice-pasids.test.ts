/** iommufd's vPASID calls on a vDEVICE (vpasid.ts), driven through `IommuFd` on the fake IOMMU. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FAKE_VIOMMU_TYPE } from '../../test/fake-iommufd-plugin.js';
import { type IommufdRig, iommufdRig } from '../../test/iommufd-rig.js';
import { errnoOf } from '../errors/iommufd-error.js';
import type { Tracer } from '../trace/tracer.js';

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
});
afterEach(() => r.dispose());

/** dev0 with a vDEVICE on a vIOMMU, and a PASID-compatible HWPT at its RID. */
function vdevice() {
  const { fd } = r;
  const s2 = fd.hwptAlloc({ devId: r.devId0, ptId: fd.ioasAlloc(), flags: { nestParent: true } });
  const viommu = fd.viommuAlloc(r.devId0, s2, FAKE_VIOMMU_TYPE);
  const vdev = fd.vdeviceAlloc(viommu, r.devId0, 8n);
  fd.attach(r.devId0, fd.hwptAlloc({ devId: r.devId0, ptId: fd.ioasAlloc(), flags: { pasid: true } }));
  const pasidHwpt = () => fd.hwptAlloc({ devId: r.devId0, ptId: fd.ioasAlloc(), flags: { pasid: true } });
  return { fd, vdev, pasidHwpt };
}

describe('vDEVICE PASIDs through iommufd', () => {
  it('maps guest PASIDs to physical ones from the system’s space, identity on request, and back', () => {
    const { fd, vdev } = vdevice();
    r.system.pasids.alloc();
    expect(fd.vdevicePasidMap(vdev, 1)).toBe(2);
    expect(fd.vdevicePasidMap(vdev, 9, { identity: true })).toBe(9);
    expect(errnoOf(() => fd.vdevicePasidMap(vdev, 3, { identity: true }))).toBeUndefined();
    expect(errnoOf(() => fd.vdevicePasidMap(vdev, 4, { identity: true }))).toBeUndefined();
    expect([
      fd.vdeviceVirtualPasid(vdev, 2),
      fd.vdeviceVirtualPasid(vdev, 9),
      fd.vdeviceVirtualPasid(vdev, 5),
    ]).toEqual([1, 9, undefined]);
    expect(errnoOf(() => fd.vdevicePasidMap(vdev, 2 ** 32))).toBe('EINVAL');
    expect(errnoOf(() => fd.vdevicePasidMap(r.devId0, 1))).toBe('ENOENT');
  });

  it('attaches at the physical PASID, replaces on a second attach, and holds the vDEVICE until detached', () => {
    const { fd, vdev, pasidHwpt } = vdevice();
    const ppasid = fd.vdevicePasidMap(vdev, 5);
    const [a, b] = [pasidHwpt(), pasidHwpt()];
    expect(fd.vdevicePasidAttach(vdev, 5, a)).toBe(a);
    expect(fd.attachedHwpt(r.devId0, ppasid)).toBe(a);
    expect(fd.vdevicePasidAttach(vdev, 5, b)).toBe(b);
    expect(fd.attachedHwpt(r.devId0, ppasid)).toBe(b);
    expect(errnoOf(() => fd.vdevicePasidUnmap(vdev, 5))).toBe('EBUSY');
    expect(errnoOf(() => fd.destroy(vdev))).toBe('EBUSY');
    fd.vdevicePasidDetach(vdev, 5);
    expect(fd.attachedHwpt(r.devId0, ppasid)).toBeUndefined();
    expect(errnoOf(() => fd.vdevicePasidDetach(vdev, 5))).toBe('ENOENT');
    fd.vdevicePasidUnmap(vdev, 5);
    expect(r.system.pasids.isAllocated(ppasid)).toBe(false);
    expect(errnoOf(() => fd.vdevicePasidAttach(vdev, 5, a))).toBe('ENOENT');
    fd.destroy(vdev);
  });

  it('traces each mapping', () => {
    const { fd, vdev } = vdevice();
    const tracer = r.system.tracer as Tracer;
    tracer.startRecording();
    fd.vdevicePasidMap(vdev, 3);
    const [record] = tracer.stopRecording().filter((t) => t.name === 'vdevice.pasid');
    expect(record).toMatchObject({ layer: 'iommufd', args: { vdeviceId: vdev, vpasid: 3, ppasid: 1 } });
  });
});
