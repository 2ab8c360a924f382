/**
 * The VT-d plugin's vIOMMU personality (`createViommu`): the vVT-d a VMM places in a VM — in nested mode
 * (`nested-vvtd.ts`, scalable-mode first stage on the VM's stage 2) for assigned devices.
 */
import { IommufdError, type ViommuContext, type ViommuPersonality } from '@iommukit/core';
import { NestedVvtd } from './nested-vvtd.js';

export function createVtdViommu(context: ViommuContext): ViommuPersonality {
  if (context.mode === 'nested') return new NestedVvtd(context);
  throw new IommufdError('EOPNOTSUPP', `the vVT-d has no ${context.mode} mode yet`);
}
