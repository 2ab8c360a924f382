/**
 * The Intel VT-d vendor plugin: the hardware model and the host driver behind the core's plugin contract.
 * Registry name `vtd`. The PASID table is the kernel's: the driver writes every PASID entry itself, and
 * users attach IOASes or HWPTs at PASIDs through the iommufd API. Nesting is host nesting without a
 * vIOMMU object, as in mainline Linux: a nested HWPT (`iommu_hwpt_vtd_s1`) on a nest-parent HWPT.
 */
import { definePlugin } from '@iommukit/core';
import { VtdDriver } from './driver/vtd-driver.js';
import { type VtdOptions, VtdOptionsSchema } from './hw/options.js';
import { VtdHardware } from './hw/vtd.js';
import { createVtdViommu } from './viommu/personality.js';

export const vtdPlugin = definePlugin<VtdOptions>({
  meta: {
    name: 'vtd',
    version: '0.1.0',
    vendor: 'intel-vtd',
    description:
      'Intel VT-d: legacy and scalable-mode tables, first/second-stage and nested walks, IOTLB and paging-structure caches, queued invalidation, fault recording, page requests, interrupt remapping',
  },
  capabilities: {
    stages: ['s1', 's2', 'nested'],
    pasid: true,
    ats: true,
    pri: true,
    dirtyTracking: true,
    pasidTableOwner: 'kernel',
    interruptRemapping: true,
    viommuModes: ['nested', 'shadow', 'emulated'],
  },
  optionsSchema: VtdOptionsSchema,
  createHardware: (context) => new VtdHardware(context),
  createDriver: (context) => new VtdDriver(context),
  createViommu: createVtdViommu,
});
