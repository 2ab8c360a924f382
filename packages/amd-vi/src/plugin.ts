/**
 * The AMD IOMMU vendor plugin: the hardware model and the host driver behind the core's plugin contract.
 * Registry name `amd-vi`. What it declares is what the hardware model and this driver do together today:
 * v1 host page tables for DMA domains, v2 (x86-64) tables at PASIDs through the GCR3 table the kernel
 * owns, ATS translation requests. Page requests with a PASID go through the PPR log to the iommu core
 * (declared `pri` once the conformance kit has PASID-tagged cases). Nesting (`iommu_hwpt_amd_guest`), interrupt remapping through
 * the driver, dirty tracking and the vAMD are declared as they reach the driver.
 */
import { definePlugin } from '@iommukit/core';
import { AmdDriver } from './driver/amd-driver.js';
import { AmdIommuHardware } from './hw/amd-iommu.js';
import { type AmdOptions, AmdOptionsSchema } from './hw/options.js';

export const amdViPlugin = definePlugin<AmdOptions>({
  meta: {
    name: 'amd-vi',
    version: '0.1.0',
    vendor: 'amd',
    description:
      'AMD IOMMU: device table, host v1 / guest v2 / nested walks through GCR3 tables, DTE/GCR3/IOTLB/page-directory caches, command buffer, event and PPR logs, interrupt remapping',
  },
  capabilities: {
    stages: ['s1', 's2'],
    pasid: true,
    ats: true,
    // The driver serves page requests with a PASID (driver tests); like Linux (ppr_is_valid) it answers one
    // without a PASID Failure, and those are what the conformance kit's I/O page fault cases send.
    pri: false,
    dirtyTracking: false,
    pasidTableOwner: 'kernel',
    interruptRemapping: false,
    viommuModes: [],
  },
  optionsSchema: AmdOptionsSchema,
  createHardware: (context) => new AmdIommuHardware(context),
  createDriver: (context) => new AmdDriver(context),
});
