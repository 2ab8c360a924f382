/**
 * The `x86-apic` MSI module: the host's local APICs and interrupt window on the physical bus, probed by
 * the kernel's APIC driver, with the kernel's MSI domain on top (through the IOMMU's interrupt remapping
 * where the device's IOMMU driver has it on); and, per VM, a virtual APIC — the same model on the guest
 * bus, one local APIC per vCPU with the vCPU number as its APIC ID, programmed by the guest's own copy of
 * the driver. A VMM injects into it as KVM does for an emulated local APIC (KVM_SIGNAL_MSI): the message
 * is decoded as the guest composed it. The virtual APIC advertises the extended destination ID, as KVM
 * does, so a guest reaches vCPUs up to APIC ID 32767 without a vIOMMU.
 *
 * The interrupt window is architectural (0xFEE0_0000): the VMM's `base` for its virtual controller does
 * not move it.
 */
import { defineMsiModule } from '@iommukit/core';
import { ApicMsiController } from './apic-msi-controller.js';
import { ApicDriver } from './driver/apic-driver.js';
import { MsiDomain } from './driver/msi-domain.js';
import { ApicPlatform } from './hw/apic-platform.js';
import { resolveApicOptions, X86ApicOptionsSchema } from './options.js';

/** The host controller's instance name: the controller of its arrivals, its bus region `apic.msi`. */
export const HOST_APIC_NAME = 'apic';

export const x86ApicModule = defineMsiModule({
  name: 'x86-apic',
  description:
    'x86 local APICs: compatibility-format MSIs, remapped interrupts, x2APIC and extended destination IDs',
  optionsSchema: X86ApicOptionsSchema,
  create({ options, bus, tracer, remapperFor }) {
    const { apicIds, x2apic, extendedDestinationId } = resolveApicOptions(options);
    const platform = new ApicPlatform({ name: HOST_APIC_NAME, apicIds, extendedDestinationId }, bus, tracer);
    try {
      const driver = new ApicDriver(platform, x2apic);
      driver.probe();
      return new ApicMsiController(
        platform,
        driver,
        new MsiDomain(driver, extendedDestinationId, remapperFor),
      );
    } catch (error) {
      platform.remove();
      throw error;
    }
  },
  createVirtual({ name, bus, cpus, tracer }) {
    const apicIds = Array.from({ length: cpus }, (_, cpu) => cpu);
    const platform = new ApicPlatform({ name, apicIds, extendedDestinationId: true }, bus, tracer);
    try {
      const { x2apic } = resolveApicOptions({ cpus, apicIds, x2apic: 'auto', extendedDestinationId: true });
      const driver = new ApicDriver(platform, x2apic);
      driver.probe();
      const guest = new ApicMsiController(platform, driver, new MsiDomain(driver, true));
      return {
        doorbell: guest.doorbells[0]!,
        guest,
        inject: (deviceId, data, address = guest.doorbells[0]!.address) =>
          platform.receiveMsi(address, data, deviceId),
        dispose: () => platform.remove(),
      };
    } catch (error) {
      platform.remove();
      throw error;
    }
  },
});
