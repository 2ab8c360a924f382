/** @iommukit/vmm: VMs on an iommukit system — guest memory, device assignment, the vIOMMU front-end. */
export * from './assigned-device.js';
export * from './guest-memory.js';
export * from './guest-os.js';
export * from './guest-tracer.js';
export * from './vm.js';
export * from './vm-msi.js';
export * from './vm-scenario.js';
export * from './vmm-module.js';
