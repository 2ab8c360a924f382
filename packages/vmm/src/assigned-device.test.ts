import type { EndpointDevice, IommuFd } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { AssignedDevice } from './assigned-device.js';

/** A host function with PCI controls that record what reaches them, and an iommufd that records binds. */
function fakes() {
  const calls: string[] = [];
  const host = {
    name: 'nic0',
    pasidBits: 8,
    pci: {
      hasAts: true,
      hasPri: false,
      hasPasid: true,
      setAtsEnabled: (on: boolean) => calls.push(`ats=${on}`),
      setPriEnabled: (on: boolean) => calls.push(`pri=${on}`),
      setPasidEnabled: (on: boolean) => calls.push(`pasid=${on}`),
    },
  } as unknown as EndpointDevice;
  const fd = {
    bind: (device: EndpointDevice) => {
      calls.push(`bind ${device.name}`);
      return 7;
    },
    unbind: (devId: number) => calls.push(`unbind ${devId}`),
  } as unknown as IommuFd;
  return { host, fd, calls };
}

describe('AssignedDevice (VFIO with an iommufd cdev)', () => {
  it('binds the host function and shows the guest a function at its virtual RID, which is also the vSID', () => {
    const { host, fd, calls } = fakes();
    const d = new AssignedDevice(host, fd, (2 << 3) | 1);
    expect(calls).toEqual(['bind nic0']);
    expect(d.devId).toBe(7);
    expect([d.name, d.virtualRid, d.virtualRidText]).toEqual(['nic0', 0x11, '00:02.1']);
    expect(d.guestView).toMatchObject({
      name: 'nic0',
      rid: 0x11,
      streamId: 0x11,
      pasidBits: 8,
      canStall: false,
    });
    expect([d.guestView.pci!.hasAts, d.guestView.pci!.hasPri, d.guestView.pci!.hasPasid]).toEqual([
      true,
      false,
      true,
    ]);
  });

  it('passes the guest’s ATS, PRI and PASID enables through to the physical function', () => {
    const { host, fd, calls } = fakes();
    const pci = new AssignedDevice(host, fd, 8).guestView.pci!;
    pci.setAtsEnabled(true);
    pci.setPriEnabled(false);
    pci.setPasidEnabled(true);
    expect(calls.slice(1)).toEqual(['ats=true', 'pri=false', 'pasid=true']);
  });

  it('unbind releases its iommufd device', () => {
    const { host, fd, calls } = fakes();
    new AssignedDevice(host, fd, 8).unbind();
    expect(calls).toEqual(['bind nic0', 'unbind 7']);
  });
});
