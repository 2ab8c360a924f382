import { errnoOf, MemoryBus, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { ApicPlatform } from '../hw/apic-platform.js';
import { NO_IRQ } from '../hw/cpu.js';
import { APIC } from '../hw/registers.js';
import { ApicDriver, SPURIOUS_VECTOR } from './apic-driver.js';

function probed(apicIds: number[], x2apic: boolean) {
  const platform = new ApicPlatform(
    { name: 'apic', apicIds, extendedDestinationId: false },
    new MemoryBus(),
    new Tracer(),
  );
  const driver = new ApicDriver(platform, x2apic);
  driver.probe();
  return { platform, driver };
}

describe('ApicDriver', () => {
  it('xAPIC probe: reads the IDs, flat logical IDs for the first eight CPUs, TPR 0, enabled with spurious vector 0xFF', () => {
    const { platform, driver } = probed([0, 4, 9, 1, 2, 3, 5, 6, 7], false);
    expect(driver.apicIds).toEqual([0, 4, 9, 1, 2, 3, 5, 6, 7]);
    expect(platform.apics.map((a) => a.mode)).toEqual(Array(9).fill('xapic'));
    expect(platform.apics.map((a) => a.mmio.read(APIC.LDR, 4) >>> 24)).toEqual([
      1, 2, 4, 8, 16, 32, 64, 128, 0,
    ]);
    expect(platform.apics[1]!.mmio.read(APIC.DFR, 4)).toBe(0xffff_ffff);
    expect(platform.apics[1]!.mmio.read(APIC.SVR, 4)).toBe(0x100 | SPURIOUS_VECTOR);
    expect(platform.apics[1]!.ppr).toBe(0);
  });

  it('x2APIC probe: EXTD set, the 32-bit IDs read through the MSRs', () => {
    const { platform, driver } = probed([0, 300], true);
    expect(driver.apicIds).toEqual([0, 300]);
    expect(platform.apics.map((a) => a.mode)).toEqual(['x2apic', 'x2apic']);
    expect(platform.apics[1]!.softwareEnabled).toBe(true);
  });

  it('ENODEV for a pre-integrated APIC version', () => {
    const platform = new ApicPlatform(
      { name: 'apic', apicIds: [0], extendedDestinationId: false },
      new MemoryBus(),
      new Tracer(),
    );
    const apic = platform.apics[0]!;
    const read = apic.mmio.read.bind(apic.mmio);
    (apic as { mmio: typeof apic.mmio }).mmio = {
      read: (o, s) => (o === APIC.VERSION ? 0x0f : read(o, s)),
      write: apic.mmio.write,
    };
    expect(errnoOf(() => new ApicDriver(platform, false).probe())).toBe('ENODEV');
  });

  for (const x2apic of [false, true]) {
    it(`the entry acknowledges with EOI and maps vectors to IRQs (${x2apic ? 'x2APIC' : 'xAPIC'})`, () => {
      const { platform, driver } = probed([0, 1], x2apic);
      driver.bind(1, 0x30, 40);
      const source = { deviceId: 1, eventId: 0x30 };
      expect(platform.apics[1]!.accept(0x30, 'edge', source)).toMatchObject({
        kind: 'delivered',
        arrival: { intid: 40 },
      });
      expect(platform.apics[1]!.isr.highest()).toBe(-1);
      // A second vector of the same class is taken at once: the first was acknowledged.
      expect(platform.apics[1]!.accept(0x31, 'edge', source)).toMatchObject({
        kind: 'delivered',
        arrival: { intid: NO_IRQ },
      });
    });

    it(`lazy disable: an interrupt of a disabled IRQ is left pending and resent by IPI on enable (${x2apic ? 'x2APIC' : 'xAPIC'})`, () => {
      const { platform, driver } = probed([0, 1], x2apic);
      driver.bind(1, 0x40, 30);
      driver.disableIrq(30);
      expect(driver.isPending(30, 1, 0x40)).toBe(false);
      expect(platform.apics[1]!.accept(0x40, 'edge', { deviceId: 1, eventId: 0x40 })).toEqual({
        kind: 'pending',
        intid: 30,
        deviceId: 1,
        eventId: 0x40,
      });
      expect(driver.isPending(30, 1, 0x40)).toBe(true);
      expect(platform.cpus[1]!.arrivals).toEqual([]);
      driver.enableIrq(30, 1, 0x40);
      expect(driver.isPending(30, 1, 0x40)).toBe(false);
      expect(platform.cpus[1]!.arrivals).toMatchObject([{ intid: 30, cpu: 1, deviceId: -1 }]);
      // Enabling again resends nothing.
      driver.enableIrq(30, 1, 0x40);
      expect(platform.cpus[1]!.arrivals).toHaveLength(1);
    });
  }

  it('isPending reads the IRR: a vector held back by the TPR waits there', () => {
    const { platform, driver } = probed([0], false);
    driver.bind(0, 0x45, 50);
    platform.apics[0]!.mmio.write(APIC.TPR, 4, 0x50);
    platform.apics[0]!.accept(0x45, 'edge', { deviceId: 1, eventId: 0x45 });
    expect(driver.isPending(50, 0, 0x45)).toBe(true);
    expect(driver.isPending(50, 0, 0x44)).toBe(false);
    driver.disableIrq(50);
    platform.apics[0]!.mmio.write(APIC.TPR, 4, 0);
    expect(driver.isPending(50, 0, 0x45)).toBe(true);
    driver.forget(50);
    expect(driver.isPending(50, 0, 0x45)).toBe(false);
  });
});
