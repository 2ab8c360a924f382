/**
 * The `gic-its` MSI module: the host GIC (redistributors and ITSes on the physical bus, probed by the
 * kernel's driver) and, per VM, a virtual ITS — the same model on the guest bus at the VM's vITS address,
 * with its redistributors right after it, programmed by the guest's own copy of the driver. A VMM injects
 * into it as KVM does for a vGIC ITS (GICv3 emulation; GICv4 direct injection is not modelled).
 */
import { defineMsiModule, hpa, type MsiRequester } from '@iommukit/core';
import { GicDriver } from './driver/gic-driver.js';
import { GicMsiController } from './gic-msi-controller.js';
import { Gic } from './hw/gic.js';
import { ITS_FRAME_SIZE } from './hw/registers.js';
import { GicItsOptionsSchema } from './options.js';

/** ID widths of a VM's virtual ITS (QEMU's and KVM's vITS advertise 16-bit DeviceIDs and EventIDs). */
const VIRTUAL_GEOMETRY = { deviceIdBits: 16, eventIdBits: 16, collectionIdBits: 16, lpiIdBits: 16 };

export const gicItsModule = defineMsiModule({
  name: 'gic-its',
  description: 'Arm GICv3 ITS: device/collection tables, ITTs, LPIs to redistributors (GICv3 emulation)',
  optionsSchema: GicItsOptionsSchema,
  create({ options, bus, memory, tracer }) {
    const gic = new Gic(
      {
        name: 'gic',
        cpus: options.cpus,
        redistributorBase: hpa(options.redistributorBase),
        its: options.its.map((i) => ({ name: i.name, base: hpa(i.base) })),
        geometry: { ...options, collectionIdBits: 16 },
      },
      bus,
      tracer,
    );
    const route = (device: MsiRequester) =>
      Math.max(
        0,
        options.its.findIndex((i) => i.devices.includes(device.name)),
      );
    try {
      const driver = new GicDriver(gic, bus, memory, options.lpiIdBits);
      driver.probe();
      return new GicMsiController(gic, driver, route);
    } catch (error) {
      gic.remove();
      throw error;
    }
  },
  createVirtual({ name, bus, base, memory, cpus, tracer }) {
    const gic = new Gic(
      {
        name,
        cpus,
        redistributorBase: hpa(BigInt(base) + BigInt(ITS_FRAME_SIZE)),
        its: [{ name, base }],
        geometry: VIRTUAL_GEOMETRY,
      },
      bus,
      tracer,
    );
    try {
      const driver = new GicDriver(gic, bus, memory, VIRTUAL_GEOMETRY.lpiIdBits);
      driver.probe();
      const guest = new GicMsiController(gic, driver, () => 0);
      const its = gic.its[0]!;
      return {
        doorbell: guest.doorbells[0]!,
        guest,
        inject: (deviceId, data) => its.translate(deviceId, data),
        dispose: () => gic.remove(),
      };
    } catch (error) {
      gic.remove();
      throw error;
    }
  },
});
