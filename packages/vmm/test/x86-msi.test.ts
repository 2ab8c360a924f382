/**
 * An assigned device's MSIs on an x86 host (the mock IOMMU with interrupt remapping, the x86 APICs): the
 * host's vectors are remapping entries whose messages the IOMMU never translates, the VMM programs each
 * vector's own message into the device, and the host interrupt is injected into the VM's virtual APIC as
 * the guest composed it.
 */
import { createSystem, errnoOf, PluginRegistry, type System } from '@iommukit/core';
import { mockPlugin } from '@iommukit/testing';
import { x86ApicModule } from '@iommukit/x86-apic';
import { afterEach, describe, expect, it } from 'vitest';
import { Vm } from '../src/vm.js';
import { systemHost } from '../src/vmm-module.js';

const systems: System[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.dispose()));
});

async function x86Host(interruptRemapping: boolean) {
  const registry = new PluginRegistry(
    { mock: async () => ({ default: mockPlugin }) },
    { 'x86-apic': async () => ({ default: x86ApicModule }) },
  );
  const system = await createSystem(
    {
      name: 'host',
      plugin: 'mock',
      memory: { ram: [{ name: 'dram', base: 0x8000_0000, size: '512MiB' }] },
      iommus: [{ name: 'iommu0', base: 0x0900_0000, options: { interruptRemapping } }],
      devices: [{ name: 'nic0', rid: '00:02.0', iommu: 'iommu0', msiVectors: 4 }],
      msi: { controller: 'x86-apic', options: { cpus: 2, apicIds: [0, 300] } },
    },
    { registry },
  );
  systems.push(system);
  return { system, host: systemHost(system) };
}

function poweredVm(host: ReturnType<typeof systemHost>, mode: 'sw-msi' | 'passthrough' = 'sw-msi') {
  const vm = new Vm(host, {
    name: 'vm0',
    memory: 32 * 2 ** 20,
    devices: ['nic0'],
    cpus: 2,
    msi: { mode, rmr: false },
  });
  vm.powerOn();
  return vm;
}

describe('an assigned device’s MSIs on an x86 host', () => {
  it('with interrupt remapping: each vector keeps its own remappable message; the guest’s interrupt reaches its vCPU', async () => {
    const { system, host } = await x86Host(true);
    const vm = poweredVm(host);
    const msi = vm.msi!;
    expect(msi.setupDevice(vm.assignedDevice('nic0'), 2)).toContain(
      'the host messages go untranslated (a hardware MSI window)',
    );
    const nic0 = system.device('nic0');
    // Two remapping entries, two different untranslated messages (address bit 4: remappable).
    const sent = [0, 1].map((i) => nic0.msix.message(i)!.address);
    expect(new Set(sent).size).toBe(2);
    for (const address of sent) expect(address & 0xfff0_0010n).toBe(0xfee0_0010n);
    for (const vector of [0, 1]) {
      expect(nic0.signalMsi(vector)).toMatchObject({ ok: true });
      vm.serviceInterrupts();
      const guest = msi.guestVector('nic0', vector);
      expect(msi.takeInjection()).toMatchObject({ kind: 'delivered', arrival: { cpu: guest.cpu } });
    }
  });

  it('without interrupt remapping: compatibility messages, APIC ID 300 out of reach, still delivered', async () => {
    const { system, host } = await x86Host(false);
    const vm = poweredVm(host);
    vm.msi!.setupDevice(vm.assignedDevice('nic0'), 2);
    const nic0 = system.device('nic0');
    // The host restricted both vectors to CPU 0 (APIC ID 0): a compatibility message cannot name 300.
    const hostVectors = [0, 1].map((i) => nic0.msix.message(i)!);
    for (const m of hostVectors) expect((m.address >> 12n) & 0xffn).toBe(0n);
    expect(nic0.signalMsi(1)).toMatchObject({ ok: true });
    vm.serviceInterrupts();
    expect(vm.msi!.takeInjection()).toMatchObject({ kind: 'delivered' });
  });

  it('MSI passthrough is EOPNOTSUPP on x86 (the interrupt window is never translated), and nothing is kept', async () => {
    const { system, host } = await x86Host(true);
    const vm = poweredVm(host, 'passthrough');
    expect(errnoOf(() => vm.msi!.setupDevice(vm.assignedDevice('nic0'), 1))).toBe('EOPNOTSUPP');
    expect(system.device('nic0').signalMsi(0)).toBeUndefined();
  });
});
