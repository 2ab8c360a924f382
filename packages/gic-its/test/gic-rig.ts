/** A bus with RAM and the gic-its module's host controller on it, as `createSystem` would build it. */
import { FrameAllocator, MemoryBus, Tracer } from '@iommukit/core';
import { gicItsModule } from '../src/gic-its-module.js';
import type { GicMsiController } from '../src/gic-msi-controller.js';
import { type GicItsOptions, GicItsOptionsSchema } from '../src/options.js';

export const RAM_BASE = 0x4000_0000;
export const RAM_BYTES = 64 * 2 ** 20;

export function gicRig(options: Partial<Record<keyof GicItsOptions, unknown>> = {}) {
  const bus = new MemoryBus();
  const ram = bus.addRam('ram', RAM_BASE, RAM_BYTES);
  const memory = new FrameAllocator([ram], (base, bytes) => bus.discardRam(base, bytes));
  const tracer = new Tracer();
  const msi = gicItsModule.create({
    options: GicItsOptionsSchema.parse(options),
    bus,
    memory,
    tracer,
  }) as GicMsiController;
  const cpuCounter = bus.counter('cpu');
  /** A device's MSI write: `data` to `address`, tagged with its DeviceID. */
  const msiWrite = (address: bigint, data: number, deviceId: number | undefined) =>
    bus.write(address, 4, data, cpuCounter, deviceId);
  return { bus, memory, tracer, msi, msiWrite, its: msi.gic.its[0]!, gic: msi.gic };
}
