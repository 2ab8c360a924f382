/**
 * The VM object itself: power state rules, what power on builds (RIDs, vIOMMUs, the SW MSI window and the
 * RMR the guest is told about, the vITS) and that a power on that fails half-way leaves nothing behind.
 */
import { defineViommuFrontend, vendorViommuFrontend } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { smmuHost } from '../test/host.js';
import { IVm, IVmHost, IVmSpec, VIOMMU_WINDOWS, VM_SW_MSI_WINDOW, Vm } from './vm.js';

const MiB = 2 ** 20;
const GIC = { controller: 'gic-its' };

describe('Vm power', () => {
  it('a VM is off until powered on; its parts are there only while on; powering on twice is refused', async () => {
    const { host } = await smmuHost();
    const vm = new Vm(host, { name: 'vm0', memory: 32 * MiB, devices: ['nic0'] });
    expect([vm.name, vm.state]).toEqual(['vm0', 'off']);
    expect(() => vm.guest).toThrow('vm0 is off');
    expect(() => vm.memory).toThrow('vm0 is off');
    expect(() => vm.fd).toThrow('vm0 is off');
    expect(() => vm.powerOff()).toThrow('vm0 is off');
    vm.powerOn();
    expect(vm.state).toBe('on');
    expect(() => vm.powerOn()).toThrow('vm0 is already on');
    expect(vm.memory.size).toBe(32 * MiB);
    expect(vm.msi).toBeUndefined(); // the host has no MSI controller
    expect(vm.viommu()).toBeUndefined();
    vm.powerOff();
    expect(vm.state).toBe('off');
  });

  it('assigned devices get RIDs 00:01.0 upward, emulated ones 00:10.0 upward', async () => {
    const { host } = await smmuHost();
    const vm = new Vm(host, {
      name: 'vm0',
      memory: 32 * MiB,
      devices: ['nic0', 'nic1'],
      emulatedDevices: ['edu0', 'edu1'],
    });
    vm.powerOn();
    expect(vm.assigned.map((d) => [d.name, d.virtualRidText])).toEqual([
      ['nic0', '00:01.0'],
      ['nic1', '00:02.0'],
    ]);
    expect(vm.assignedDevice('nic1').virtualRid).toBe(0x10);
    expect([vm.emulatedDevice('edu0').rid, vm.emulatedDevice('edu1').rid]).toEqual([0x80, 0x88]);
    expect(vm.emulatedDevice('edu1').streamId).toBe(0x88);
    expect(() => vm.assignedDevice('edu0')).toThrow('vm0: no assigned device "edu0"');
    expect(() => vm.emulatedDevice('nic0')).toThrow('vm0: no emulated device "nic0"');
    // The guest knows every device.
    expect([vm.guest.device('nic1').rid, vm.guest.device('edu0').rid]).toEqual([0x10, 0x80]);
  });

  it('vIOMMU windows: nested at 0x09050000, emulated at 0x09070000, shadow at 0x09090000; a nested one needs an assigned device', async () => {
    const { host } = await smmuHost();
    const vm = new Vm(host, {
      name: 'vm0',
      memory: 32 * MiB,
      devices: ['nic0'],
      emulatedDevices: ['edu0'],
      viommus: ['nested', 'emulated'],
    });
    vm.powerOn();
    expect(VIOMMU_WINDOWS).toEqual({ nested: 0x0905_0000, emulated: 0x0907_0000, shadow: 0x0909_0000 });
    const regions = vm.memory.bus.listRegions().map((r) => [r.name, Number(r.base)]);
    expect(regions).toContainEqual(['vm0.viommu-nested', 0x0905_0000]);
    expect(regions).toContainEqual(['vm0.viommu-emulated', 0x0907_0000]);
    expect(vm.viommu()).toBe(vm.viommu('nested'));
    expect(vm.viommu('emulated')).toBeDefined();
    expect([...vm.guest.drivers.keys()]).toEqual(['vm0.viommu-nested', 'vm0.viommu-emulated']);
    vm.powerOff();

    const alone = new Vm(host, { name: 'vm1', memory: 32 * MiB, devices: [], viommus: ['nested'] });
    alone.powerOn();
    expect(alone.viommu('nested')).toBeUndefined();
    expect(alone.guest.drivers.size).toBe(0);
  });

  it('a restart may change the vIOMMUs; reset powers off and on with the spec’s', async () => {
    const { host } = await smmuHost();
    const vm = new Vm(host, { name: 'vm0', memory: 32 * MiB, devices: ['nic0'], viommus: ['nested'] });
    vm.powerOn({ viommus: [] });
    expect(vm.viommu()).toBeUndefined();
    vm.reset();
    expect(vm.viommu()).toBeDefined();
  });

  it('traces power on and off on the frontend layer', async () => {
    const { system, host } = await smmuHost();
    const vm = new Vm(host, { name: 'vm0', memory: 32 * MiB, devices: ['nic0'], emulatedDevices: ['edu0'] });
    system.tracer.startRecording();
    vm.powerOn();
    vm.powerOff();
    const records = system.tracer
      .stopRecording()
      .filter((r) => r.source === 'vm0' && r.name.startsWith('vm.'));
    expect(records.map((r) => [r.layer, r.name])).toEqual([
      ['frontend', 'vm.power-on'],
      ['frontend', 'vm.power-off'],
    ]);
  });

  it('a power on that fails half-way releases what it took', async () => {
    const { system, host } = await smmuHost();
    const free = system.memory.freeFrameCount;
    const vm = new Vm(host, { name: 'vm0', memory: 32 * MiB, devices: ['nic0', 'nic9'] });
    expect(() => vm.powerOn()).toThrow();
    expect(vm.state).toBe('off');
    // nic0 was bound and attached before nic9 failed: it is released again and can go to another VM.
    const other = new Vm(host, { name: 'vm1', memory: 32 * MiB, devices: ['nic0'] });
    other.powerOn();
    other.powerOff();
    expect(free - system.memory.freeFrameCount).toBeLessThan(8);
  });

  it('a configured front-end lacking a mode is named; a nested and a shadow vIOMMU together are refused', async () => {
    const { host } = await smmuHost();
    const narrow = defineViommuFrontend({
      ...vendorViommuFrontend,
      name: 'narrow',
      modes: () => ['emulated'],
    });
    const spec = { name: 'vm0', memory: 32 * MiB, devices: ['nic0'], viommus: ['nested' as const] };
    expect(() => new Vm(host, spec, narrow).powerOn()).toThrow(
      'vm0: vIOMMU front-end narrow on plugin smmuv3 has no nested vIOMMU',
    );
    expect(() => new Vm(host, { ...spec, viommus: ['nested', 'shadow'] }).powerOn()).toThrow(
      'vm0: a nested and a shadowing vIOMMU cannot both front the assigned devices',
    );
  });

  it('its DI tokens are global symbols (every copy of the VMM shares them)', () => {
    expect([IVm, IVmHost, IVmSpec]).toEqual([
      Symbol.for('iommukit.Vm'),
      Symbol.for('iommukit.VmHost'),
      Symbol.for('iommukit.VmSpec'),
    ]);
  });

  it('a vIOMMU mode the plugin lacks is refused before anything is built', async () => {
    const { system, host } = await smmuHost();
    const free = system.memory.freeFrameCount;
    const plugin = { ...host.plugin, capabilities: { ...host.plugin.capabilities, viommuModes: ['nested'] } };
    const vm = new Vm({ ...host, plugin } as typeof host, {
      name: 'vm0',
      memory: 32 * MiB,
      devices: [],
      viommus: ['emulated'],
    });
    expect(() => vm.powerOn()).toThrow('vm0: plugin smmuv3 has no emulated vIOMMU');
    expect(system.memory.freeFrameCount).toBe(free);
    const none = new Vm({ ...host, plugin: { ...host.plugin, createViommu: undefined } } as typeof host, {
      name: 'vm1',
      memory: 32 * MiB,
      devices: [],
      viommus: ['nested'],
    });
    expect(() => none.powerOn()).toThrow('vm1: plugin smmuv3 has no nested vIOMMU');
  });
});

