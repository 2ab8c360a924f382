/**
 * The SMMUv3 plugin's vIOMMU personality (`createViommu`): the vSMMUv3 a VMM places in a VM, in nested
 * mode (`nested-vsmmu.ts`) for assigned devices.
 */
import type { ViommuContext, ViommuPersonality } from '@iommukit/core';
import { NestedVsmmu } from './nested-vsmmu.js';

export function createSmmuv3Viommu(context: ViommuContext): ViommuPersonality {
  if (context.mode === 'nested') return new NestedVsmmu(context);
  throw new Error(`${context.name}: the SMMUv3 personality has no ${context.mode} mode yet`);
}
