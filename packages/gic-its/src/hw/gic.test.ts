import { hpa, MemoryBus, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { Gic } from './gic.js';
import { decodeRedistTyper, GICR } from './registers.js';

const geometry = { deviceIdBits: 16, eventIdBits: 16, collectionIdBits: 16, lpiIdBits: 16 };

function gic(cpus = 3) {
  const bus = new MemoryBus();
  const its = [
    { name: 'its0', base: hpa(0x0808_0000n) },
    { name: 'its1', base: hpa(0x0a00_0000n) },
  ];
  return {
    bus,
    gic: new Gic({ name: 'g', cpus, redistributorBase: hpa(0x080a_0000n), its, geometry }, bus, new Tracer()),
  };
}

describe('Gic (GICv3 redistributors and ITSes on one bus)', () => {
  it('one 128 KiB redistributor frame per CPU from the base, Last on the last one, and each ITS at its base', () => {
    const { bus, gic: g } = gic();
    expect(bus.listRegions().map((r) => [r.name, Number(r.base), Number(r.size)])).toEqual([
      ['its0', 0x0808_0000, 0x2_0000],
      ['g.gicr0', 0x080a_0000, 0x2_0000],
      ['g.gicr1', 0x080c_0000, 0x2_0000],
      ['g.gicr2', 0x080e_0000, 0x2_0000],
      ['its1', 0x0a00_0000, 0x2_0000],
    ]);
    const typer = (cpu: number) => decodeRedistTyper(g.redistributors[cpu]!.registers.get64(GICR.TYPER));
    expect([0, 1, 2].map((cpu) => [typer(cpu).processorNumber, typer(cpu).last])).toEqual([
      [0, false],
      [1, false],
      [2, true],
    ]);
    expect(g.redistributors.map((rd) => rd.cpu)).toEqual(g.cpus);
  });

  it('finds an ITS by name and gives each one its doorbell (GITS_TRANSLATER) and the page holding it', () => {
    const { gic: g } = gic();
    expect(g.itsByName('its1')).toBe(g.its[1]);
    expect(g.itsByName('its2')).toBeUndefined();
    expect(g.doorbell(1)).toEqual({ name: 'its1', address: 0x0a01_0040n, page: 0x0a01_0000n });
  });

  it('numbers arrivals across all CPUs in one sequence', () => {
    const { bus, gic: g } = gic(2);
    const who = bus.counter('test');
    // Enable LPIs on both redistributors with tables in RAM and every LPI enabled.
    bus.addRam('ram', 0x4000_0000, 0x10_0000);
    bus.writeBytes(0x4000_0000, new Uint8Array(0x2000).fill(0xa1), who);
    g.redistributors.forEach((rd, cpu) => {
      rd.registers.write(GICR.PROPBASER, 4, 0x4000_0000 | 13);
      rd.registers.write(GICR.PENDBASER, 4, 0x4001_0000 + cpu * 0x1_0000);
      rd.registers.write(GICR.CTLR, 4, 1);
    });
    const source = { controller: 'its0', deviceId: 1, eventId: 0 };
    g.redistributors[1]!.signal(8192, source);
    g.redistributors[0]!.signal(8193, source);
    g.redistributors[1]!.signal(8194, source);
    expect(g.cpus.flatMap((c) => c.arrivals).map((a) => [a.cpu, a.seq])).toEqual([
      [0, 2],
      [1, 1],
      [1, 3],
    ]);
  });

  it('regions that cannot be placed: the GIC takes back the ones it placed', () => {
    const bus = new MemoryBus();
    bus.addRam('ram', 0x0a00_0000, 0x1000);
    const its = [{ name: 'its0', base: hpa(0x0a00_0000n) }];
    expect(
      () =>
        new Gic(
          { name: 'g', cpus: 1, redistributorBase: hpa(0x080a_0000n), its, geometry },
          bus,
          new Tracer(),
        ),
    ).toThrow();
    expect(bus.listRegions().map((r) => r.name)).toEqual(['ram']);
  });
});
