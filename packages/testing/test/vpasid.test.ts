/**
 * The vPASID → pPASID translation point on a vDEVICE, end to end on the mock: two guests' PASID 1 are two
 * physical PASIDs; a HWPT attached at a guest PASID is attached at its physical one, which the device's
 * DMA carries; the vDEVICE cannot go, nor the mapping, while something is attached through it.
 */
import { errnoOf, hostMemory, PERM_READ } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { MOCK_VIOMMU_TYPE } from '../src/index.js';
import { mockSystemsPerTest } from './fixtures.js';

const newSystem = mockSystemsPerTest();

async function setup() {
  const system = await newSystem({
    devices: [
      { name: 'nic0', rid: '00:02.0', iommu: 'iommu0', pasidBits: 8 },
      { name: 'nic1', rid: '00:03.0', iommu: 'iommu0', pasidBits: 8 },
    ],
  });
  const fd = system.openIommufd();
  const [nic0, nic1] = [system.device('nic0'), system.device('nic1')];
  const [dev0, dev1] = [fd.bind(nic0), fd.bind(nic1)];
  const ioas = fd.ioasAlloc();
  const s2 = fd.hwptAlloc({ devId: dev0, ptId: ioas, flags: { nestParent: true } });
  const viommu = fd.viommuAlloc(dev0, s2, MOCK_VIOMMU_TYPE);
  const vdev0 = fd.vdeviceAlloc(viommu, dev0, 8n);
  const vdev1 = fd.vdeviceAlloc(viommu, dev1, 16n);
  nic0.pci.setPasidEnabled(true);
  return { system, fd, nic0, dev0, ioas, vdev0, vdev1 };
}

describe('vDEVICE PASIDs', () => {
  it('two vDEVICEs’ guest PASID 1 get two physical PASIDs from the system’s space, beside the host’s own', async () => {
    const { system, fd, vdev0, vdev1 } = await setup();
    system.pasids.alloc(); // the host's SVA bind holds PASID 1
    expect(fd.vdevicePasidMap(vdev0, 1)).toBe(2);
    expect(fd.vdevicePasidMap(vdev1, 1)).toBe(3);
    expect(fd.vdevicePasidMap(vdev1, 5, { identity: true })).toBe(5);
    expect([fd.vdeviceVirtualPasid(vdev0, 2), fd.vdeviceVirtualPasid(vdev0, 3)]).toEqual([1, undefined]);
    expect(errnoOf(() => fd.vdevicePasidMap(vdev0, 5, { identity: true }))).toBe('EBUSY');
  });

  it('an attach at the guest PASID lands at the physical one: the device’s DMA with that PASID is translated', async () => {
    const { system, fd, nic0, dev0, ioas, vdev0 } = await setup();
    const buffer = system.memory.allocFrames(1);
    const pasidIoas = fd.ioasAlloc();
    fd.ioasMap({
      ioasId: pasidIoas,
      memory: hostMemory(buffer, 0x1000n),
      iova: 0x5000n,
      length: 0x1000n,
      readable: true,
      writeable: true,
    });
    const hwpt = fd.hwptAlloc({ devId: dev0, ptId: pasidIoas, flags: { pasid: true } });
    fd.attach(dev0, fd.hwptAlloc({ devId: dev0, ptId: ioas, flags: { pasid: true } }));
    const ppasid = fd.vdevicePasidMap(vdev0, 3);
    expect(fd.vdevicePasidAttach(vdev0, 3, hwpt)).toBe(hwpt);
    expect(fd.attachedHwpt(dev0, ppasid)).toBe(hwpt);
    expect(nic0.dmaRead(0x5000n, 4, { pasid: ppasid })).toMatchObject({ ok: true });
    expect(nic0.dmaRead(0x5000n, 4, { pasid: 3 })).toMatchObject({ ok: false, fault: { access: PERM_READ } });
    // Busy while attached through it: the mapping and the vDEVICE.
    expect(errnoOf(() => fd.vdevicePasidUnmap(vdev0, 3))).toBe('EBUSY');
    expect(errnoOf(() => fd.destroy(vdev0))).toBe('EBUSY');
    fd.vdevicePasidDetach(vdev0, 3);
    expect(fd.attachedHwpt(dev0, ppasid)).toBeUndefined();
    expect(errnoOf(() => fd.vdevicePasidDetach(vdev0, 3))).toBe('ENOENT');
    fd.vdevicePasidUnmap(vdev0, 3);
    expect(system.pasids.isAllocated(ppasid)).toBe(false);
    fd.destroy(vdev0);
  });

  it('attaching again at the same guest PASID replaces what is there', async () => {
    const { fd, dev0, ioas, vdev0 } = await setup();
    fd.attach(dev0, fd.hwptAlloc({ devId: dev0, ptId: ioas, flags: { pasid: true } }));
    const a = fd.hwptAlloc({ devId: dev0, ptId: fd.ioasAlloc(), flags: { pasid: true } });
    const b = fd.hwptAlloc({ devId: dev0, ptId: fd.ioasAlloc(), flags: { pasid: true } });
    const ppasid = fd.vdevicePasidMap(vdev0, 2);
    fd.vdevicePasidAttach(vdev0, 2, a);
    fd.vdevicePasidAttach(vdev0, 2, b);
    expect(fd.attachedHwpt(dev0, ppasid)).toBe(b);
    fd.vdevicePasidDetach(vdev0, 2);
    fd.destroy(vdev0);
  });

  it('an unmapped guest PASID cannot be attached (ENOENT); a vDEVICE that goes gives its PASIDs back', async () => {
    const { system, fd, dev0, ioas, vdev0 } = await setup();
    const hwpt = fd.hwptAlloc({ devId: dev0, ptId: ioas, flags: { pasid: true } });
    expect(errnoOf(() => fd.vdevicePasidAttach(vdev0, 4, hwpt))).toBe('ENOENT');
    fd.vdevicePasidMap(vdev0, 4);
    fd.vdevicePasidMap(vdev0, 6);
    expect(system.pasids.allocated).toBe(2);
    fd.destroy(vdev0);
    expect(system.pasids.allocated).toBe(0);
    expect(errnoOf(() => fd.vdevicePasidMap(vdev0, 4))).toBe('ENOENT');
  });
});
