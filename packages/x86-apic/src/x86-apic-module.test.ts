import { errnoOf, FrameAllocator, hpa, IommufdError, MemoryBus, Tracer } from '@iommukit/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ApicMsiController } from './apic-msi-controller.js';
import { ApicDriver } from './driver/apic-driver.js';
import { X86ApicOptionsSchema } from './options.js';
import { x86ApicModule } from './x86-apic-module.js';

function guestBus() {
  const bus = new MemoryBus();
  const ram = bus.addRam('ram', 0x4000_0000, 0x10_0000);
  const memory = new FrameAllocator([ram], (base, bytes) => bus.discardRam(base, bytes));
  return { bus, memory, tracer: new Tracer() };
}

describe('x86ApicModule', () => {
  it('is named x86-apic and accepts {} as options', () => {
    expect(x86ApicModule.name).toBe('x86-apic');
    expect(x86ApicModule.optionsSchema.parse({})).toMatchObject({ cpus: 2 });
  });

  it('create: the kernel probes the APICs in the mode the options ask', () => {
    const g = guestBus();
    const msi = x86ApicModule.create({
      ...g,
      options: X86ApicOptionsSchema.parse({ cpus: 2, apicIds: [0, 300] }),
    }) as ApicMsiController;
    expect(msi.platform.apics.map((a) => [a.mode, a.id, a.softwareEnabled])).toEqual([
      ['x2apic', 0, true],
      ['x2apic', 300, true],
    ]);
    expect(msi.driver.apicIds).toEqual([0, 300]);
  });

  it('create leaves nothing on the bus when the window is taken (EADDRINUSE)', () => {
    const g = guestBus();
    g.bus.addRam('high', 0xfee0_0000, 0x1000);
    expect(errnoOf(() => x86ApicModule.create({ ...g, options: X86ApicOptionsSchema.parse({}) }))).toBe(
      'EADDRINUSE',
    );
    expect(g.bus.listRegions().map((r) => r.name)).toEqual(['ram', 'high']);
  });
});

describe('x86ApicModule: a driver that fails to probe', () => {
  afterEach(() => vi.restoreAllMocks());

  it('leaves nothing on the bus, host or guest, and passes the error on', () => {
    vi.spyOn(ApicDriver.prototype, 'probe').mockImplementation(() => {
      throw new IommufdError('ENODEV', 'no APIC');
    });
    const g = guestBus();
    expect(errnoOf(() => x86ApicModule.create({ ...g, options: X86ApicOptionsSchema.parse({}) }))).toBe(
      'ENODEV',
    );
    expect(
      errnoOf(() => x86ApicModule.createVirtual({ name: 'vm0.vapic', base: hpa(0n), cpus: 1, ...g })),
    ).toBe('ENODEV');
    expect(g.bus.listRegions().map((r) => r.name)).toEqual(['ram']);
  });
});

describe('x86ApicModule.createVirtual (a VM’s virtual APIC)', () => {
  it('puts the interrupt window on the guest bus at 0xFEE0_0000 whatever the base; a guest driver probes a local APIC per vCPU', () => {
    const g = guestBus();
    const v = x86ApicModule.createVirtual({ name: 'vm0.vapic', base: hpa(0x0808_0000n), cpus: 3, ...g });
    expect(v.doorbell).toEqual({ name: 'vm0.vapic', address: 0xfee0_0000n, page: 0xfee0_0000n });
    expect(g.bus.listRegions().map((r) => [r.name, r.base])).toEqual([
      ['ram', 0x4000_0000],
      ['vm0.vapic.msi', 0xfee0_0000],
    ]);
    expect(v.guest.cpus).toHaveLength(3);
    v.dispose();
    expect(g.bus.listRegions().map((r) => r.name)).toEqual(['ram']);
  });

  it('inject decodes the guest’s message: the destination in the address picks the vCPU', () => {
    const v = x86ApicModule.createVirtual({ name: 'vm0.vapic', base: hpa(0n), cpus: 2, ...guestBus() });
    const [a, b] = v.guest.allocateVectors({ name: 'nic0', deviceId: 0x8 }, 2);
    expect(v.inject(0x8, b!.message.data, b!.message.address)).toMatchObject({
      kind: 'delivered',
      arrival: { intid: b!.intid, cpu: 1, controller: 'vm0.vapic', deviceId: 0x8 },
    });
    // Without an address, the doorbell: APIC ID 0.
    expect(v.inject(0x8, a!.message.data)).toMatchObject({
      kind: 'delivered',
      arrival: { intid: a!.intid, cpu: 0 },
    });
    expect(v.inject(0x8, 0x20, 0xfee0_0010n)).toMatchObject({
      kind: 'dropped',
      reason: expect.stringMatching(/remappable/),
    });
    expect(v.guest.takeOutcomes()).toHaveLength(3);
  });

  it('advertises the extended destination ID and runs in x2APIC mode beyond 255 vCPUs', () => {
    const v = x86ApicModule.createVirtual({ name: 'vm0.vapic', base: hpa(0n), cpus: 300, ...guestBus() });
    const guest = v.guest as ApicMsiController;
    expect(guest.platform.apics[299]!.mode).toBe('x2apic');
    guest.allocateVectors({ name: 'nic0', deviceId: 1 }, 1);
    guest.setAffinity(24, 299);
    expect(guest.messageFor(24)).toEqual({ address: 0xfee2_b020n, data: 0x20 });
    expect(v.inject(1, 0x20, 0xfee2_b020n)).toMatchObject({
      kind: 'delivered',
      arrival: { cpu: 299, intid: 24 },
    });
  });

  it('a virtual APIC that cannot be placed leaves nothing on the guest bus', () => {
    const g = guestBus();
    g.bus.addRam('taken', 0xfee0_0000, 0x1000);
    expect(
      errnoOf(() => x86ApicModule.createVirtual({ name: 'vm0.vapic', base: hpa(0n), cpus: 1, ...g })),
    ).toBe('EADDRINUSE');
  });
});
