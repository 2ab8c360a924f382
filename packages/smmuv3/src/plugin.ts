/**
 * The SMMUv3 vendor plugin: the hardware model and the host driver behind the core's plugin contract.
 * Registry name `smmuv3`. Host-side nesting is the driver's (an `arm-smmuv3` vIOMMU on a nest-parent stage
 * 2, nested HWPTs from guest vSTEs); the vSMMUv3 personality (`viommu/`) is what a VMM shows its guests.
 */
import { definePlugin } from '@iommukit/core';
import { Smmuv3Driver } from './driver/smmuv3-driver.js';
import { type Smmuv3Options, Smmuv3OptionsSchema } from './hw/options.js';
import { Smmuv3Hardware } from './hw/smmuv3.js';
import { smmuv3GuestOps } from './viommu/guest-ops.js';
import { createSmmuv3Viommu } from './viommu/personality.js';

export const smmuv3Plugin = definePlugin<Smmuv3Options>({
  meta: {
    name: 'smmuv3',
    version: '0.1.0',
    vendor: 'arm-smmuv3',
    description: 'ARM SMMUv3: stream/CD tables, stage 1/2 walks, TLB, command/event/PRI queues, ATS',
  },
  capabilities: {
    stages: ['s1', 's2', 'nested'],
    pasid: true,
    ats: true,
    pri: true,
    dirtyTracking: true,
    // Nesting delegates the CD table (the PASID table) to the guest (docs/design.md §7 flow 4).
    pasidTableOwner: 'user',
    crossInstanceDomains: true,
    viommuModes: ['nested', 'emulated'],
  },
  optionsSchema: Smmuv3OptionsSchema,
  createHardware: (context) => new Smmuv3Hardware(context),
  createDriver: (context) => new Smmuv3Driver(context),
  createViommu: createSmmuv3Viommu,
  guestOps: smmuv3GuestOps,
});
