/**
 * Scenario 7: an emulated device behind an emulated-mode vSMMUv3, in a VM that also has a nested vSMMUv3
 * for its assigned NIC. The guest runs one SMMUv3 driver per vIOMMU; the emulated model walks the guest's
 * tables in guest memory; the host SMMU never sees the emulated device's DMA.
 */
import type { Smmuv3Hardware } from '@iommukit/smmuv3';
import { describe, expect, it } from 'vitest';
import { smmuHost } from '../test/host.js';
import { Vm } from './vm.js';

const MiB = 2 ** 20;
const RW = { read: true, write: true };

describe('emulated vSMMUv3', () => {
  it('scenario 7: an emulated device DMAs through the emulated vSMMU next to a nested one', async () => {
    const { system, host } = await smmuHost();
    const vm = new Vm(host, {
      name: 'vm0',
      memory: 64 * MiB,
      devices: ['nic0'],
      emulatedDevices: ['edu0'],
      viommus: ['nested', 'emulated'],
    });
    vm.powerOn();
    expect(vm.guest.drivers.size).toBe(2);
    const hostSmmu = system.iommu('smmu0').hardware as Smmuv3Hardware;
    const hostTranslations = hostSmmu.stats().tlbMisses! + hostSmmu.stats().tlbHits!;

    const gpa = vm.guest.allocBuffer(4096);
    const iova = vm.guest.dma('edu0').map(gpa, 4096n, RW);
    expect(iova).not.toBe(gpa);
    const edu = vm.emulatedDevice('edu0');
    expect(edu.dmaWrite(iova + 8n, Uint8Array.of(0x77))).toMatchObject({ ok: true });
    expect(vm.guest.read(gpa + 8n, 1)[0]).toBe(0x77);
    const emulated = vm.viommu('emulated')!.hardware as Smmuv3Hardware;
    expect(emulated.stats().walks).toBeGreaterThan(0);
    expect(hostSmmu.stats().tlbMisses! + hostSmmu.stats().tlbHits!).toBe(hostTranslations);

    // The assigned NIC still goes through the nested one.
    const nicGpa = vm.guest.allocBuffer(4096);
    const nicIova = vm.guest.dma('nic0').map(nicGpa, 4096n, RW);
    expect(system.device('nic0').dmaWrite(nicIova, Uint8Array.of(1)).ok).toBe(true);
    expect(vm.guest.read(nicGpa, 1)[0]).toBe(1);

    // An IOVA the guest never mapped: the emulated SMMU records F_TRANSLATION for the guest driver.
    expect(edu.dmaWrite(0x7000_0000n, Uint8Array.of(1)).ok).toBe(false);
    vm.serviceInterrupts();
    expect(vm.guest.faults.records).toMatchObject([
      { iommu: 'vm0.viommu-emulated', device: 'edu0', fault: { vendorCode: 'F_TRANSLATION' } },
    ]);
  });

  it('an emulated device without an emulated vIOMMU DMAs to guest-physical addresses', async () => {
    const { host } = await smmuHost();
    const vm = new Vm(host, { name: 'vm0', memory: 32 * MiB, devices: [], emulatedDevices: ['edu0'] });
    vm.powerOn();
    const gpa = vm.guest.allocBuffer(4096);
    expect(vm.guest.dma('edu0').map(gpa, 4096n, RW)).toBe(gpa);
    vm.emulatedDevice('edu0').dmaWrite(gpa, Uint8Array.of(9));
    expect(vm.guest.read(gpa, 1)[0]).toBe(9);
    vm.powerOff();
  });
});
