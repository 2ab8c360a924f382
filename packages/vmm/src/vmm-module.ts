/**
 * The VMM as the system wires it: `createSystem(config, { vmm })` hands it the built host system and it
 * makes one `Vm` per `vms[]` entry (powered off; a scenario's `vm-power` step or the caller powers them
 * on). The host side of each VM comes from the system: its bus, page allocator, tracer, plugin, devices,
 * iommufd contexts and interrupt servicing.
 */
import {
  createChildContainer,
  provideValue,
  resolveToken,
  type System,
  type VmmModule,
} from '@iommukit/core';
import { IVm, IVmHost, IVmSpec, Vm, type VmHost } from './vm.js';

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
  /**
   * One child container per VM, under the system's: it holds the VM's spec and host, and resolves the
   * VM with what the system's container provides (the vIOMMU front-end the config chose).
   */
  createVms(system: System): Vm[] {
    const host = systemHost(system);
    return system.validated.config.vms.map((vm) => {
      const c = createChildContainer(system.container);
      provideValue(c, IVmHost, host);
      provideValue(c, IVmSpec, {
        name: vm.name,
        memory: Number(vm.memory),
        devices: vm.devices,
        emulatedDevices: vm.emulatedDevices,
        viommus: vm.viommus.map((v) => v.mode),
        cpus: vm.cpus,
        msi: vm.msi,
      });
      c.register(IVm, { useClass: Vm });
      return resolveToken(c, IVm);
    });
  },
};
