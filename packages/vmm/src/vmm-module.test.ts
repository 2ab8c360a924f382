import {
  createChildContainer,
  defineViommuFrontend,
  IViommuFrontend,
  provideValue,
  type System,
  vendorViommuFrontend,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { IVmSpec, type Vm } from './vm.js';
import { systemHost, vmm } from './vmm-module.js';

/** The parts of a built system the VMM reads, with markers to see which one it handed on. */
function fakeSystem(withMsi: boolean) {
  const calls: string[] = [];
  const msiController = { kind: 'gic-its' };
  const msiModule = { name: 'gic-its' };
  const container = createChildContainer();
  provideValue(container, IViommuFrontend, vendorViommuFrontend);
  const system = {
    container,
    bus: 'bus',
    memory: 'memory',
    tracer: 'tracer',
    msi: withMsi ? msiController : undefined,
    device: (name: string) => {
      calls.push(`device ${name}`);
      return name;
    },
    openIommufd: () => {
      calls.push('open');
      return 'fd';
    },
    serviceInterrupts: () => {
      calls.push('service');
      return 3;
    },
    validated: {
      plugin: 'smmuv3',
      msi: withMsi ? { module: msiModule } : undefined,
      config: {
        vms: [
          {
            name: 'vm0',
            memory: 256n * 2n ** 20n,
            devices: ['nic0'],
            emulatedDevices: ['virtio0'],
            viommus: [{ mode: 'nested' }, { mode: 'emulated' }],
            cpus: 4,
            msi: { mode: 'passthrough' },
          },
          { name: 'vm1', memory: 2 ** 21, devices: [], emulatedDevices: [], viommus: [], cpus: 2 },
        ],
      },
    },
  };
  return { system: system as unknown as System, calls, msiController, msiModule };
}

describe('the VMM module', () => {
  it('systemHost hands a VM the system’s bus, allocator, tracer, plugin, devices, iommufd and interrupts', () => {
    const { system, calls } = fakeSystem(false);
    const host = systemHost(system);
    expect([host.bus, host.memory, host.tracer, host.plugin]).toEqual(['bus', 'memory', 'tracer', 'smmuv3']);
    expect([host.device('nic0'), host.openIommufd(), host.serviceInterrupts()]).toEqual(['nic0', 'fd', 3]);
    expect(calls).toEqual(['device nic0', 'open', 'service']);
    expect(host.msi).toBeUndefined();
    expect('msi' in host).toBe(false);
  });

  it('with an MSI controller, the host carries it and its module', () => {
    const { system, msiController, msiModule } = fakeSystem(true);
    expect(systemHost(system).msi).toEqual({ controller: msiController, module: msiModule });
  });

  it('an MSI section without a built controller gives the host none', () => {
    const { system } = fakeSystem(true);
    const noController = { ...system, msi: undefined, validated: system.validated } as unknown as System;
    expect(systemHost(noController).msi).toBeUndefined();
  });

  it('makes one powered-off VM per vms[] entry with that entry’s settings', () => {
    const { system } = fakeSystem(false);
    const vms = vmm.createVms(system) as Vm[];
    expect(vms.map((vm) => [vm.name, vm.state])).toEqual([
      ['vm0', 'off'],
      ['vm1', 'off'],
    ]);
    expect(vms[0]!.spec).toEqual({
      name: 'vm0',
      memory: 256 * 2 ** 20,
      devices: ['nic0'],
      emulatedDevices: ['virtio0'],
      viommus: ['nested', 'emulated'],
      cpus: 4,
      msi: { mode: 'passthrough' },
    });
    expect(vms[1]!.spec).toMatchObject({ memory: 2 ** 21, viommus: [], cpus: 2 });
    expect(vms[0]!.host.plugin).toBe('smmuv3');
    expect(vms[0]!.frontend).toBe(vendorViommuFrontend);
  });

  it('each VM is resolved in a child container of its own, with the front-end the system’s container holds', () => {
    const { system } = fakeSystem(false);
    const recording = defineViommuFrontend({ ...vendorViommuFrontend, name: 'recording' });
    provideValue(system.container, IViommuFrontend, recording);
    const vms = vmm.createVms(system) as Vm[];
    expect(vms.map((vm) => vm.frontend)).toEqual([recording, recording]);
    // The VM's own registrations stay in its container: the system's has no VM spec.
    expect(system.container.isRegistered(IVmSpec)).toBe(false);
    expect(vms[0]!.spec.name).not.toBe(vms[1]!.spec.name);
  });
});
