/**
 * The vSMMUv3 in emulated mode, like QEMU's default `arm-smmuv3`: the SMMUv3 device model itself, placed
 * on the guest's bus and reading the guest's tables from guest memory, translating the DMA of the VM's
 * emulated devices IOVA → GPA; the guest bus then takes the GPA to guest RAM (whose pages are the host's).
 * Nothing reaches the host IOMMU or iommufd. Emulated endpoints have no ATS or PRI, and signal the guest on
 * wired lines, so the model is built without them; everything else is the default SMMUv3 (both stages).
 */
import type { IommuHardware, ViommuContext, ViommuPersonality } from '@iommukit/core';
import { Smmuv3OptionsSchema } from '../hw/options.js';
import { Smmuv3Hardware } from '../hw/smmuv3.js';

export class EmulatedVsmmu implements ViommuPersonality {
  readonly mode = 'emulated';
  readonly hardware: Smmuv3Hardware & IommuHardware;
  readonly mmio: { readonly base: bigint; readonly size: number };

  constructor(private readonly ctx: ViommuContext) {
    this.hardware = new Smmuv3Hardware({
      instance: ctx.name,
      base: ctx.base,
      options: Smmuv3OptionsSchema.parse({ ats: false, pri: false, msi: false }),
      bus: ctx.bus,
      tracer: ctx.tracer,
      irq: (name) => ctx.irq(name),
    });
    this.mmio = this.hardware.mmio;
  }

  destroy(): void {
    this.ctx.bus.removeRegion(this.ctx.name);
  }
}
