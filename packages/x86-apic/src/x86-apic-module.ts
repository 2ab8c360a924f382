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
import {
  type DeviceInterruptRemapper,
  defineMsiModule,
  type ITracer,
  type MemoryBus,
  type MsiRequester,
} from '@iommukit/core';
import { ApicMsiController } from './apic-msi-controller.js';
import { ApicDriver } from './driver/apic-driver.js';
import { MsiDomain } from './driver/msi-domain.js';
import { ApicPlatform } from './hw/apic-platform.js';
import { type ResolvedApicOptions, resolveApicOptions, X86ApicOptionsSchema } from './options.js';

/** The host controller's instance name: the controller of its arrivals, its bus region `apic.msi`. */
export const HOST_APIC_NAME = 'apic';

/** The APICs on `bus`, probed by the kernel's driver, with its MSI domain; nothing stays on a failure. */
function buildController(
  name: string,
  { apicIds, x2apic, extendedDestinationId }: ResolvedApicOptions,
  bus: MemoryBus,
  tracer: ITracer,
  remapperFor?: (device: MsiRequester) => DeviceInterruptRemapper | undefined,
): ApicMsiController {
  const platform = new ApicPlatform({ name, apicIds, extendedDestinationId }, bus, tracer);
  try {
    const driver = new ApicDriver(platform, x2apic);
    driver.probe();
    return new ApicMsiController(platform, driver, new MsiDomain(driver, extendedDestinationId, remapperFor));
  } catch (error) {
    platform.remove();
    throw error;
  }
}

export const x86ApicModule = defineMsiModule({
  name: 'x86-apic',
  description:
    'x86 local APICs: compatibility-format MSIs, remapped interrupts, x2APIC and extended destination IDs',
  optionsSchema: X86ApicOptionsSchema,
  create({ options, bus, tracer, remapperFor }) {
    return buildController(HOST_APIC_NAME, resolveApicOptions(options), bus, tracer, remapperFor);
  },
  createVirtual({ name, bus, cpus, tracer }) {
    // APIC ID = vCPU number, and the extended destination ID a hypervisor advertises.
    const options = resolveApicOptions(X86ApicOptionsSchema.parse({ cpus, extendedDestinationId: true }));
    const guest = buildController(name, options, bus, tracer);
    return {
      doorbell: guest.doorbells[0]!,
      guest,
      inject: (deviceId, data, address = guest.doorbells[0]!.address) =>
        guest.platform.receiveMsi(address, data, deviceId),
      dispose: () => guest.platform.remove(),
    };
  },
});
