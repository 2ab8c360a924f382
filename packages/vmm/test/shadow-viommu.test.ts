/**
 * A shadowing vIOMMU (the mock's, with caching mode): the guest's own driver maps and invalidates, the
 * VMM replays each invalidation as IOAS maps and unmaps on the assigned device's own IOAS, and the
 * device's DMA at guest IOVAs lands in guest RAM through the host IOMMU alone.
 */
import { createSystem, errnoOf, PluginRegistry, type System, type TraceRecord } from '@iommukit/core';
import { gicItsModule } from '@iommukit/gic-its';
import { mockPlugin } from '@iommukit/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { Vm } from '../src/vm.js';
import { systemHost } from '../src/vmm-module.js';

const systems: System[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.dispose()));
});

async function shadowVm() {
  const system = await createSystem(
    {
      name: 'host',
      plugin: 'mock',
      memory: { ram: [{ name: 'dram', base: 0x8000_0000, size: '512MiB' }] },
      iommus: [{ name: 'iommu0', base: 0x0900_0000 }],
      devices: [
        { name: 'nic0', rid: '00:02.0', iommu: 'iommu0' },
        { name: 'nic1', rid: '00:03.0', iommu: 'iommu0' },
      ],
    },
    { registry: new PluginRegistry({ mock: async () => ({ default: mockPlugin }) }) },
  );
  systems.push(system);
  const vm = new Vm(systemHost(system), {
    name: 'vm0',
    memory: 32 * 2 ** 20,
    devices: ['nic0', 'nic1'],
    viommus: ['shadow'],
  });
  vm.powerOn();
  return { system, vm, nic0: system.device('nic0'), nic1: system.device('nic1') };
}

describe('a shadowing vIOMMU', () => {
  it('a guest map reaches the device’s own IOAS through the guest’s invalidation; its DMA lands in guest RAM', async () => {
    const { vm, nic0 } = await shadowVm();
    expect(nic0.dmaWrite(0x1000n, Uint8Array.of(1))).toMatchObject({ ok: false, reason: 'fault' });
    const gpa = vm.guest.allocBuffer(0x4000);
    const iova = vm.guest.dma('nic0').map(gpa, 0x4000n, { read: true, write: true });
    expect(nic0.dmaWrite(iova + 0x3010n, Uint8Array.of(0xaa, 0xbb))).toMatchObject({ ok: true });
    expect([...vm.guest.read(gpa + 0x3010n, 2)]).toEqual([0xaa, 0xbb]);
    expect(vm.fd.ioasIovaRanges(vm.shadowIoas('nic0')).ranges).not.toEqual([]);
  });

  it('a guest unmap is replayed as an IOAS unmap: the device’s late DMA faults on the host', async () => {
    const { vm, nic0 } = await shadowVm();
    const gpa = vm.guest.allocBuffer(0x2000);
    const dma = vm.guest.dma('nic0');
    const iova = dma.map(gpa, 0x2000n, { read: true, write: true });
    expect(nic0.dmaRead(iova, 4)).toMatchObject({ ok: true });
    dma.unmap(iova);
    expect(nic0.dmaRead(iova, 4)).toMatchObject({ ok: false, reason: 'fault' });
    expect(nic0.dmaRead(iova + 0x1000n, 4)).toMatchObject({ ok: false, reason: 'fault' });
  });

  it('read-only guest mappings stay read-only in the shadow', async () => {
    const { vm, nic0 } = await shadowVm();
    const gpa = vm.guest.allocBuffer(0x1000);
    const iova = vm.guest.dma('nic0').map(gpa, 0x1000n, { read: true, write: false });
    expect(nic0.dmaRead(iova, 4)).toMatchObject({ ok: true });
    expect(nic0.dmaWrite(iova, Uint8Array.of(1))).toMatchObject({ ok: false, fault: { kind: 'permission' } });
  });

  it('each device has its own shadow: one device’s mappings are not the other’s', async () => {
    const { vm, nic0, nic1 } = await shadowVm();
    const gpa = vm.guest.allocBuffer(0x1000);
    const iova = vm.guest.dma('nic0').map(gpa, 0x1000n, { read: true, write: true });
    expect(nic0.dmaWrite(iova, Uint8Array.of(1))).toMatchObject({ ok: true });
    expect(nic1.dmaWrite(iova, Uint8Array.of(1))).toMatchObject({ ok: false, reason: 'fault' });
    expect(vm.shadowIoas('nic0')).not.toBe(vm.shadowIoas('nic1'));
  });

  it('a guest identity domain shadows as all of guest RAM at IOVA = GPA; blocking it again empties the shadow', async () => {
    const { vm, nic0 } = await shadowVm();
    const driver = vm.guest.driver!;
    const device = vm.guest.device('nic0');
    vm.guest.core.attachDevice(device, driver.identityDomain!);
    const gpa = vm.guest.allocBuffer(0x1000);
    expect(nic0.dmaWrite(gpa + 8n, Uint8Array.of(0x5a))).toMatchObject({ ok: true });
    expect([...vm.guest.read(gpa + 8n, 1)]).toEqual([0x5a]);
    vm.guest.core.attachDevice(device, driver.blockedDomain);
    expect(nic0.dmaWrite(gpa, Uint8Array.of(1))).toMatchObject({ ok: false, reason: 'fault' });
  });

  it('the trace shows each replay: what the guest’s invalidation mapped and unmapped', async () => {
    const { system, vm } = await shadowVm();
    system.tracer.startRecording();
    const gpa = vm.guest.allocBuffer(0x3000);
    const iova = vm.guest.dma('nic0').map(gpa, 0x3000n, { read: true, write: true });
    vm.guest.dma('nic0').unmap(iova);
    const syncs = (system.tracer.stopRecording() as TraceRecord[]).filter((r) => r.name === 'shadow.sync');
    // The DMA API domain's attach (the device's entry changed: INV DEVICE), the map, the unmap.
    expect(syncs.map((r) => [r.args?.mapped, r.args?.unmapped])).toEqual([
      [0, 0],
      [3, 0],
      [0, 3],
    ]);
  });

  it('a device with no shadow has no shadow IOAS (ENOENT); a shadow VM without assigned devices has no vIOMMU', async () => {
    const { system, vm } = await shadowVm();
    expect(errnoOf(() => vm.shadowIoas('nic2'))).toBe('ENOENT');
    const bare = new Vm(systemHost(system), {
      name: 'vm1',
      memory: 32 * 2 ** 20,
      devices: [],
      viommus: ['shadow'],
    });
    bare.powerOn();
    expect(bare.viommu('shadow')).toBeUndefined();
    expect(bare.guest.drivers.size).toBe(0);
    bare.powerOff();
  });
});

