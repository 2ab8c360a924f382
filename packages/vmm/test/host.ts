/**
 * Host systems for VM tests, built through `createSystem` as the CLI builds one: an SMMUv3 (the real model
 * and host driver) with 4 GiB of RAM and NIC-like endpoints behind it, optionally a GIC ITS; or a VT-d unit
 * with the same endpoints.
 */
import { createSystem, PluginRegistry } from '@iommukit/core';
import { gicItsModule } from '@iommukit/gic-its';
import { smmuv3Plugin } from '@iommukit/smmuv3';
import { vtdPlugin } from '@iommukit/vtd';
import { x86ApicModule } from '@iommukit/x86-apic';
import { systemHost } from '../src/vmm-module.js';

export const HOST_RAM = 0x8_0000_0000;

/**
 * `msi`: the config's `msi` section (e.g. `{ controller: 'gic-its' }`); absent: no MSI controller.
 */
export async function smmuHost(
  devices = ['nic0', 'nic1'],
  deviceSpec: Record<string, unknown> = {},
  msi?: Record<string, unknown>,
) {
  const registry = new PluginRegistry(
    { smmuv3: async () => ({ default: smmuv3Plugin }) },
    { 'gic-its': async () => ({ default: gicItsModule }) },
  );
  const system = await createSystem(
    {
      name: 'host',
      plugin: 'smmuv3',
      memory: { ram: [{ name: 'dram', base: HOST_RAM, size: '4GiB' }] },
      iommus: [{ name: 'smmu0', base: 0x0900_0000, options: { sidBits: 16, ssidBits: 8 } }],
      devices: devices.map((name, i) => ({
        name,
        rid: `00:0${i + 2}.0`,
        iommu: 'smmu0',
        pasidBits: 8,
        ...deviceSpec,
      })),
      ...(msi ? { msi } : {}),
    },
    { registry },
  );
  return { system, host: systemHost(system) };
}

/**
 * A VT-d host (default instance options, overridable) with PASID-capable endpoints (`deviceSpec` adds to
 * each, e.g. ATS and PRI); `apic`: the x86 local APICs as its MSI controller (VMs then get a virtual APIC).
 */
export async function vtdHost(
  devices = ['nic0', 'nic1'],
  options: Record<string, unknown> = {},
  apic = false,
  deviceSpec: Record<string, unknown> = {},
) {
  const registry = new PluginRegistry(
    { vtd: async () => ({ default: vtdPlugin }) },
    { 'x86-apic': async () => ({ default: x86ApicModule }) },
  );
  const system = await createSystem(
    {
      name: 'host',
      plugin: 'vtd',
      memory: { ram: [{ name: 'dram', base: HOST_RAM, size: '4GiB' }] },
      iommus: [{ name: 'dmar0', base: 0xfed9_0000, options }],
      devices: devices.map((name, i) => ({
        name,
        rid: `00:0${i + 2}.0`,
        iommu: 'dmar0',
        pasidBits: 8,
        ...deviceSpec,
      })),
      ...(apic ? { msi: { controller: 'x86-apic', options: { cpus: 2 } } } : {}),
    },
    { registry },
  );
  return { system, host: systemHost(system) };
}
