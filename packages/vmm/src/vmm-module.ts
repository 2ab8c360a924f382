/**
 * The VMM as the system wires it: `createSystem(config, { vmm })` hands it the built host system and it
 * makes one `Vm` per `vms[]` entry (powered off; a scenario's `vm-power` step or the caller powers them
 * on). The host side of each VM comes from the system: its bus, page allocator, tracer, plugin, devices,
 * iommufd contexts and interrupt servicing.
 */
import type { System, VmmModule } from '@iommukit/core';
import { Vm, type VmHost } from './vm.js';

/** The host a VM runs on, taken from a system. */
export function systemHost(system: System): VmHost {
  return {
    bus: system.bus,
    memory: system.memory,
    tracer: system.tracer,
    plugin: system.validated.plugin,
    device: (name) => system.device(name),
    openIommufd: () => system.openIommufd(),
    serviceInterrupts: () => system.serviceInterrupts(),
    ...(system.msi && system.validated.msi
      ? { msi: { controller: system.msi, module: system.validated.msi.module } }
      : {}),
  };
}

export const vmm: VmmModule = {
  createVms(system: System): Vm[] {
    const host = systemHost(system);
    return system.validated.config.vms.map(
      (vm) =>
        new Vm(host, {
          name: vm.name,
          memory: Number(vm.memory),
          devices: vm.devices,
          emulatedDevices: vm.emulatedDevices,
          viommus: vm.viommus.map((v) => v.mode),
          cpus: vm.cpus,
          msi: vm.msi,
        }),
    );
  },
};