describe('Vm MSI setup', () => {
  it('legacy SW MSI behind a nested vIOMMU: the host window moves, and the RMR is declared only when asked', async () => {
    const { host } = await smmuHost(['nic0'], {}, GIC);
    const withRmr = new Vm(host, { name: 'vm0', memory: 32 * MiB, devices: ['nic0'], viommus: ['nested'] });
    withRmr.powerOn();
    expect(withRmr.guest.rmrs).toEqual([VM_SW_MSI_WINDOW]);
    expect(withRmr.msi).toBeDefined();
    expect(withRmr.msi!.guest.cpus).toHaveLength(2);
    withRmr.powerOff();
    withRmr.powerOn({ msi: { mode: 'sw-msi', rmr: false } });
    expect(withRmr.guest.rmrs).toEqual([]);
    withRmr.powerOff();
    withRmr.powerOn({ msi: { mode: 'passthrough', rmr: true } });
    expect(withRmr.guest.rmrs).toEqual([]);
    withRmr.powerOff();
    withRmr.powerOn({ viommus: [] });
    expect(withRmr.guest.rmrs).toEqual([]);
  });

  it('the vITS has one redistributor per vCPU', async () => {
    const { host } = await smmuHost(['nic0'], {}, GIC);
    const vm = new Vm(host, { name: 'vm0', memory: 32 * MiB, devices: ['nic0'], cpus: 3 });
    vm.powerOn();
    expect(vm.msi!.guest.cpus).toHaveLength(3);
  });

  it('a host without an MSI controller leaves the legacy window alone and gives the VM no vITS', async () => {
    const { host } = await smmuHost(['nic0']);
    const vm = new Vm(host, { name: 'vm0', memory: 32 * MiB, devices: ['nic0'], viommus: ['nested'] });
    vm.powerOn();
    expect(vm.msi).toBeUndefined();
    expect(vm.guest.rmrs).toEqual([]);
  });
});
