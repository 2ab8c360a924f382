/** A system with VMs built from a config, as the CLI builds one, and its scenario run with the VM steps. */
import { createSystem, PluginRegistry, runScenario, ScenarioSchema, type System } from '@iommukit/core';
import { gicItsModule } from '@iommukit/gic-its';
import { smmuv3Plugin } from '@iommukit/smmuv3';
import { vtdPlugin } from '@iommukit/vtd';
import { x86ApicModule } from '@iommukit/x86-apic';
import { vmScenarioExtension } from '../src/vm-scenario.js';
import { vmm } from '../src/vmm-module.js';

/** An SMMUv3 host with nic0 and nic1 and a VM `vm0` (`vm` adds to its settings, `vms` adds VMs); `msi`: a GIC ITS. */
export async function vmSystem(
  options: { vm?: Record<string, unknown>; msi?: boolean; vms?: Record<string, unknown>[] } = {},
): Promise<System> {
  const registry = new PluginRegistry(
    { smmuv3: async () => ({ default: smmuv3Plugin }) },
    { 'gic-its': async () => ({ default: gicItsModule }) },
  );
  return createSystem(
    {
      name: 'host',
      plugin: 'smmuv3',
      memory: { ram: [{ name: 'dram', base: 0x8_0000_0000, size: '2GiB' }] },
      iommus: [{ name: 'smmu0', base: 0x0900_0000, options: { sidBits: 16, ssidBits: 8 } }],
      devices: [
        { name: 'nic0', rid: '00:02.0', iommu: 'smmu0', pasidBits: 8 },
        { name: 'nic1', rid: '00:03.0', iommu: 'smmu0', pasidBits: 8 },
      ],
      ...(options.msi ? { msi: { controller: 'gic-its' } } : {}),
      vms: [{ name: 'vm0', memory: '64MiB', devices: ['nic0'], ...options.vm }, ...(options.vms ?? [])],
    },
    { registry, vmm },
  );
}

/**
 * A VT-d host with the x86 local APICs, nic0 (ATS and PRI) and nic1 (neither), both assigned to `vm0`
 * behind a nested vVT-d.
 */
export async function vtdVmSystem(): Promise<System> {
  const registry = new PluginRegistry(
    { vtd: async () => ({ default: vtdPlugin }) },
    { 'x86-apic': async () => ({ default: x86ApicModule }) },
  );
  return createSystem(
    {
      name: 'host',
      plugin: 'vtd',
      memory: { ram: [{ name: 'dram', base: 0x8_0000_0000, size: '2GiB' }] },
      iommus: [{ name: 'dmar0', base: 0xfed9_0000 }],
      devices: [
        { name: 'nic0', rid: '00:02.0', iommu: 'dmar0', pasidBits: 8, ats: {}, pri: {} },
        { name: 'nic1', rid: '00:03.0', iommu: 'dmar0', pasidBits: 8 },
      ],
      msi: { controller: 'x86-apic', options: { cpus: 2 } },
      vms: [{ name: 'vm0', memory: '64MiB', devices: ['nic0', 'nic1'], viommus: [{ mode: 'nested' }] }],
    },
    { registry, vmm },
  );
}

/** Runs scenario steps (as written in a config) with the VM steps; returns each step's [ok, summary]. */
export function runSteps(system: System, steps: readonly Record<string, unknown>[]): [boolean, string][] {
  const scenario = ScenarioSchema.parse({ steps });
  const report = runScenario(system, scenario, { extension: vmScenarioExtension(system) });
  return report.steps.map((s) => [s.ok, s.summary]);
}
