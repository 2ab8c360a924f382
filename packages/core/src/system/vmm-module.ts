/**
 * The seam between a system and the VMM that builds its VMs (@iommukit/vmm). The core knows VMs only as
 * things with a name that power on and off; the VMM package implements them and is handed to
 * `createSystem` (the CLI does), which registers it in the system's container.
 */
import { token } from '../di/token.js';
import type { System } from './system.js';

/** A VM as the system holds it. */
export interface VirtualMachine {
  readonly name: string;
  readonly state: 'on' | 'off';
  powerOn(): void;
  powerOff(): void;
  /** Delivers what is pending for the VM: host interrupts, its vIOMMUs' events, the guest's interrupts. */
  serviceInterrupts(): number;
}

export interface VmmModule {
  /** Builds the config's VMs (powered off) on a built system. */
  createVms(system: System): readonly VirtualMachine[];
}

export const IVmmModule = token<VmmModule>('iommukit.VmmModule');
