/**
 * Host RAM a config will ask for after the system is built, checked up front so `createSystem` (and so
 * `iommukit validate`) names the config path instead of a run failing halfway with ENOMEM. The check
 * makes the same allocations the run makes, on the system's own allocator, then returns them.
 */
import { type Hpa, PAGE_SIZE } from '../address/address.js';
import type { SystemConfig } from '../config/schema.js';
import { formatSize } from '../config/units.js';
import type { ConfigIssue } from '../errors/config-error.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IFrameAllocator } from '../memory/frame-allocator.js';
import type { System } from './system.js';

/** The VMM backs guest RAM with one host block aligned to 2 MiB, so its stage 2 can use block mappings. */
const GUEST_RAM_ALIGN_FRAMES = (2 << 20) / PAGE_SIZE;

/**
 * Reserves every VM's guest RAM (all VMs may run at once) and then every scenario `alloc` buffer (never
 * freed during a run), in config order; each that does not fit is an issue. Everything is released after.
 */
export function hostRamIssues(config: SystemConfig, memory: IFrameAllocator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const held: { base: Hpa; frames: number }[] = [];
  const reserve = (bytes: bigint, alignFrames: number): boolean => {
    const frames = Number((bytes + BigInt(PAGE_SIZE - 1)) / BigInt(PAGE_SIZE));
    try {
      held.push({ base: memory.allocFrames(frames, alignFrames), frames });
      return true;
    } catch (error) {
      // EINVAL: a count beyond what an allocator can index — no RAM holds it either.
      if (error instanceof IommufdError && (error.code === 'ENOMEM' || error.code === 'EINVAL')) return false;
      throw error;
    }
  };
  const free = () => formatSize(BigInt(memory.freeFrameCount * PAGE_SIZE));
  try {
    config.vms.forEach((vm, i) => {
      if (reserve(vm.memory, GUEST_RAM_ALIGN_FRAMES)) return;
      const after = i === 0 ? '' : i === 1 ? ' after vms[0]' : ` after vms[0..${i - 1}]`;
      issues.push({
        path: `vms[${i}].memory`,
        message: `${formatSize(vm.memory)} of guest RAM needs one 2 MiB aligned block of host RAM; ${free()} is free${after}`,
      });
    });
    let buffers = 0;
    config.scenario?.steps.forEach((step, i) => {
      if (step.op !== 'alloc') return;
      const taken = [config.vms.length > 0 ? "the VMs' RAM" : '', buffers > 0 ? 'earlier buffers' : ''];
      buffers++;
      if (reserve(step.size, 1)) return;
      const after = taken.filter(Boolean).join(' and ');
      issues.push({
        path: `scenario.steps[${i}].size`,
        message: `a ${formatSize(step.size)} host buffer does not fit in host RAM; ${free()} is free${after ? ` after ${after}` : ''}`,
      });
    });
  } finally {
    for (const { base, frames } of held) memory.freeFrames(base, frames);
  }
  return issues;
}

/**
 * Powers every VM of a built system on, all at once as a run may, and off again: what a VM takes from the
 * host beyond its guest RAM (its stage-2 tables, its vIOMMU's and MSI controller's structures) must fit
 * too. Meant for a scratch system (`iommukit validate` builds one), as it leaves trace records and
 * allocates object IDs. A VM that cannot power on is an issue: at `vms[i].memory` when the host ran out
 * of RAM (ENOMEM), else at `vms[i]`.
 */
export function vmPowerOnIssues(system: System): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  try {
    system.vms.forEach((vm, i) => {
      try {
        vm.powerOn();
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        const outOfMemory = error instanceof IommufdError && error.code === 'ENOMEM';
        issues.push({
          path: outOfMemory ? `vms[${i}].memory` : `vms[${i}]`,
          message: outOfMemory
            ? `powering ${vm.name} on${i > 0 ? ' beside the VMs before it' : ''} runs out of host RAM: ${message}`
            : `${vm.name} cannot power on: ${message}`,
        });
      }
    });
  } finally {
    for (const vm of system.vms) if (vm.state === 'on') vm.powerOff();
  }
  return issues;
}
