/**
 * The vVT-d in emulated mode, like QEMU's default `intel-iommu`: the VT-d model itself on the guest's bus,
 * reading the guest's root, context and PASID tables and page tables from guest memory and translating the
 * DMA of the VM's emulated devices IOVA → GPA; the guest bus then takes the GPA to guest RAM. Nothing
 * reaches the host IOMMU or iommufd. Emulated endpoints have no ATS or PRI, and the VMM offers no
 * interrupt remapping, so the unit is built without them; everything else is the default unit (scalable
 * mode, both stages). Its fault events are MSIs to the VM's interrupt controller (the guest's driver
 * programs FEADDR/FEDATA), when the VM has one; otherwise faults stay in the fault recording registers.
 */
import type { IommuHardware, ViommuContext, ViommuPersonality } from '@iommukit/core';
import { VtdOptionsSchema } from '../hw/options.js';
import { VtdHardware } from '../hw/vtd.js';

export class EmulatedVvtd implements ViommuPersonality {
  readonly mode = 'emulated';
  readonly hardware: VtdHardware & IommuHardware;
  readonly mmio: { readonly base: bigint; readonly size: number };

  constructor(private readonly ctx: ViommuContext) {
    this.hardware = new VtdHardware({
      instance: ctx.name,
      base: ctx.base,
      options: VtdOptionsSchema.parse({
        deviceTlb: false,
        pageRequests: false,
        pageRequestDrain: false,
        interruptRemapping: false,
        extendedInterruptMode: false,
        postedInterrupts: false,
        sirtpInvalidates: false,
      }),
      bus: ctx.bus,
      tracer: ctx.tracer,
      irq: (name) => ctx.irq(name),
      ...(ctx.msi ? { msi: ctx.msi } : {}),
    });
    this.mmio = this.hardware.mmio;
  }

  destroy(): void {
    this.ctx.bus.removeRegion(this.ctx.name);
  }
}
