/**
 * The kernel's GICv3 LPI setup and MSI domain as Linux programs them (irq-gic-v3.c, irq-gic-v3-its.c),
 * checked on the registers and tables the model sees.
 */
import {
  errnoOf,
  FrameAllocator,
  hpa,
  MemoryBus,
  MmioWindow,
  type TraceRecord,
  Tracer,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { gicRig, RAM_BASE, RAM_BYTES } from '../../test/gic-rig.js';
import { Gic } from '../hw/gic.js';
import {
  decodePendbaser,
  decodePropbaser,
  GICR,
  GITS,
  LPI_BASE,
  REDIST_FRAME_SIZE,
} from '../hw/registers.js';
import { DEFAULT_LPI_PRIORITY, GicDriver } from './gic-driver.js';

const NIC = { name: 'nic0', deviceId: 0x10 };

const read64 = (bus: MemoryBus, addr: number) =>
  new MmioWindow(bus, BigInt(addr), bus.counter('test')).read64(0);

/** The commands in trace records, as `OP field=value …` lines (from the records' fields, in hex). */
function commands(records: readonly TraceRecord[]): string[] {
  const value = (v: unknown) => (typeof v === 'boolean' ? `${Number(v)}` : `0x${(v as number).toString(16)}`);
  return records
    .filter((x) => x.name.startsWith('cmd.'))
    .map((x) => [x.name.slice(4), ...Object.entries(x.args).map(([k, v]) => `${k}=${value(v)}`)].join(' '));
}

/** The commands the ITS ran while `fn` ran. */
function commandsOf(r: ReturnType<typeof gicRig>, fn: () => void): string[] {
  r.tracer.startRecording();
  fn();
  return commands(r.tracer.stopRecording());
}

describe('GicDriver.probe (Linux its_init, gic_rdists allocation)', () => {
  it('one LPI configuration table for every redistributor, filled with disabled LPIs at priority 0xa0', () => {
    const r = gicRig({ cpus: 2, lpiIdBits: 14 });
    const base = Number(r.gic.spec.redistributorBase);
    const props = [0, 1].map((cpu) =>
      decodePropbaser(read64(r.bus, base + cpu * REDIST_FRAME_SIZE + GICR.PROPBASER)),
    );
    expect(props[0]).toEqual(props[1]);
    expect(props[0]!.idBits).toBe(14);
    const who = r.bus.counter('test');
    const table = r.bus.readBytes(props[0]!.address, 2 ** 14 - LPI_BASE + 1, who);
    expect(table.ok).toBe(true);
    const bytes = [...(table as { data: Uint8Array }).data];
    expect(new Set(bytes.slice(0, -1))).toEqual(new Set([DEFAULT_LPI_PRIORITY | 0b10])); // group bit, disabled
    expect(bytes.at(-1)).toBe(0); // the byte after INTID 2^14 − 1 is not part of the table
  });

  it('a 64 KiB aligned pending table per CPU, EnableLPIs set, redistributors awake', () => {
    const r = gicRig({ cpus: 3 });
    const base = Number(r.gic.spec.redistributorBase);
    const pend = [0, 1, 2].map((cpu) =>
      decodePendbaser(read64(r.bus, base + cpu * REDIST_FRAME_SIZE + GICR.PENDBASER)),
    );
    expect(new Set(pend.map((p) => p.address)).size).toBe(3);
    for (const p of pend) expect(p.address % 0x1_0000n).toBe(0n);
    // Each pending table holds 2^16 / 8 bytes: the tables do not overlap.
    const sorted = pend.map((p) => p.address).sort((a, b) => Number(a - b));
    expect(sorted[1]! - sorted[0]!).toBeGreaterThanOrEqual(0x2000n);
    for (const rd of r.gic.redistributors) {
      expect(rd.lpisEnabled).toBe(true);
      expect(rd.registers.get(GICR.WAKER)).toBe(0);
    }
  });

  it('maps collection ICID n to CPU n on each ITS: MAPC + SYNC, then INVALL, per CPU', () => {
    const bus = new MemoryBus();
    const ram = bus.addRam('ram', RAM_BASE, RAM_BYTES);
    const memory = new FrameAllocator([ram], (b, n) => bus.discardRam(b, n));
    const tracer = new Tracer();
    const geometry = { deviceIdBits: 16, eventIdBits: 16, collectionIdBits: 16, lpiIdBits: 16 };
    const its = [{ name: 'its0', base: hpa(0x0808_0000n) }];
    const gic = new Gic(
      { name: 'gic', cpus: 2, redistributorBase: hpa(0x080a_0000n), its, geometry },
      bus,
      tracer,
    );
    tracer.startRecording();
    new GicDriver(gic, bus, memory, 16).probe();
    expect(commands(tracer.stopRecording())).toEqual([
      'MAPC icid=0x0 rdbase=0x0 valid=1',
      'SYNC rdbase=0x0',
      'INVALL icid=0x0',
      'MAPC icid=0x1 rdbase=0x1 valid=1',
      'SYNC rdbase=0x1',
      'INVALL icid=0x1',
    ]);
  });
});

describe('GicDriver vectors', () => {
  it('spreads a device’s events over the least loaded CPUs and gives contiguous LPIs', () => {
    const r = gicRig({ cpus: 3 });
    const v = r.msi.allocateVectors(NIC, 4);
    expect(v.map((x) => [x.eventId, x.intid, x.cpu, x.message.data])).toEqual([
      [0, 8192, 0, 0],
      [1, 8193, 1, 1],
      [2, 8194, 2, 2],
      [3, 8195, 0, 3],
    ]);
    const w = r.msi.allocateVectors({ name: 'nic1', deviceId: 0x11 }, 2);
    expect(w.map((x) => [x.intid, x.cpu])).toEqual([
      [8196, 1],
      [8197, 2],
    ]);
    for (const x of [...v, ...w]) expect(r.msi.driver.lpiConfig(x.intid)).toBe(0xa3); // enabled
  });

  it('a device gets its vectors once (EEXIST); after freeVectors its LPIs are disabled and reused', () => {
    const r = gicRig();
    const [v] = r.msi.allocateVectors(NIC, 1);
    expect(errnoOf(() => r.msi.allocateVectors(NIC, 1))).toBe('EEXIST');
    const commands = commandsOf(r, () => r.msi.freeVectors(NIC));
    expect(commands).toEqual([
      'INV deviceId=0x10 eventId=0x0',
      'SYNC rdbase=0x0',
      'DISCARD deviceId=0x10 eventId=0x0',
      'SYNC rdbase=0x0',
      'MAPD deviceId=0x10 size=0x0 ittAddress=0x0 valid=0',
    ]);
    expect(r.msi.driver.lpiConfig(v!.intid)).toBe(0xa2);
    expect(r.msi.driver.eventOf(v!.intid)).toBeUndefined();
    expect(r.msi.allocateVectors(NIC, 1)[0]!.intid).toBe(v!.intid);
  });

  it('setAffinity: MOVI + SYNC to the old CPU; the same CPU sends nothing; no such CPU is EINVAL', () => {
    const r = gicRig({ cpus: 2 });
    const [v] = r.msi.allocateVectors(NIC, 1);
    expect(commandsOf(r, () => r.msi.setAffinity(v!.intid, 0))).toEqual([]);
    expect(commandsOf(r, () => r.msi.setAffinity(v!.intid, 1))).toEqual([
      'MOVI deviceId=0x10 eventId=0x0 icid=0x1',
      'SYNC rdbase=0x0',
    ]);
    expect(r.msi.driver.eventOf(v!.intid)?.cpu).toBe(1);
    expect(errnoOf(() => r.msi.setAffinity(v!.intid, 2))).toBe('EINVAL');
    expect(errnoOf(() => r.msi.setAffinity(v!.intid, -1))).toBe('EINVAL');
    expect(errnoOf(() => r.msi.setAffinity(v!.intid + 1, 0))).toBe('ENOENT');
  });

  it('configureLpi changes only the field it is given, keeps the group bit, and sends INV + SYNC to the event’s CPU', () => {
    const r = gicRig({ cpus: 2 });
    const [, v] = r.msi.allocateVectors(NIC, 2); // CPU 1
    const intid = v!.intid;
    expect(commandsOf(r, () => r.msi.configure(intid, { priority: 0x43 }))).toEqual([
      'INV deviceId=0x10 eventId=0x1',
      'SYNC rdbase=0x1',
    ]);
    expect(r.msi.driver.lpiConfig(intid)).toBe(0x40 | 0b11); // priority [7:2], group, still enabled
    r.msi.configure(intid, { enabled: false });
    expect(r.msi.driver.lpiConfig(intid)).toBe(0x42);
    expect(commandsOf(r, () => r.msi.configure(intid, {}, { invalidate: false }))).toEqual([]);
    expect(r.msi.driver.lpiConfig(intid)).toBe(0x42);
    expect(errnoOf(() => r.msi.configure(intid + 1, { enabled: true }))).toBe('ENOENT');
  });

  it('raise sends INT + SYNC', () => {
    const r = gicRig();
    const [v] = r.msi.allocateVectors(NIC, 1);
    expect(commandsOf(r, () => r.msi.driver.raise(v!.intid))).toEqual([
      'INT deviceId=0x10 eventId=0x0',
      'SYNC rdbase=0x0',
    ]);
    expect(r.msi.cpus[0]!.arrivals.map((a) => a.intid)).toEqual([v!.intid]);
  });

  it('an ITS whose queue stalls fails the driver’s command with EIO', () => {
    const r = gicRig();
    // Point CBASER at a hole while the ITS is off, as a broken firmware might; the driver's next command stalls.
    const itsBase = Number(r.gic.spec.its[0]!.base);
    const who = r.bus.counter('test');
    r.bus.write(itsBase + GITS.CTLR, 4, 0, who);
    r.bus.write(itsBase + GITS.CBASER, 4, 0x1000_0000, who);
    r.bus.write(itsBase + GITS.CBASER + 4, 4, 0x8000_0000, who);
    r.bus.write(itsBase + GITS.CTLR, 4, 1, who);
    expect(errnoOf(() => r.msi.allocateVectors(NIC, 1))).toBe('EIO');
  });
});
