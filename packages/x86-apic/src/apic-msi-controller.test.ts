import { errnoOf, FrameAllocator, MemoryBus, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import type { ApicMsiController } from './apic-msi-controller.js';
import { X86ApicOptionsSchema } from './options.js';
import { x86ApicModule } from './x86-apic-module.js';

function controller(options: Record<string, unknown> = {}) {
  const bus = new MemoryBus();
  const ram = bus.addRam('ram', 0x4000_0000, 0x10_0000);
  const memory = new FrameAllocator([ram], (base, bytes) => bus.discardRam(base, bytes));
  const msi = x86ApicModule.create({
    options: X86ApicOptionsSchema.parse(options),
    bus,
    memory,
    tracer: new Tracer(),
  }) as ApicMsiController;
  const send = (address: bigint, data: number) => {
    bus.write(address, 4, data, bus.counter('nic'), 0x10);
    return msi.takeOutcomes().at(-1);
  };
  return { bus, msi, send };
}

const nic = { name: 'nic0', deviceId: 0x10 };

describe('ApicMsiController', () => {
  it('one doorbell, the window’s first page; each vector’s doorbell is the page its message hits', () => {
    const { msi } = controller();
    expect(msi.kind).toBe('x86-apic');
    expect(msi.doorbells).toEqual([{ name: 'apic', address: 0xfee0_0000n, page: 0xfee0_0000n }]);
    expect(msi.doorbellFor(nic)).toBe(msi.doorbells[0]);
    const [, second] = msi.allocateVectors(nic, 2);
    expect(second).toEqual({
      message: { address: 0xfee0_1000n, data: 0x20 },
      eventId: 0x20,
      intid: 25,
      cpu: 1,
      doorbell: { name: 'apic', address: 0xfee0_1000n, page: 0xfee0_1000n },
    });
    expect(msi.cpus).toHaveLength(2);
  });

  it('EINVAL for a vector count that is not a positive integer', () => {
    const { msi } = controller();
    for (const bad of [0, -1, 1.5]) expect(errnoOf(() => msi.allocateVectors(nic, bad))).toBe('EINVAL');
  });

  it('runs handlers in arrival order when serviced, once; EBUSY for a second handler', () => {
    const { msi, send } = controller();
    const [a, b] = msi.allocateVectors(nic, 2);
    const ran: number[] = [];
    const release = msi.requestIrq(a!.intid, (arrival) => ran.push(arrival.intid));
    msi.requestIrq(b!.intid, (arrival) => ran.push(arrival.intid));
    expect(errnoOf(() => msi.requestIrq(a!.intid, () => {}))).toBe('EBUSY');
    send(b!.message.address, b!.message.data);
    send(a!.message.address, a!.message.data);
    send(0xfee0_0000n, 0x77); // no IRQ behind it: no handler runs
    expect(msi.service()).toBe(2);
    expect(ran).toEqual([b!.intid, a!.intid]);
    expect(msi.service()).toBe(0);
    release();
    release();
    send(a!.message.address, a!.message.data);
    expect(msi.service()).toBe(0);
    expect(msi.requestIrq(a!.intid, () => {})).toBeTypeOf('function');
  });

  it('masking is Linux’s lazy disable: pending while disabled, delivered on enable', () => {
    const { msi, send } = controller();
    const [v] = msi.allocateVectors(nic, 1);
    msi.configure(v!.intid, { enabled: false });
    expect(send(v!.message.address, v!.message.data)).toEqual({
      kind: 'pending',
      intid: 24,
      deviceId: 0x10,
      eventId: 0x20,
    });
    expect(msi.stateOf(v!.intid)).toBe('pending');
    msi.configure(v!.intid, { enabled: true });
    expect(msi.stateOf(v!.intid)).toBe('inactive');
    expect(msi.cpus[0]!.arrivals).toMatchObject([{ intid: 24, cpu: 0 }]);
    expect(errnoOf(() => msi.configure(99, {}))).toBe('ENOENT');
    expect(errnoOf(() => msi.stateOf(99))).toBe('ENOENT');
  });

  it('priority is the vector class: a new vector, and without remapping a new message', () => {
    const { msi, send } = controller();
    const [v] = msi.allocateVectors(nic, 1);
    msi.configure(v!.intid, { priority: 0xb, enabled: false });
    expect(msi.messageFor(v!.intid)).toEqual({ address: 0xfee0_0000n, data: 0xb0 });
    expect(msi.vectorFor(v!.intid)).toMatchObject({ eventId: 0xb0, cpu: 0, intid: 24 });
    expect(send(0xfee0_0000n, 0xb0)).toMatchObject({ kind: 'pending', intid: 24 });
    msi.configure(v!.intid, { enabled: true });
    expect(msi.cpus[0]!.arrivals).toMatchObject([{ intid: 24, priority: 0xb }]);
    expect(errnoOf(() => msi.configure(v!.intid, { priority: 0xf0 }))).toBe('EINVAL');
  });

  it('setAffinity moves the vector; freeVectors releases it; dispose takes the window off the bus', () => {
    const { bus, msi, send } = controller({ cpus: 3 });
    const [v] = msi.allocateVectors(nic, 1);
    msi.setAffinity(v!.intid, 2);
    const moved = msi.vectorFor(v!.intid);
    expect(moved).toMatchObject({ cpu: 2, message: { address: 0xfee0_2000n, data: 0x20 } });
    expect(send(moved.message.address, moved.message.data)).toMatchObject({
      kind: 'delivered',
      arrival: { cpu: 2, intid: 24 },
    });
    msi.freeVectors(nic);
    expect(errnoOf(() => msi.messageFor(v!.intid))).toBe('ENOENT');
    msi.dispose();
    expect(bus.listRegions().map((r) => r.name)).toEqual(['ram']);
  });

  it('deliverRemapped hands a remapping unit’s interrupt to the APICs and records it', () => {
    const { msi } = controller({ apicIds: [0, 70000] });
    const outcome = msi.deliverRemapped(
      {
        vector: 0x33,
        destination: 70000,
        destinationMode: 'physical',
        deliveryMode: 'fixed',
        trigger: 'edge',
      },
      nic,
    );
    expect(outcome).toMatchObject({ kind: 'delivered', arrival: { cpu: 1, deviceId: 0x10, eventId: 0x33 } });
    expect(msi.takeOutcomes()).toEqual([outcome]);
  });
});
