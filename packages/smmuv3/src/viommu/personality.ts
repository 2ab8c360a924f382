/**
 * The SMMUv3 plugin's vIOMMU personality (`createViommu`): the vSMMUv3 a VMM places in a VM, in nested
 * mode (`nested-vsmmu.ts`) for assigned devices or emulated mode (`emulated-vsmmu.ts`) for the VMM's own.
 */
import type { ViommuContext, ViommuPersonality } from '@iommukit/core';
import { EmulatedVsmmu } from './emulated-vsmmu.js';
import { NestedVsmmu } from './nested-vsmmu.js';

export function createSmmuv3Viommu(context: ViommuContext): ViommuPersonality {
  return context.mode === 'nested' ? new NestedVsmmu(context) : new EmulatedVsmmu(context);
}
