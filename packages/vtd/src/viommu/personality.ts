/**
 * The VT-d plugin's vIOMMU personality (`createViommu`): the vVT-d a VMM places in a VM — for assigned
 * devices nested (`nested-vvtd.ts`, scalable-mode first stage on the VM's stage 2) or shadowing
 * (`shadow-vvtd.ts`, legacy mode with caching mode, replayed into each device's IOAS); for the VMM's own
 * devices emulated (`emulated-vvtd.ts`, the model walking guest memory).
 */
import type { ViommuContext, ViommuPersonality } from '@iommukit/core';
import { EmulatedVvtd } from './emulated-vvtd.js';
import { NestedVvtd } from './nested-vvtd.js';
import { ShadowVvtd } from './shadow-vvtd.js';

export function createVtdViommu(context: ViommuContext): ViommuPersonality {
  if (context.mode === 'nested') return new NestedVvtd(context);
  if (context.mode === 'shadow') return new ShadowVvtd(context);
  return new EmulatedVvtd(context);
}
