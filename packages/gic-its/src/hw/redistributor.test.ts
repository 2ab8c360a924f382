/**
 * One redistributor on its own (GICv3 §5.1 LPIs, §12.11 GICR_* registers): its register reset values, the
 * tables it latches at EnableLPIs, the pending bits it keeps in memory and the configuration it caches.
 */
import { MemoryBus, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { CpuInterface } from './cpu-interface.js';
import { Redistributor } from './redistributor.js';
import { encodePendbaser, encodePropbaser, GICR, LPI_BASE } from './registers.js';

const PROP = 0x1_0000;
const PEND = 0x2_0000;
/** A hole in the bus: no RAM there. */
const HOLE = 0x100_0000;
const SOURCE = { controller: 'its0', deviceId: 0x10, eventId: 3 };

function rig(options: { cpu?: number; last?: boolean; idBits?: number; pend?: number } = {}) {
  const bus = new MemoryBus();
  bus.addRam('ram', 0, 0x10_0000);
  const who = bus.counter('test');
  const tracer = new Tracer();
  let seq = 100;
  const cpu = new CpuInterface(options.cpu ?? 1);
  const rd = new Redistributor('gicr1', cpu, options.last ?? false, bus, { next: () => ++seq }, tracer);
  const reg = (offset: number) => rd.registers.read(offset, 4);
  const write = (offset: number, value: number) => rd.registers.write(offset, 4, value);
  const write64 = (offset: number, value: bigint) => {
    write(offset, Number(value & 0xffff_ffffn));
    write(offset + 4, Number(value >> 32n));
  };
  const enable = () => {
    write64(GICR.PROPBASER, encodePropbaser(BigInt(PROP), options.idBits ?? 14));
    write64(GICR.PENDBASER, encodePendbaser(BigInt(options.pend ?? PEND)));
    write(GICR.CTLR, 1);
  };
  const setConfig = (intid: number, byte: number) => bus.write(PROP + intid - LPI_BASE, 1, byte, who);
  const pendByte = (intid: number) => {
    const r = bus.read(PEND + Math.floor(intid / 8), 1, who);
    return r.ok ? Number(r.value) : -1;
  };
  return { bus, who, tracer, cpu, rd, reg, write, write64, enable, setConfig, pendByte };
}

describe('Redistributor registers (§12.11)', () => {
  it('reset values: GICR_TYPER PLPIS, Last, Processor_Number and Aff0; WAKER asleep; IIDR and PIDR2', () => {
    const t = rig({ cpu: 5, last: true });
    expect(t.reg(GICR.TYPER)).toBe(0x511); // Processor_Number 5 [23:8], Last [4], PLPIS [0]
    expect(t.reg(GICR.TYPER + 4)).toBe(5); // Aff0 = 5
    expect(rig({ cpu: 5 }).reg(GICR.TYPER)).toBe(0x501);
    expect(t.reg(GICR.WAKER)).toBe(0b110); // ProcessorSleep and ChildrenAsleep
    expect(t.reg(GICR.IIDR)).toBe(0x43b);
    expect(t.reg(GICR.PIDR2)).toBe(0x3b);
    expect(t.reg(GICR.CTLR)).toBe(0);
  });

  it('GICR_WAKER: clearing ProcessorSleep wakes the children; setting it puts them to sleep again', () => {
    const t = rig();
    t.write(GICR.WAKER, 0);
    expect(t.reg(GICR.WAKER)).toBe(0);
    t.write(GICR.WAKER, 0b100); // ChildrenAsleep is read-only
    expect(t.reg(GICR.WAKER)).toBe(0);
    t.write(GICR.WAKER, 0b010);
    expect(t.reg(GICR.WAKER)).toBe(0b110);
  });

  it('GICR_CTLR.EnableLPIs latches PROPBASER and PENDBASER and stays set', () => {
    const t = rig();
    expect(t.rd.lpisEnabled).toBe(false);
    t.write(GICR.CTLR, 0b10); // not EnableLPIs: nothing happens
    expect([t.rd.lpisEnabled, t.reg(GICR.CTLR)]).toEqual([false, 0]);
    t.enable();
    expect([t.rd.lpisEnabled, t.reg(GICR.CTLR)]).toEqual([true, 1]);
    // Moving the tables after enabling changes nothing; clearing EnableLPIs is ignored.
    t.write64(GICR.PROPBASER, encodePropbaser(0x8_0000n, 14));
    t.write64(GICR.PENDBASER, encodePendbaser(0x9_0000n));
    t.write(GICR.CTLR, 0);
    expect([t.rd.lpisEnabled, t.reg(GICR.CTLR)]).toEqual([true, 1]);
    t.setConfig(LPI_BASE, 0xa1);
    expect(t.rd.config(LPI_BASE)).toBe(0xa1);
    t.write(GICR.CTLR, 1); // a second enable does not re-latch either
    t.rd.signal(LPI_BASE + 8, SOURCE);
    expect(t.pendByte(LPI_BASE + 8)).toBe(1);
  });
});

describe('Redistributor LPIs (§5.1)', () => {
  it('drops an LPI while EnableLPIs is 0', () => {
    const t = rig();
    expect(t.rd.signal(LPI_BASE, SOURCE)).toEqual({
      kind: 'dropped',
      deviceId: 0x10,
      eventId: 3,
      reason: 'gicr1: EnableLPIs is 0',
    });
    expect(t.rd.isPending(LPI_BASE)).toBe(false);
    expect(t.rd.pendingLpis()).toEqual([]);
    expect(t.rd.config(LPI_BASE)).toBe(0);
  });

  it('takes INTIDs from 8192 to 2^(PROPBASER.IDbits + 1) − 1', () => {
    const t = rig({ idBits: 14 });
    t.enable();
    expect(t.rd.signal(LPI_BASE - 1, SOURCE).kind).toBe('dropped');
    expect(t.rd.signal(2 ** 14, SOURCE).kind).toBe('dropped');
    expect(t.rd.signal(LPI_BASE, SOURCE).kind).toBe('pending');
    expect(t.rd.signal(2 ** 14 - 1, SOURCE).kind).toBe('pending');
    expect(t.rd.pendingLpis()).toEqual([LPI_BASE, 2 ** 14 - 1]);
    expect(t.rd.isPending(2 ** 14)).toBe(false);
    expect(t.rd.isPending(LPI_BASE - 8)).toBe(false);
  });

  it('caps the INTID width at 16 bits whatever PROPBASER.IDbits says', () => {
    const t = rig({ idBits: 20 });
    t.enable();
    expect(t.rd.signal(2 ** 16, SOURCE).kind).toBe('dropped');
    expect(t.rd.signal(2 ** 16 - 1, SOURCE).kind).toBe('pending');
  });

  it('a disabled LPI sets its bit in the pending table (byte INTID / 8, bit INTID % 8) and stays pending', () => {
    const t = rig();
    t.enable();
    const intid = LPI_BASE + 13;
    expect(t.rd.signal(intid, SOURCE)).toEqual({ kind: 'pending', intid, deviceId: 0x10, eventId: 3 });
    expect(t.pendByte(intid)).toBe(1 << 5);
    expect(t.rd.isPending(intid)).toBe(true);
    expect(t.rd.isPending(intid + 1)).toBe(false);
    expect(t.cpu.arrivals).toEqual([]);
    t.rd.signal(intid + 2, SOURCE);
    expect(t.pendByte(intid)).toBe((1 << 5) | (1 << 7));
    t.rd.clearPending(intid);
    expect(t.pendByte(intid)).toBe(1 << 7);
    expect(t.rd.pendingLpis()).toEqual([intid + 2]);
  });

  it('an enabled LPI is taken at once with its priority [7:2], and its pending bit is cleared', () => {
    const t = rig();
    t.enable();
    const intid = LPI_BASE + 9;
    t.setConfig(intid, 0xa7); // priority 0xa4, group bit, Enable
    t.bus.write(PEND + Math.floor(intid / 8), 1, 0x01, t.who); // LPI 8200 already pending
    const outcome = t.rd.signal(intid, SOURCE);
    const arrival = { seq: 101, cpu: 1, intid, priority: 0xa4, ...SOURCE };
    expect(outcome).toEqual({ kind: 'delivered', arrival });
    expect(t.cpu.arrivals).toEqual([arrival]);
    expect(t.pendByte(intid)).toBe(0x01);
    expect(t.rd.signal(intid, SOURCE)).toMatchObject({ kind: 'delivered', arrival: { seq: 102 } });
  });

  it('keeps using a cached configuration byte until it is invalidated; invalidating delivers a pending LPI', () => {
    const t = rig();
    t.enable();
    const intid = LPI_BASE + 1;
    t.setConfig(intid, 0xa0); // disabled
    expect(t.rd.signal(intid, SOURCE).kind).toBe('pending');
    t.setConfig(intid, 0xa1);
    expect(t.rd.config(intid)).toBe(0xa0); // the cached byte
    t.rd.invalidate(intid + 1); // another LPI: nothing changes
    expect(t.rd.config(intid)).toBe(0xa0);
    t.rd.invalidate(intid);
    expect(t.rd.config(intid)).toBe(0xa1);
    expect(t.cpu.arrivals).toEqual([{ seq: 101, cpu: 1, intid, priority: 0xa0, ...SOURCE }]);
    expect(t.rd.isPending(intid)).toBe(false);
  });

  it('GICR_INVLPIR and GICR_INVALLR invalidate through the register frame', () => {
    const t = rig();
    t.enable();
    const [a, b] = [LPI_BASE + 2, LPI_BASE + 700];
    t.rd.signal(a, SOURCE);
    t.rd.signal(b, { ...SOURCE, eventId: 4 });
    t.setConfig(a, 0xa1);
    t.setConfig(b, 0xa1);
    t.write(GICR.INVLPIR, a);
    expect(t.cpu.arrivals.map((x) => x.intid)).toEqual([a]);
    t.write(GICR.INVALLR, 0);
    expect(t.cpu.arrivals.map((x) => [x.intid, x.eventId])).toEqual([
      [a, 3],
      [b, 4],
    ]);
    expect(t.rd.configCache.size).toBe(1); // INVALLR emptied the cache; only the pending LPI was re-read
  });

  it('invalidating an LPI that is not pending only drops its cached byte', () => {
    const t = rig();
    t.enable();
    t.setConfig(LPI_BASE, 0xa1);
    expect(t.rd.config(LPI_BASE)).toBe(0xa1);
    t.rd.invalidate(LPI_BASE);
    expect(t.cpu.arrivals).toEqual([]);
    expect(t.rd.configCache.size).toBe(0);
  });

  it('moves a pending LPI, with its source, to another redistributor', () => {
    const t = rig();
    t.enable();
    const other = new Redistributor('gicr2', new CpuInterface(2), true, t.bus, { next: () => 7 }, t.tracer);
    other.registers.write(GICR.PROPBASER, 4, Number(encodePropbaser(BigInt(PROP), 14) & 0xffff_ffffn));
    other.registers.write(GICR.PENDBASER, 4, 0x3_0000);
    other.registers.write(GICR.CTLR, 4, 1);
    const intid = LPI_BASE + 4;
    t.rd.signal(intid, SOURCE);
    t.rd.movePendingTo(t.rd, intid); // onto itself: stays
    expect(t.rd.isPending(intid)).toBe(true);
    t.rd.movePendingTo(other, LPI_BASE + 5); // not pending: nothing moves
    expect(other.pendingLpis()).toEqual([]);
    t.rd.movePendingTo(other, intid);
    expect(t.rd.isPending(intid)).toBe(false);
    expect(other.pendingLpis()).toEqual([intid]);
    t.setConfig(intid, 0xa1);
    other.invalidate(intid);
    expect(other.cpu.arrivals).toEqual([{ seq: 7, cpu: 2, intid, priority: 0xa0, ...SOURCE }]);
  });

  it('a pending table the bus cannot reach drops the LPI; nothing reads as pending', () => {
    const t = rig({ pend: HOLE });
    t.enable();
    expect(t.rd.signal(LPI_BASE, SOURCE)).toMatchObject({
      kind: 'dropped',
      reason: 'gicr1: pending table write aborted',
    });
    expect(t.rd.isPending(LPI_BASE)).toBe(false);
    expect(t.rd.pendingLpis()).toEqual([]);
  });

  it('traces EnableLPIs, pending and delivered LPIs on the msi layer', () => {
    const t = rig();
    t.tracer.startRecording();
    t.enable();
    t.rd.signal(LPI_BASE, SOURCE);
    t.setConfig(LPI_BASE + 1, 0xa1);
    t.rd.signal(LPI_BASE + 1, SOURCE);
    expect(t.tracer.stopRecording().map((r) => [r.layer, r.source, r.name, r.args])).toEqual([
      ['msi', 'gicr1', 'lpi.enable', {}],
      ['msi', 'gicr1', 'lpi.pending', { intid: LPI_BASE }],
      ['msi', 'gicr1', 'lpi.deliver', { intid: LPI_BASE + 1 }],
    ]);
  });
});

describe('Redistributor edges (issue 11)', () => {
  it('lays out the GICR frame: each register at its offset with its name and access, 64-bit ones as two halves', () => {
    const t = rig();
    const layout = t.rd.registers.definitions().map((d) => [d.name, d.offset, d.access]);
    expect(layout).toEqual([
      ['GICR_CTLR', GICR.CTLR, 'rw'],
      ['GICR_IIDR', GICR.IIDR, 'ro'],
      ['GICR_TYPER', GICR.TYPER, 'ro'],
      ['GICR_TYPER_HI', GICR.TYPER + 4, 'ro'],
      ['GICR_WAKER', GICR.WAKER, 'rw'],
      ['GICR_PROPBASER', GICR.PROPBASER, 'rw'],
      ['GICR_PROPBASER_HI', GICR.PROPBASER + 4, 'rw'],
      ['GICR_PENDBASER', GICR.PENDBASER, 'rw'],
      ['GICR_PENDBASER_HI', GICR.PENDBASER + 4, 'rw'],
      ['GICR_INVLPIR', GICR.INVLPIR, 'wo'],
      ['GICR_INVLPIR_HI', GICR.INVLPIR + 4, 'wo'],
      ['GICR_INVALLR', GICR.INVALLR, 'wo'],
      ['GICR_INVALLR_HI', GICR.INVALLR + 4, 'wo'],
      ['GICR_SYNCR', GICR.SYNCR, 'ro'],
      ['GICR_PIDR2', GICR.PIDR2, 'ro'],
    ]);
    expect(t.bus.listCounters().map((c) => c.tag)).toContain('gicr1:tables');
  });

  it('clearing an LPI before EnableLPIs touches no table; after, it clears the pending bit', () => {
    const t = rig();
    expect(() => t.rd.clearPending(LPI_BASE)).not.toThrow();
    t.enable();
    t.rd.signal(LPI_BASE + 9, SOURCE); // disabled in its configuration: stays pending
    expect(t.rd.isPending(LPI_BASE + 9)).toBe(true);
    t.rd.clearPending(LPI_BASE + 9);
    expect(t.rd.isPending(LPI_BASE + 9)).toBe(false);
    expect(t.pendByte(LPI_BASE + 9)).toBe(0);
  });

  it('reads as pending only INTIDs from 8192 below 2^IDbits, whatever else the table holds', () => {
    const t = rig({ idBits: 14 });
    t.enable();
    t.bus.write(PEND + Math.floor((LPI_BASE - 1) / 8), 1, 0x80, t.who); // INTID 8191's bit
    t.bus.write(PEND + 2 ** 14 / 8, 1, 0x01, t.who); // INTID 2^14's bit
    expect(t.rd.isPending(LPI_BASE - 1)).toBe(false);
    expect(t.rd.isPending(2 ** 14)).toBe(false);
    expect(t.rd.pendingLpis()).toEqual([]);
  });

  it('lists the pending LPIs of a table that ends where RAM ends', () => {
    const end = 0x10_0000 - 2 ** 14 / 8;
    const t = rig({ idBits: 14, pend: end });
    t.enable();
    t.rd.signal(2 ** 14 - 1, SOURCE);
    expect(t.rd.pendingLpis()).toEqual([2 ** 14 - 1]);
  });

  it('moving a pending LPI onto its own redistributor does nothing (no new pending record)', () => {
    const t = rig();
    t.enable();
    t.rd.signal(LPI_BASE + 4, SOURCE);
    t.tracer.startRecording();
    t.rd.movePendingTo(t.rd, LPI_BASE + 4);
    expect(t.tracer.stopRecording()).toEqual([]);
    expect(t.rd.isPending(LPI_BASE + 4)).toBe(true);
  });

  it('an LPI software left pending in the table before EnableLPIs is delivered by INVALL, with no source', () => {
    const t = rig();
    t.bus.write(PEND + Math.floor((LPI_BASE + 2) / 8), 1, 1 << ((LPI_BASE + 2) % 8), t.who);
    t.setConfig(LPI_BASE + 2, 0xa1);
    t.enable();
    t.write(GICR.INVALLR, 0);
    expect(t.cpu.arrivals).toEqual([
      { seq: 101, cpu: 1, intid: LPI_BASE + 2, priority: 0xa0, controller: '', deviceId: -1, eventId: -1 },
    ]);
    expect(t.cpu.drainUnserviced()).toHaveLength(1);
    expect(t.cpu.drainUnserviced()).toEqual([]);
  });
});
