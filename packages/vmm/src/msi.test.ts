/**
 * MSIs of assigned devices (DESIGN.md §7 flow 5, seed 002): the legacy SW MSI cookie with and without the
 * guest's identity map, MSI passthrough with its EEXIST conflict, and the guest's vITS (MOVI, INV).
 */
import { IommufdError } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { smmuHost } from '../test/host.js';
import { Vm, type VmSpec } from './vm.js';
import { VITS_BASE } from './vm-msi.js';

const MiB = 2 ** 20;

async function vmWithMsi(spec: Partial<VmSpec>, msiOptions: Record<string, unknown> = {}) {
  const { system, host } = await smmuHost(['nic0', 'nic1'], {}, { controller: 'gic-its', options: msiOptions });
  const vm = new Vm(host, { name: 'vm0', memory: 64 * MiB, devices: ['nic0'], ...spec });
  vm.powerOn();
  return { system, vm, msi: vm.msi! };
}

describe('MSIs of a VM', () => {
  it('legacy SW MSI cookie, nested: works with the guest RMR identity map', async () => {
    const { system, vm, msi } = await vmWithMsi({ viommus: ['nested'] });
    const summary = msi.setupDevice(vm.assignedDevice('nic0'), 2);
    console.log(summary);
    const nic = system.device('nic0');
    const r = nic.signalMsi(0);
    console.log(r, system.requireMsi().takeOutcomes());
    vm.serviceInterrupts();
    console.log(msi.takeInjection(), msi.guest.cpus.map((c) => c.arrivals));
  });
});
