/**
 * The composition root wires the config's three choices — vendor plugin, MSI module, vIOMMU front-end —
 * through DI, each selectable by built-in name or by path, independently of the other two.
 */
import { fileURLToPath } from 'node:url';
import {
  createSystem,
  IIommuPlugin,
  IMsiModule,
  IViommuFrontend,
  PluginRegistry,
  resolveToken,
  type System,
} from '@iommukit/core';
import { gicItsModule } from '@iommukit/gic-its';
import { smmuv3Plugin } from '@iommukit/smmuv3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Vm } from '../src/vm.js';
import { vmm } from '../src/vmm-module.js';
import { made } from './fixtures/counting-its.mjs';
import { built } from './fixtures/recording-frontend.mjs';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const systems: System[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.dispose()));
});

async function build(choices: { plugin?: string; msi?: string; frontend?: string }): Promise<System> {
  const registry = new PluginRegistry(
    { smmuv3: async () => ({ default: smmuv3Plugin }) },
    { 'gic-its': async () => ({ default: gicItsModule }) },
  );
  const system = await createSystem(
    {
      name: 'host',
      plugin: choices.plugin ?? 'smmuv3',
      memory: { ram: [{ name: 'dram', base: 0x8_0000_0000, size: '1GiB' }] },
      iommus: [{ name: 'smmu0', base: 0x0900_0000 }],
      devices: [{ name: 'nic0', rid: '00:02.0', iommu: 'smmu0', pasidBits: 8 }],
      msi: { controller: choices.msi ?? 'gic-its' },
      viommu: { frontend: choices.frontend ?? 'vendor' },
      vms: [{ name: 'vm0', memory: '64MiB', devices: ['nic0'], viommus: [{ mode: 'nested' }] }],
    },
    { registry, vmm, baseDir: fixtures },
  );
  systems.push(system);
  return system;
}

/** What the system's container resolved for each of the three choices. */
function chosen(system: System): [string, string, string] {
  return [
    resolveToken(system.container, IIommuPlugin).meta.name,
    resolveToken(system.container, IMsiModule).name,
    resolveToken(system.container, IViommuFrontend).name,
  ];
}

describe('the three per-config choices, through DI', () => {
  it('the built-ins by name', async () => {
    expect(chosen(await build({}))).toEqual(['smmuv3', 'gic-its', 'vendor']);
  });

  it('the vendor plugin from a path, alone', async () => {
    const system = await build({ plugin: './smmuv3-fork.mjs' });
    expect(chosen(system)).toEqual(['smmuv3-fork', 'gic-its', 'vendor']);
    expect(system.iommu('smmu0').plugin.meta.name).toBe('smmuv3-fork');
  });

  it('the MSI module from a path, alone: it builds the host controller and each VM’s virtual one', async () => {
    const before = { ...made };
    const system = await build({ msi: './counting-its.mjs' });
    expect(chosen(system)).toEqual(['smmuv3', 'counting-its', 'vendor']);
    expect(made.host).toBe(before.host + 1);
    (system.vms[0] as Vm).powerOn();
    expect(made.virtual).toBe(before.virtual + 1);
  });

  it('the vIOMMU front-end from a path, alone: each VM’s container resolves it and powering on uses it', async () => {
    const system = await build({ frontend: './recording-frontend.mjs' });
    expect(chosen(system)).toEqual(['smmuv3', 'gic-its', 'recording']);
    const vm = system.vms[0] as Vm;
    expect(vm.frontend.name).toBe('recording');
    const before = built.length;
    vm.powerOn();
    expect(built.slice(before)).toEqual(['vm0.viommu-nested (nested)']);
    expect(vm.viommu('nested')).toBeDefined();
  });

  it('a front-end or MSI module that is missing is a config error at its path', async () => {
    await expect(build({ frontend: 'no-such-frontend' })).rejects.toThrow(
      'viommu.frontend: no vIOMMU front-end named "no-such-frontend" (have: vendor)',
    );
    await expect(build({ msi: './missing.mjs' })).rejects.toThrow(/msi\.controller: .*missing\.mjs/);
  });
});
