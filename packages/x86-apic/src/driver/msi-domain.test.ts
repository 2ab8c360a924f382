import {
  type DeviceInterruptRemapper,
  errnoOf,
  type InterruptTarget,
  MemoryBus,
  type MsiMessage,
  Tracer,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { ApicPlatform } from '../hw/apic-platform.js';
import { NO_IRQ } from '../hw/cpu.js';
import { ApicDriver } from './apic-driver.js';
import { MsiDomain } from './msi-domain.js';

/** A remapping driver's per-device view: entries in a map, with what each call did. */
class FakeRemapper implements DeviceInterruptRemapper {
  readonly entries = new Map<number, InterruptTarget>();
  readonly calls: string[] = [];
  constructor(readonly capabilities = { x2apic: true, posting: false }) {}
  allocate(count: number): number {
    this.calls.push(`allocate ${count}`);
    return 100;
  }
  program(index: number, target: InterruptTarget, options?: { readonly invalidate?: boolean }): void {
    this.entries.set(index, target);
    this.calls.push(`program ${index} invalidate=${options?.invalidate ?? true}`);
  }
  compose(index: number): MsiMessage {
    return { address: 0xfee0_0010n | (BigInt(index) << 5n), data: 0 };
  }
  invalidate(index: number, count: number): void {
    this.calls.push(`invalidate ${index} ${count}`);
  }
  free(index: number, count: number): void {
    this.calls.push(`free ${index} ${count}`);
  }
}

function domain(
  apicIds: number[],
  options: { x2apic?: boolean; ext?: boolean; remapper?: FakeRemapper } = {},
) {
  const platform = new ApicPlatform(
    { name: 'apic', apicIds, extendedDestinationId: options.ext ?? false },
    new MemoryBus(),
    new Tracer(),
  );
  const driver = new ApicDriver(platform, options.x2apic ?? apicIds.some((id) => id > 254));
  driver.probe();
  const d = new MsiDomain(driver, options.ext ?? false, () => options.remapper);
  return { platform, driver, d };
}

const nic = { name: 'nic0', deviceId: 0x10 };

describe('MsiDomain without remapping', () => {
  it('spreads vectors over the CPUs, each with an IRQ number and a compatibility message', () => {
    const { d, platform } = domain([0, 1]);
    const irqs = d.allocate(nic, 3);
    expect(irqs.map((i) => [i.irq, i.index, i.target.cpu, i.target.vector, i.message])).toEqual([
      [24, 0, 0, 0x20, { address: 0xfee0_0000n, data: 0x20 }],
      [25, 1, 1, 0x20, { address: 0xfee0_1000n, data: 0x20 }],
      [26, 2, 0, 0x21, { address: 0xfee0_0000n, data: 0x21 }],
    ]);
    expect(platform.receiveMsi(0xfee0_1000n, 0x20, 0x10)).toMatchObject({
      kind: 'delivered',
      arrival: { intid: 25, cpu: 1 },
    });
    expect(errnoOf(() => d.allocate(nic, 1))).toBe('EEXIST');
  });

  it('leaves APIC IDs above 254 out, unless the extended destination ID reaches them', () => {
    expect(domain([0, 255, 300]).d.reachableCpus(undefined)).toEqual([0]);
    expect(domain([0, 255, 300], { ext: true }).d.reachableCpus(undefined)).toEqual([0, 2]);
    expect(errnoOf(() => domain([300]).d.allocate(nic, 1))).toBe('EINVAL');
    const { d } = domain([0, 300], { ext: true });
    expect(d.allocate(nic, 2)[1]!.message).toEqual({ address: 0xfee2_c020n, data: 0x20 });
  });

  it('setAffinity: a new vector on the new CPU and a new message; the old vector maps to no IRQ', () => {
    const { d, platform } = domain([0, 1, 300]);
    d.allocate(nic, 1);
    d.setAffinity(24, 1);
    expect(d.messageFor(24)).toEqual({ address: 0xfee0_1000n, data: 0x20 });
    expect(platform.cpus[0]!.entry.irqOf(0x20)).toBe(NO_IRQ);
    expect(platform.cpus[1]!.entry.irqOf(0x20)).toBe(24);
    d.setAffinity(24, 1);
    expect(d.irq(24).target).toEqual({ cpu: 1, vector: 0x20 });
    expect(errnoOf(() => d.setAffinity(24, 2))).toBe('EINVAL');
    expect(errnoOf(() => d.setAffinity(24, 3))).toBe('EINVAL');
    expect(errnoOf(() => d.setAffinity(24, -1))).toBe('EINVAL');
    expect(errnoOf(() => d.setAffinity(99, 0))).toBe('ENOENT');
  });

  it('a priority class is a vector of that class on the same CPU; EINVAL outside 2–14', () => {
    const { d } = domain([0]);
    d.allocate(nic, 1);
    d.setPriorityClass(24, 9, true);
    expect(d.irq(24).target).toEqual({ cpu: 0, vector: 0x90 });
    expect(d.messageFor(24).data).toBe(0x90);
    d.setPriorityClass(24, 9, true);
    expect(d.irq(24).target.vector).toBe(0x90);
    d.setPriorityClass(24, 14, true);
    d.setPriorityClass(24, 2, true);
    expect(d.irq(24).target.vector).toBe(0x20);
    for (const bad of [1, 15, 2.5]) expect(errnoOf(() => d.setPriorityClass(24, bad, true))).toBe('EINVAL');
  });

  it('free releases the vectors and IRQ numbers; a failed allocation leaves nothing behind', () => {
    const { d, platform } = domain([0]);
    d.allocate(nic, 2);
    d.free(nic);
    d.free(nic);
    expect(platform.cpus[0]!.entry.irqOf(0x20)).toBe(NO_IRQ);
    expect(errnoOf(() => d.irq(24))).toBe('ENOENT');
    expect(errnoOf(() => d.allocate(nic, 0xcd))).toBe('ENOSPC');
    expect(d.allocate(nic, 1)[0]).toMatchObject({ irq: 24, target: { vector: 0x20 } });
  });
});

describe('MsiDomain with interrupt remapping', () => {
  it('programs an entry per vector (physical, fixed, edge) and uses the remapper’s message', () => {
    const remapper = new FakeRemapper();
    const { d } = domain([0, 300], { remapper });
    const irqs = d.allocate(nic, 2);
    expect(remapper.entries.get(101)).toEqual({
      kind: 'remap',
      interrupt: {
        vector: 0x20,
        destination: 300,
        destinationMode: 'physical',
        deliveryMode: 'fixed',
        trigger: 'edge',
      },
    });
    expect(irqs.map((i) => i.message.address)).toEqual([0xfee0_0c90n, 0xfee0_0cb0n]);
    expect(remapper.calls).toEqual([
      'allocate 2',
      'program 100 invalidate=true',
      'program 101 invalidate=true',
    ]);
  });

  it('without x2APIC support in the remapping unit, 8-bit destinations only', () => {
    const remapper = new FakeRemapper({ x2apic: false, posting: false });
    expect(domain([0, 254, 255, 300], { remapper }).d.reachableCpus(remapper)).toEqual([0, 1]);
  });

  it('setAffinity rewrites the entry with invalidation and keeps the message', () => {
    const remapper = new FakeRemapper();
    const { d } = domain([0, 300], { remapper });
    d.allocate(nic, 1);
    const message = d.messageFor(24);
    d.setAffinity(24, 1);
    expect(d.messageFor(24)).toEqual(message);
    expect(remapper.entries.get(100)).toMatchObject({ interrupt: { destination: 300, vector: 0x20 } });
    expect(remapper.calls.at(-1)).toBe('program 100 invalidate=true');
  });

  it('a priority class change passes `invalidate` on to the entry write', () => {
    const remapper = new FakeRemapper();
    const { d } = domain([0], { remapper });
    d.allocate(nic, 1);
    d.setPriorityClass(24, 7, false);
    expect(remapper.calls.at(-1)).toBe('program 100 invalidate=false');
    expect(remapper.entries.get(100)).toMatchObject({ interrupt: { vector: 0x70 } });
    d.setPriorityClass(24, 8, true);
    expect(remapper.calls.at(-1)).toBe('program 100 invalidate=true');
  });

  it('free releases the entries (the remapping driver invalidates them)', () => {
    const remapper = new FakeRemapper();
    const { d } = domain([0], { remapper });
    d.allocate(nic, 3);
    d.free(nic);
    expect(remapper.calls.at(-1)).toBe('free 100 3');
  });
});