describe('MSIs behind a shadowing vIOMMU', () => {
  it('the legacy SW MSI setup works; a second setup is EEXIST; MSI passthrough is EOPNOTSUPP', async () => {
    const system = await createSystem(
      {
        name: 'host',
        plugin: 'mock',
        memory: { ram: [{ name: 'dram', base: 0x8000_0000, size: '512MiB' }] },
        iommus: [{ name: 'iommu0', base: '0x0900_0000' }],
        devices: [
          { name: 'nic0', rid: '00:02.0', iommu: 'iommu0', msiVectors: 2 },
          { name: 'nic1', rid: '00:03.0', iommu: 'iommu0', msiVectors: 2 },
        ],
        msi: { controller: 'gic-its' },
      },
      {
        registry: new PluginRegistry(
          { mock: async () => ({ default: mockPlugin }) },
          { 'gic-its': async () => ({ default: gicItsModule }) },
        ),
      },
    );
    systems.push(system);
    const host = systemHost(system);
    const legacy = new Vm(host, {
      name: 'vm0',
      memory: 32 * 2 ** 20,
      devices: ['nic0'],
      viommus: ['shadow'],
    });
    legacy.powerOn();
    legacy.msi!.setupDevice(legacy.assignedDevice('nic0'), 1);
    expect(errnoOf(() => legacy.msi!.setupDevice(legacy.assignedDevice('nic0'), 1))).toBe('EEXIST');
    system.device('nic0').signalMsi(0);
    legacy.serviceInterrupts();
    expect(legacy.msi!.takeInjection()).toMatchObject({ kind: 'delivered' });
    const passthrough = new Vm(host, {
      name: 'vm1',
      memory: 32 * 2 ** 20,
      devices: ['nic1'],
      viommus: ['shadow'],
      msi: { mode: 'passthrough', rmr: false },
    });
    passthrough.powerOn();
    expect(errnoOf(() => passthrough.msi!.setupDevice(passthrough.assignedDevice('nic1'), 1))).toBe(
      'EOPNOTSUPP',
    );
  });
});
