/**
 * A bare SMMUv3 device model on a memory bus, programmed the way a driver programs it — 32-bit MMIO
 * writes and structures in RAM — for tests and benchmarks of the hardware without the host driver.
 */
import { hpa, InterruptController, MemoryBus, Tracer } from '@iommukit/core';
import { Smmuv3OptionsSchema } from '../src/hw/options.js';
import { Smmuv3Hardware } from '../src/hw/smmuv3.js';

export const SMMU_BASE = 0x0900_0000;
export const RAM_BASE = 0x8000_0000;

/** The model with `options` (validated by the schema) on a bus with `ramBytes` of RAM at RAM_BASE. */
export function mmioRig(options: Record<string, unknown>, ramBytes = 64 * 2 ** 20, tracer = new Tracer()) {
  const bus = new MemoryBus();
  bus.addRam('dram', RAM_BASE, ramBytes);
  const interrupts = new InterruptController();
  const smmu = new Smmuv3Hardware({
    instance: 'smmu0',
    base: hpa(SMMU_BASE),
    options: Smmuv3OptionsSchema.parse(options),
    bus,
    tracer,
    irq: (name) => interrupts.line(name),
  });
  const driver = bus.counter('driver');
  const mmio = (offset: number, value: number) => bus.write(SMMU_BASE + offset, 4, value >>> 0, driver);
  return {
    bus,
    smmu,
    interrupts,
    /** The requester tag of the rig's own accesses (the "driver"). */
    driver,
    mmio,
    /** A 64-bit register as two 32-bit writes, low half first. */
    mmio64: (offset: number, value: number) => {
      mmio(offset, value % 2 ** 32);
      mmio(offset + 4, Math.floor(value / 2 ** 32));
    },
    reg: (offset: number) => {
      const r = bus.read(SMMU_BASE + offset, 4, driver);
      return r.ok ? Number(r.value) : -1;
    },
    put: (addr: number, words: Uint32Array) => bus.writeWords(addr, words, words.length, driver),
  };
}

export type MmioRig = ReturnType<typeof mmioRig>;
