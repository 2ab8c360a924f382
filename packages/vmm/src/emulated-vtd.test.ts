/**
 * The emulated vVT-d (QEMU's default intel-iommu): an emulated device behind the VT-d model on the guest
 * bus, next to a nested vVT-d for the assigned NIC. The guest runs one VT-d driver per vIOMMU; the emulated
 * unit walks the guest's tables in guest memory, and its fault event reaches the guest's driver as an MSI
 * through the VM's virtual APIC.
 */
import type { VtdHardware } from '@iommukit/vtd';
import { describe, expect, it } from 'vitest';
import { vtdHost } from '../test/host.js';
import { Vm } from './vm.js';

const MiB = 2 ** 20;
const RW = { read: true, write: true };

describe('emulated vVT-d', () => {
  it('an emulated device DMAs through the emulated unit; its fault reaches the guest driver by MSI', async () => {
    const { system, host } = await vtdHost(['nic0'], {}, true);
    const vm = new Vm(host, {
      name: 'vm0',
      memory: 64 * MiB,
      devices: ['nic0'],
      emulatedDevices: ['edu0'],
      viommus: ['nested', 'emulated'],
    });
    vm.powerOn();
    expect(vm.guest.drivers.size).toBe(2);
    const hostUnit = system.iommu('dmar0').hardware as VtdHardware;
    const hostWalks = hostUnit.stats().walks;

    const gpa = vm.guest.allocBuffer(4096);
    const iova = vm.guest.dma('edu0').map(gpa, 4096n, RW);
    expect(iova).not.toBe(gpa);
    const edu = vm.emulatedDevice('edu0');
    expect(edu.dmaWrite(iova + 8n, Uint8Array.of(0x77))).toMatchObject({ ok: true });
    expect(vm.guest.read(gpa + 8n, 1)[0]).toBe(0x77);
    const emulated = vm.viommu('emulated')!.hardware as VtdHardware;
    expect(emulated.stats().walks).toBeGreaterThan(0);
    expect(emulated.features).toMatchObject({
      deviceTlb: false,
      interruptRemapping: false,
      cachingMode: false,
    });
    expect(hostUnit.stats().walks).toBe(hostWalks);

    // The assigned NIC still goes through the nested vVT-d and the host unit.
    const nicGpa = vm.guest.allocBuffer(4096);
    const nicIova = vm.guest.dma('nic0').map(nicGpa, 4096n, RW);
    expect(system.device('nic0').dmaWrite(nicIova, Uint8Array.of(1)).ok).toBe(true);
    expect(vm.guest.read(nicGpa, 1)[0]).toBe(1);

    // An IOVA the guest never mapped: the emulated unit records 0x71 and signals the guest's driver.
    expect(edu.dmaWrite(0x7000_0000n, Uint8Array.of(1)).ok).toBe(false);
    vm.serviceInterrupts();
    expect(vm.guest.faults.records).toMatchObject([
      { iommu: 'vm0.viommu-emulated', device: 'edu0', fault: { vendorCode: 'DMAR_FR_0x71' } },
    ]);
  });
});
