/**
 * A host endpoint assigned to a VM, in the role of VFIO with an iommufd cdev: bound to the VM's iommufd
 * context, attached to the VM's stage 2 unless a nested vIOMMU attaches it elsewhere, and seen by the guest
 * as a PCI function at a virtual RID. On Arm the guest programs StreamID = RID, so the virtual RID is also
 * the vSID. The guest's writes to the function's ATS/PRI/PASID controls reach the physical function, as
 * VFIO passes those capability registers through.
 */
import {
  type DevicePciControl,
  type EndpointDevice,
  formatRid,
  type IommuDeviceRef,
  type IommuFd,
} from '@iommukit/core';

export class AssignedDevice {
  readonly devId: number;
  /** The guest's `struct device` for the function (what its IOMMU driver probes). */
  readonly guestView: IommuDeviceRef;

  constructor(
    readonly host: EndpointDevice,
    private readonly fd: IommuFd,
    readonly virtualRid: number,
  ) {
    this.devId = fd.bind(host);
    const pci: DevicePciControl = {
      hasAts: host.pci.hasAts,
      hasPri: host.pci.hasPri,
      hasPasid: host.pci.hasPasid,
      setAtsEnabled: (on) => host.pci.setAtsEnabled(on),
      setPriEnabled: (on) => host.pci.setPriEnabled(on),
      setPasidEnabled: (on) => host.pci.setPasidEnabled(on),
    };
    this.guestView = {
      name: host.name,
      rid: virtualRid,
      streamId: virtualRid,
      pasidBits: host.pasidBits,
      canStall: false,
      pci,
    };
  }

  get name(): string {
    return this.host.name;
  }

  get virtualRidText(): string {
    return formatRid(this.virtualRid);
  }

  /** Releases the device from the VM (VFIO close): iommufd detaches it and it returns to blocked DMA. */
  unbind(): void {
    this.fd.unbind(this.devId);
  }
}
