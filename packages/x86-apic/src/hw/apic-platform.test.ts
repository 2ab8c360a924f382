import { MemoryBus, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { ApicPlatform } from './apic-platform.js';
import { NO_REQUESTER } from './cpu.js';
import { APIC } from './registers.js';

function platform(apicIds = [0, 1, 2], extendedDestinationId = false) {
  const bus = new MemoryBus();
  const tracer = new Tracer();
  const p = new ApicPlatform({ name: 'apic', apicIds, extendedDestinationId }, bus, tracer);
  for (const apic of p.apics) apic.mmio.write(APIC.SVR, 4, 0x1ff);
  const device = bus.counter('device');
  const write = (address: number, data: number, size: 1 | 2 | 4 = 4) =>
    bus.write(address, size, data, device, 0x42);
  return { bus, p, write, tracer };
}

describe('ApicPlatform: the interrupt window', () => {
  it('claims 0xFEE0_0000 + 1 MiB on the bus; a device write there is an MSI, reads are zero', () => {
    const { bus, p, write } = platform();
    expect(bus.listRegions().map((r) => [r.name, r.base, r.size])).toEqual([
      ['apic.msi', 0xfee0_0000, 0x10_0000],
    ]);
    write(0xfee0_1000, 0x31);
    expect(p.takeOutcomes()).toEqual([
      {
        kind: 'delivered',
        arrival: {
          seq: 1,
          cpu: 1,
          intid: -1,
          priority: 3,
          controller: 'apic',
          deviceId: 0x42,
          eventId: 0x31,
        },
      },
    ]);
    expect(p.takeOutcomes()).toEqual([]);
    expect(bus.read(0xfee0_1000, 4, bus.counter('cpu'))).toMatchObject({ ok: true, value: 0n });
    p.remove();
    expect(bus.listRegions()).toEqual([]);
  });

  it('drops the remappable format, narrow writes and messages no APIC answers, saying why', () => {
    const { bus, p, write } = platform();
    write(0xfee0_0010, 0x31);
    write(0xfee0_0000, 0x31, 2);
    bus.write(0xfee0_9000, 4, 0x31, bus.counter('cpu')); // no requester ID
    expect(p.takeOutcomes()).toEqual([
      {
        kind: 'dropped',
        deviceId: 0x42,
        eventId: 0x31,
        reason: 'remappable-format MSI (address bit 4) without an interrupt remapping unit',
      },
      { kind: 'dropped', deviceId: 0x42, eventId: 0x31, reason: 'a 2-byte write is no MSI' },
      {
        kind: 'dropped',
        deviceId: NO_REQUESTER,
        eventId: 0x31,
        reason: 'no local APIC answers physical destination 0x9',
      },
    ]);
  });

  it('a broadcast has an outcome per CPU; NMIs are recorded apart from the vectored path', () => {
    const { p, write } = platform();
    write(0xfeef_f000, 0x40);
    expect(p.takeOutcomes().map((o) => (o.kind === 'delivered' ? o.arrival.cpu : o.kind))).toEqual([0, 1, 2]);
    write(0xfee0_2000, 0x402);
    const [nmi] = p.takeOutcomes();
    expect(nmi).toMatchObject({
      kind: 'dropped',
      reason: 'NMI taken by CPU2: not a vectored interrupt (see its events)',
    });
    expect(p.cpus[2]!.events).toEqual([{ seq: 4, kind: 'nmi', deviceId: 0x42 }]);
    expect(p.cpus[2]!.arrivals).toHaveLength(1);
  });

  it('with the extended destination ID, address bits 11:5 reach APIC ID 300', () => {
    const { p, write } = platform([0, 300], true);
    write(0xfee2_c020, 0x20);
    expect(p.takeOutcomes()).toMatchObject([
      { kind: 'dropped', reason: 'no local APIC answers physical destination 0x12c' },
    ]);
    // In xAPIC mode the APIC answers to 8 bits only; x2APIC mode gives it its ID.
    p.apics[1]!.writeMsr(0x1b, 0xfee0_0c00n);
    p.apics[1]!.writeMsr(0x80f, 0x1ffn);
    write(0xfee2_c020, 0x20);
    expect(p.takeOutcomes()).toMatchObject([{ kind: 'delivered', arrival: { cpu: 1 } }]);
  });

  it('deliver takes a remapped interrupt with a 32-bit destination and records its outcome', () => {
    const { p } = platform([0, 70000]);
    p.apics[1]!.writeMsr(0x1b, 0xfee0_0c00n);
    p.apics[1]!.writeMsr(0x80f, 0x1ffn);
    const interrupt = {
      vector: 0x55,
      destination: 70000,
      destinationMode: 'physical',
      deliveryMode: 'fixed',
      trigger: 'edge',
    } as const;
    const outcome = p.deliver(interrupt, { deviceId: 7, eventId: 0x55 });
    expect(outcome).toMatchObject({ kind: 'delivered', arrival: { cpu: 1, priority: 5, deviceId: 7 } });
    expect(p.takeOutcomes()).toEqual([outcome]);
  });

  it('IPIs: the destination field, or the self / all / all-but-self shorthands; start-up IPIs do nothing', () => {
    const { p } = platform();
    const send = (from: number, command: number, destination = 0) => {
      p.apics[from]!.mmio.write(APIC.ICR_HIGH, 4, destination << 24);
      p.apics[from]!.mmio.write(APIC.ICR_LOW, 4, command);
      return p.cpus.map((c) => c.drainUnserviced().length);
    };
    // Each IPI a class above the last, so no vector waits behind one in service.
    expect(send(0, 0x4030, 2)).toEqual([0, 0, 1]);
    expect(send(1, 0x4_4041)).toEqual([0, 1, 0]);
    expect(send(1, 0x8_4052)).toEqual([1, 1, 1]);
    expect(send(1, 0xc_4063)).toEqual([1, 0, 1]);
    expect(send(0, 0x4674, 1)).toEqual([0, 0, 0]);
    // Logical destination 0b100: the LDR of CPU 2 only.
    p.apics[2]!.mmio.write(APIC.LDR, 4, 0x0400_0000);
    expect(send(0, 0x4885, 0x04)).toEqual([0, 0, 1]);
    // IPIs are not MSIs: nothing is recorded for takeOutcomes.
    expect(p.takeOutcomes()).toEqual([]);
  });

  it('a level-triggered IPI sets its vector in the target’s TMR; an edge one does not', () => {
    const { p } = platform();
    p.apics[0]!.mmio.write(APIC.ICR_HIGH, 4, 2 << 24);
    p.apics[0]!.mmio.write(APIC.ICR_LOW, 4, 0xc0a1); // fixed, assert, level, vector 0xa1
    expect(p.apics[2]!.tmr.has(0xa1)).toBe(true);
    p.apics[0]!.mmio.write(APIC.ICR_LOW, 4, 0x40b2); // fixed, assert, edge, vector 0xb2
    expect(p.apics[2]!.tmr.has(0xb2)).toBe(false);
  });

  it('a lowest-priority interrupt is a vectored one: delivered to one APIC of those named', () => {
    const { p } = platform();
    const outcome = p.deliver(
      {
        vector: 0x61,
        destination: 0xff,
        destinationMode: 'physical',
        deliveryMode: 'lowest-priority',
        trigger: 'edge',
      },
      { deviceId: 3, eventId: 0x61 },
    );
    expect(outcome).toMatchObject({ kind: 'delivered', arrival: { cpu: 0, priority: 6 } });
  });
});
