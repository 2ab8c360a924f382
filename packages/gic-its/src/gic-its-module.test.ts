/** The gic-its module's two products: the host controller and a VM's virtual ITS (GICv3 emulation). */
import { errnoOf, FrameAllocator, hpa, MemoryBus, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { gicItsModule } from './gic-its-module.js';
import { GicItsOptionsSchema } from './options.js';

const GUEST_RAM = 0x4000_0000;

function guestBus(ramBytes = 16 * 2 ** 20) {
  const bus = new MemoryBus();
  const ram = bus.addRam('ram', GUEST_RAM, ramBytes);
  const memory = new FrameAllocator([ram], (base, bytes) => bus.discardRam(base, bytes));
  return { bus, memory, tracer: new Tracer() };
}

describe('gicItsModule.createVirtual (a VM’s vITS)', () => {
  it('puts the vITS at its base and a redistributor per vCPU right after it; the guest driver probes it', () => {
    const g = guestBus();
    const v = gicItsModule.createVirtual!({ name: 'vm0.vits', base: hpa(0x0808_0000n), cpus: 3, ...g });
    expect(v.doorbell).toMatchObject({ name: 'vm0.vits', address: 0x0809_0040n, page: 0x0809_0000n });
    expect(g.bus.listRegions().map((r) => [r.name, Number(r.base)])).toEqual(
      expect.arrayContaining([
        ['vm0.vits', 0x0808_0000],
        ['vm0.vits.gicr0', 0x080a_0000],
        ['vm0.vits.gicr2', 0x080e_0000],
      ]),
    );
    expect(v.guest.cpus).toHaveLength(3);
    v.dispose();
    expect(g.bus.listRegions().map((r) => r.name)).toEqual(['ram']);
  });

  it('advertises 16-bit DeviceIDs and EventIDs, as QEMU’s and KVM’s vITS do', () => {
    const v = gicItsModule.createVirtual!({
      name: 'vm0.vits',
      base: hpa(0x0808_0000n),
      cpus: 1,
      ...guestBus(),
    });
    const vectors = v.guest.allocateVectors({ name: 'nic0', deviceId: 0xffff }, 1);
    expect(errnoOf(() => v.guest.allocateVectors({ name: 'nic1', deviceId: 0x1_0000 }, 1))).toBe('EINVAL');
    expect(vectors[0]!.intid).toBe(8192);
  });

  it('inject translates (DeviceID, EventID) as a device write to the doorbell would', () => {
    const v = gicItsModule.createVirtual!({
      name: 'vm0.vits',
      base: hpa(0x0808_0000n),
      cpus: 2,
      ...guestBus(),
    });
    const [a, b] = v.guest.allocateVectors({ name: 'nic0', deviceId: 0x8 }, 2);
    expect(v.inject(0x8, 1)).toMatchObject({ kind: 'delivered', arrival: { intid: b!.intid, cpu: 1 } });
    expect(v.inject(0x8, 0)).toMatchObject({ kind: 'delivered', arrival: { intid: a!.intid, cpu: 0 } });
    expect(v.inject(0x9, 0)).toMatchObject({ kind: 'dropped', reason: 'TRANSLATE_UNMAPPED_DEVICE' });
  });

  it('a vITS that cannot be built leaves nothing on the guest bus', () => {
    const g = guestBus();
    g.bus.addRam('taken', 0x080c_0000, 0x1000); // where gicr1 would go
    expect(() =>
      gicItsModule.createVirtual!({ name: 'vm0.vits', base: hpa(0x0808_0000n), cpus: 2, ...g }),
    ).toThrow();
    expect(
      g.bus
        .listRegions()
        .map((r) => r.name)
        .sort(),
    ).toEqual(['ram', 'taken']);
    // Not enough guest RAM for the driver's tables: the probe fails and the frames come off the bus.
    const small = guestBus(0x1_0000);
    expect(() =>
      gicItsModule.createVirtual!({ name: 'vm0.vits', base: hpa(0x0808_0000n), cpus: 1, ...small }),
    ).toThrow();
    expect(small.bus.listRegions().map((r) => r.name)).toEqual(['ram']);
  });
});

describe('gicItsModule.create (the host controller)', () => {
  it('a host GIC whose driver cannot probe leaves nothing on the bus', () => {
    const g = guestBus(0x1_0000);
    expect(() => gicItsModule.create({ options: GicItsOptionsSchema.parse({}), ...g })).toThrow();
    expect(g.bus.listRegions().map((r) => r.name)).toEqual(['ram']);
  });

  it('uses the configured CPUs, redistributor base and ID widths', () => {
    const g = guestBus();
    const options = GicItsOptionsSchema.parse({
      cpus: 3,
      redistributorBase: 0x0a00_0000,
      deviceIdBits: 8,
      eventIdBits: 4,
    });
    const msi = gicItsModule.create({ options, ...g });
    expect(msi.cpus).toHaveLength(3);
    expect(g.bus.listRegions().map((r) => [r.name, Number(r.base)])).toContainEqual([
      'gic.gicr2',
      0x0a04_0000,
    ]);
    expect(errnoOf(() => msi.allocateVectors({ name: 'nic0', deviceId: 0x100 }, 1))).toBe('EINVAL');
    expect(errnoOf(() => msi.allocateVectors({ name: 'nic0', deviceId: 0xff }, 17))).toBe('EINVAL');
    expect(msi.allocateVectors({ name: 'nic0', deviceId: 0xff }, 16)).toHaveLength(16);
  });
});
