/**
 * The ITS and redistributor models through the host controller (the driver programs them as Linux does)
 * and through commands written straight into the driver's queue.
 *
 * Raw commands go at CWRITER's offset and CWRITER is moved past them, behind the driver's back: the
 * driver keeps its own write offset (as Linux does), so a test never asks the driver for another command
 * after sending raw ones.
 */
import { describe, expect, it } from 'vitest';
import { gicRig, RAM_BASE, RAM_BYTES } from '../../test/gic-rig.js';
import { encodeCommand, ITS_COMMAND_BYTES, type ItsCommand } from './commands.js';
import { decodeIte } from './its-tables.js';
import {
  BASER_TYPE,
  decodeBaser,
  decodeCbaser,
  decodeRedistTyper,
  decodeTyper,
  encodeBaser,
  encodeCbaser,
  GICR,
  GITS,
  GITS_CTLR_ENABLED,
  GITS_CTLR_QUIESCENT,
  LPI_BASE,
  LPI_ENABLE,
  QUEUE_OFFSET_MASK,
  QUEUE_RETRY_STALLED,
  REDIST_FRAME_SIZE,
} from './registers.js';

const NIC = { name: 'nic0', deviceId: 0x10 };
const NIC1 = { name: 'nic1', deviceId: 0x20 };
/** A hole in the rig's bus: no RAM, no MMIO. */
const HOLE = 0x1000_0000;

function setup(options: Parameters<typeof gicRig>[0] = {}) {
  const rig = gicRig(options);
  const { bus, msi, its, gic } = rig;
  const who = bus.counter('test');
  const itsBase = Number(gic.spec.its[0]!.base);
  const rdBase = (cpu: number) => Number(gic.spec.redistributorBase) + cpu * REDIST_FRAME_SIZE;
  const read = (addr: number, size: 4 | 8): bigint => {
    const r = bus.read(addr, size, who);
    if (!r.ok) throw new Error(`read of ${addr.toString(16)} aborted`);
    return r.value;
  };
  const t = {
    ...rig,
    who,
    readIts: (offset: number) => Number(read(itsBase + offset, 4)),
    readIts64: (offset: number) => read(itsBase + offset, 8),
    writeIts: (offset: number, value: number) => bus.write(itsBase + offset, 4, value, who),
    /** A 64-bit register as two 32-bit writes, low half first (Linux lo_hi_writeq). */
    writeIts64: (offset: number, value: bigint) => {
      bus.write(itsBase + offset, 4, value & 0xffff_ffffn, who);
      bus.write(itsBase + offset + 4, 4, value >> 32n, who);
    },
    readRd64: (cpu: number, offset: number) => read(rdBase(cpu) + offset, 8),
    writeRd: (cpu: number, offset: number, value: number) => bus.write(rdBase(cpu) + offset, 4, value, who),
    creadr: () => t.readIts(GITS.CREADR),
    cwriter: () => t.readIts(GITS.CWRITER),
    /** Writes 32-byte commands at `address + offset`. */
    writeCommands: (address: bigint, offset: number, commands: ItsCommand[]) => {
      commands.forEach((command, n) => {
        encodeCommand(command).forEach((word, i) => {
          const at = Number(address) + offset + n * ITS_COMMAND_BYTES + 8 * i;
          expect(bus.write(at, 8, word, who).ok).toBe(true);
        });
      });
    },
    /** Queues commands at CWRITER in the queue CBASER names and moves CWRITER past them; returns the new offset. */
    send: (...commands: ItsCommand[]): number => {
      const queue = decodeCbaser(its.registers.get64(GITS.CBASER));
      const bytes = queue.pages * 0x1000;
      let offset = t.cwriter() & QUEUE_OFFSET_MASK;
      for (const command of commands) {
        t.writeCommands(queue.address, offset, [command]);
        offset = (offset + ITS_COMMAND_BYTES) % bytes;
      }
      t.writeIts(GITS.CWRITER, offset);
      return offset;
    },
    /** `deviceId`'s MSI write of `eventId` to the ITS doorbell (no DeviceID: undefined); returns its one outcome. */
    fireFrom: (deviceId: number | undefined, eventId: number) => {
      rig.msiWrite(gic.doorbell(0).address, eventId, deviceId);
      const outcomes = msi.takeOutcomes();
      expect(outcomes).toHaveLength(1);
      return outcomes[0]!;
    },
    /** nic0's MSI write of `eventId`. */
    fire: (eventId: number) => t.fireFrom(NIC.deviceId, eventId),
    arrivals: (cpu: number) => msi.cpus[cpu]!.arrivals,
    allArrivals: () => msi.cpus.flatMap((c) => c.arrivals),
    rd: (cpu: number) => gic.redistributors[cpu]!,
  };
  return t;
}

describe('MSI translation', () => {
  it('delivers a mapped MSI at the vector’s CPU with its INTID, priority 0xa0, DeviceID and EventID', () => {
    const t = setup();
    const vectors = t.msi.allocateVectors(NIC, 2);
    expect(vectors.map((v) => [v.eventId, v.intid, v.cpu])).toEqual([
      [0, 8192, 0],
      [1, 8193, 1],
    ]);
    expect(vectors[0]!.message).toEqual({ address: t.gic.doorbell(0).address, data: 0 });
    expect(t.gic.doorbell(0).address).toBe(0x0809_0040n);
    for (const v of vectors) {
      expect(t.fire(v.message.data)).toEqual({
        kind: 'delivered',
        arrival: {
          seq: expect.any(Number),
          cpu: v.cpu,
          intid: v.intid,
          priority: 0xa0,
          controller: 'its0',
          deviceId: NIC.deviceId,
          eventId: v.eventId,
        },
      });
    }
    expect(t.arrivals(0).map((a) => [a.intid, a.seq])).toEqual([[8192, 1]]);
    expect(t.arrivals(1).map((a) => [a.intid, a.seq])).toEqual([[8193, 2]]);
    expect(t.msi.stateOf(8192)).toBe('inactive');
    expect(t.msi.takeOutcomes()).toEqual([]);
  });

  it('drops a write without a DeviceID, from an unmapped device, beyond the ITT, or while the ITS is off', () => {
    const t = setup();
    t.msi.allocateVectors(NIC, 1); // one vector: the ITT covers two events (Linux rounds up to 2)
    expect(t.fireFrom(undefined, 0)).toEqual({
      kind: 'dropped',
      deviceId: -1,
      eventId: 0,
      reason: expect.stringMatching(/no DeviceID/),
    });
    expect(t.fireFrom(0x11, 0)).toEqual({
      kind: 'dropped',
      deviceId: 0x11,
      eventId: 0,
      reason: 'TRANSLATE_UNMAPPED_DEVICE',
    });
    expect(t.fire(1)).toMatchObject({ kind: 'dropped', eventId: 1, reason: 'TRANSLATE_UNMAPPED_INTERRUPT' });
    expect(t.fire(2)).toMatchObject({ kind: 'dropped', eventId: 2, reason: 'TRANSLATE_ID_OOR' });
    expect(t.fire(0xffff_ffff)).toMatchObject({ kind: 'dropped', reason: 'TRANSLATE_ID_OOR' });
    expect(t.allArrivals()).toEqual([]);

    expect(t.fire(0).kind).toBe('delivered');
    t.writeIts(GITS.CTLR, 0);
    expect(t.fire(0)).toMatchObject({
      kind: 'dropped',
      deviceId: NIC.deviceId,
      reason: 'the ITS is disabled',
    });
    expect(t.allArrivals()).toHaveLength(1);
  });

  it('ignores byte writes to GITS_TRANSLATER and reads it as 0', () => {
    const t = setup();
    t.msi.allocateVectors(NIC, 1);
    t.bus.write(t.gic.doorbell(0).address, 1, 0, t.who, NIC.deviceId);
    expect(t.msi.takeOutcomes()).toEqual([]);
    expect(t.readIts(GITS.TRANSLATER)).toBe(0);
    expect(t.allArrivals()).toEqual([]);
  });

  it('drops an MSI whose event targets an unmapped collection', () => {
    const t = setup();
    const [, b] = t.msi.allocateVectors(NIC, 2);
    expect(b!.cpu).toBe(1);
    // Remap EventID 1 (same LPI) to collection 7, which no MAPC has mapped.
    t.send(
      { op: 'MAPTI', deviceId: NIC.deviceId, eventId: 1, intid: b!.intid, icid: 7 },
      { op: 'SYNC', rdbase: 0 },
    );
    expect(t.its.commandErrors).toEqual([]);
    expect(t.fire(1)).toMatchObject({ kind: 'dropped', eventId: 1, reason: 'collection 7 is not mapped' });
    t.send({ op: 'MAPC', icid: 7, rdbase: 0, valid: true });
    expect(t.fire(1)).toMatchObject({ kind: 'delivered', arrival: { cpu: 0, intid: b!.intid, eventId: 1 } });
    t.send({ op: 'MAPC', icid: 7, rdbase: 0, valid: false });
    expect(t.fire(1)).toMatchObject({ kind: 'dropped', reason: 'collection 7 is not mapped' });
    expect(t.its.commandErrors).toEqual([]);
  });
});

describe('command queue', () => {
  it('drops commands with bad arguments, records their E_ITS_* errors and goes on', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    const start = t.cwriter();
    const commands: ItsCommand[] = [
      { op: 'MAPTI', deviceId: 0x99, eventId: 0, intid: 9000, icid: 0 },
      { op: 'INT', deviceId: NIC.deviceId, eventId: 0 },
      { op: 'MAPD', deviceId: 0x1_0000, size: 1, ittAddress: 0x4000_0000n, valid: true },
      { op: 'MAPD', deviceId: 0x30, size: 16, ittAddress: 0x4000_0000n, valid: true },
      { op: 'MAPC', icid: 3, rdbase: 2, valid: true },
      { op: 'MAPTI', deviceId: NIC.deviceId, eventId: 1, intid: 8191, icid: 0 },
      { op: 'MAPTI', deviceId: NIC.deviceId, eventId: 2, intid: 9000, icid: 0 },
      { op: 'MOVI', deviceId: NIC.deviceId, eventId: 0, icid: 5 },
      { op: 'INVALL', icid: 9 },
      { op: 'INT', deviceId: NIC.deviceId, eventId: 1 },
      { op: 'MOVALL', rdbase1: 0, rdbase2: 2 },
      { op: 'UNKNOWN', opcode: 0x2a },
      { op: 'SYNC', rdbase: 0 },
    ];
    const end = t.send(...commands);
    const at = (n: number) => ({ offset: start + n * ITS_COMMAND_BYTES, command: commands[n] });
    expect(t.its.commandErrors).toEqual([
      { ...at(0), error: 'MAPTI_UNMAPPED_DEVICE', code: 0x01_0a04 },
      { ...at(2), error: 'MAPD_DEVICE_OOR', code: 0x01_0801 },
      { ...at(3), error: 'MAPD_ITTSIZE_OOR', code: 0x01_0802 },
      { ...at(4), error: 'MAPC_PROCNUM_OOR', code: 0x01_0902 },
      { ...at(5), error: 'MAPTI_PHYSICALID_OOR', code: 0x01_0a06 },
      { ...at(6), error: 'MAPTI_ID_OOR', code: 0x01_0a05 },
      { ...at(7), error: 'MOVI_UNMAPPED_COLLECTION', code: 0x01_0109 },
      { ...at(8), error: 'INVALL_UNMAPPED_COLLECTION', code: 0x01_0d09 },
      { ...at(9), error: 'INT_UNMAPPED_INTERRUPT', code: 0x01_0307 },
      { ...at(10), error: 'MOVALL_PROCNUM_OOR', code: 0x01_0e01 },
      { ...at(11), error: 'UNSUPPORTED_COMMAND', code: undefined },
    ]);
    expect(end).toBe(start + commands.length * ITS_COMMAND_BYTES);
    expect(t.cwriter()).toBe(end);
    expect(t.creadr()).toBe(end);
    expect(t.its.stalled).toBe(false);
    // The INT between the bad commands took effect.
    expect(t.allArrivals()).toEqual([
      expect.objectContaining({ cpu: 0, intid: v!.intid, deviceId: NIC.deviceId, eventId: 0 }),
    ]);
    // The dropped commands changed nothing: the event stays on CPU0, EventID 1 stays unmapped.
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { cpu: 0, intid: v!.intid } });
    expect(t.fire(1)).toMatchObject({ kind: 'dropped', reason: 'TRANSLATE_UNMAPPED_INTERRUPT' });
    expect(t.fireFrom(0x30, 0)).toMatchObject({ kind: 'dropped', reason: 'TRANSLATE_UNMAPPED_DEVICE' });
  });

  it('stalls on a command it cannot read; moving CWRITER does not restart it, CWRITER.Retry does', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    t.writeIts(GITS.CTLR, 0);
    const hole = encodeCbaser({ valid: true, address: BigInt(HOLE), pages: 1 });
    t.writeIts64(GITS.CBASER, hole);
    expect(t.readIts64(GITS.CBASER)).toBe(hole);
    expect(t.creadr()).toBe(0); // a CBASER write resets CREADR
    t.writeIts(GITS.CWRITER, 0);
    t.writeIts(GITS.CTLR, GITS_CTLR_ENABLED);
    expect(t.creadr()).toBe(0);
    expect(t.its.stalled).toBe(false);

    t.writeIts(GITS.CWRITER, ITS_COMMAND_BYTES);
    expect(t.creadr()).toBe(0 | QUEUE_RETRY_STALLED); // Stalled, still at offset 0
    expect(t.its.stalled).toBe(true);
    t.writeIts(GITS.CWRITER, 2 * ITS_COMMAND_BYTES);
    expect(t.creadr()).toBe(QUEUE_RETRY_STALLED);

    // CBASER is read-only while the ITS is enabled.
    t.writeIts64(GITS.CBASER, encodeCbaser({ valid: true, address: 0x4000_0000n, pages: 16 }));
    expect(t.readIts64(GITS.CBASER)).toBe(hole);

    // Memory appears where the queue is; Retry makes the ITS read the command at CREADR again.
    t.bus.addRam('late', HOLE, 0x1000);
    t.writeCommands(BigInt(HOLE), 0, [
      { op: 'INT', deviceId: NIC.deviceId, eventId: 0 },
      { op: 'SYNC', rdbase: 0 },
    ]);
    // Without Retry the queue stays stalled, readable or not.
    t.writeIts(GITS.CWRITER, 2 * ITS_COMMAND_BYTES);
    expect(t.creadr()).toBe(QUEUE_RETRY_STALLED);
    expect(t.allArrivals()).toEqual([]);
    t.writeIts(GITS.CWRITER, (2 * ITS_COMMAND_BYTES) | QUEUE_RETRY_STALLED);
    expect(t.creadr()).toBe(2 * ITS_COMMAND_BYTES);
    expect(t.its.stalled).toBe(false);
    expect(t.cwriter() & QUEUE_OFFSET_MASK).toBe(2 * ITS_COMMAND_BYTES);
    expect(t.allArrivals()).toEqual([expect.objectContaining({ cpu: 0, intid: v!.intid })]);
    expect(t.its.commandErrors).toEqual([]);
  });

  it('a CBASER write while disabled resets CREADR (and Stalled); enabling runs the new queue', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    t.writeIts(GITS.CTLR, 0);
    t.writeIts64(GITS.CBASER, encodeCbaser({ valid: true, address: BigInt(HOLE), pages: 1 }));
    t.writeIts(GITS.CWRITER, 0);
    t.writeIts(GITS.CTLR, GITS_CTLR_ENABLED);
    t.writeIts(GITS.CWRITER, ITS_COMMAND_BYTES);
    expect(t.creadr()).toBe(QUEUE_RETRY_STALLED);

    t.writeIts(GITS.CTLR, 0);
    expect(t.creadr()).toBe(QUEUE_RETRY_STALLED); // disabling alone keeps the stall
    const queue = t.memory.allocFrames(1);
    t.writeCommands(queue, 0, [{ op: 'INT', deviceId: NIC.deviceId, eventId: 0 }]);
    t.writeIts64(GITS.CBASER, encodeCbaser({ valid: true, address: queue, pages: 1 }));
    expect(t.creadr()).toBe(0);
    expect(t.its.stalled).toBe(false);
    expect(t.allArrivals()).toEqual([]); // nothing runs while the ITS is disabled
    // CWRITER still says 32: enabling processes the command at offset 0.
    t.writeIts(GITS.CTLR, GITS_CTLR_ENABLED);
    expect(t.creadr()).toBe(ITS_COMMAND_BYTES);
    expect(t.allArrivals()).toEqual([expect.objectContaining({ intid: v!.intid })]);

    // Retry on a queue that is not stalled has no effect beyond moving CWRITER.
    t.writeCommands(queue, ITS_COMMAND_BYTES, [{ op: 'INT', deviceId: NIC.deviceId, eventId: 0 }]);
    t.writeIts(GITS.CWRITER, (2 * ITS_COMMAND_BYTES) | QUEUE_RETRY_STALLED);
    expect(t.creadr()).toBe(2 * ITS_COMMAND_BYTES);
    expect(t.allArrivals()).toHaveLength(2);
  });

  it('wraps around the end of the queue', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    t.writeIts(GITS.CTLR, 0);
    const queue = t.memory.allocFrames(1); // 4 KiB: 128 commands
    t.writeIts64(GITS.CBASER, encodeCbaser({ valid: true, address: queue, pages: 1 }));
    t.writeIts(GITS.CWRITER, 0x1000 - ITS_COMMAND_BYTES);
    // CREADR is 0 and CWRITER at the last slot: 127 empty commands (opcode 0) run on enable.
    t.writeIts(GITS.CTLR, GITS_CTLR_ENABLED);
    expect(t.creadr()).toBe(0x1000 - ITS_COMMAND_BYTES);
    expect(t.its.commandErrors).toHaveLength(127);
    expect(new Set(t.its.commandErrors.map((e) => e.error))).toEqual(new Set(['UNSUPPORTED_COMMAND']));
    const end = t.send(
      { op: 'INT', deviceId: NIC.deviceId, eventId: 0 },
      { op: 'INT', deviceId: NIC.deviceId, eventId: 0 },
    );
    expect(end).toBe(ITS_COMMAND_BYTES);
    expect(t.creadr()).toBe(ITS_COMMAND_BYTES);
    expect(t.arrivals(0).map((a) => a.intid)).toEqual([v!.intid, v!.intid]);
    expect(t.its.commandErrors).toHaveLength(127);
  });
});

describe('LPI configuration cache', () => {
  it('keeps using a cached byte until INV; INV applies it, and unmasking delivers the pending LPI', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    const intid = v!.intid;
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { intid, priority: 0xa0 } }); // now cached

    t.msi.configure(intid, { enabled: false }, { invalidate: false });
    expect(t.msi.driver.lpiConfig(intid) & LPI_ENABLE).toBe(0); // memory says disabled
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { intid } }); // the stale cache says enabled
    expect(t.allArrivals()).toHaveLength(2);

    t.msi.configure(intid, { enabled: false });
    expect(t.fire(0)).toEqual({ kind: 'pending', intid, deviceId: NIC.deviceId, eventId: 0 });
    expect(t.msi.stateOf(intid)).toBe('pending');
    expect(t.rd(0).isPending(intid)).toBe(true);
    expect(t.allArrivals()).toHaveLength(2);

    t.msi.configure(intid, { enabled: true });
    expect(t.allArrivals()).toHaveLength(3);
    expect(t.arrivals(0).at(-1)).toMatchObject({ intid, cpu: 0, deviceId: NIC.deviceId, eventId: 0 });
    expect(t.msi.stateOf(intid)).toBe('inactive');
    expect(t.msi.takeOutcomes()).toEqual([]); // the delivery came from the INV, not from an MSI write
  });

  it('caches on demand: a byte never looked up since the last INV is read from memory', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    // The unmasking INV at allocation dropped the cached byte; the first MSI reads the table.
    t.msi.configure(v!.intid, { enabled: false }, { invalidate: false });
    expect(t.rd(0).configCache.peek(v!.intid)).toBeUndefined();
    expect(t.fire(0)).toMatchObject({ kind: 'pending', intid: v!.intid });
    expect(t.rd(0).configCache.peek(v!.intid)).toBe(t.msi.driver.lpiConfig(v!.intid));
  });

  it('changes the priority with INV', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    t.msi.configure(v!.intid, { priority: 0x40 });
    expect(t.msi.driver.lpiConfig(v!.intid)).toBe(0x40 | 0b11); // priority, group 1, enabled
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { intid: v!.intid, priority: 0x40 } });
    t.msi.configure(v!.intid, { priority: 0x80 }, { invalidate: false });
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { priority: 0x40 } });
    t.msi.configure(v!.intid, { priority: 0x80 });
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { priority: 0x80 } });
  });

  it('GICR_INVLPIR refreshes one LPI at its own redistributor; GICR_INVALLR all of them', () => {
    const t = setup();
    const vectors = t.msi.allocateVectors(NIC, 3);
    const [a, b] = vectors;
    expect([a!.cpu, b!.cpu]).toEqual([0, 1]);
    t.fire(0);
    t.fire(1);
    t.msi.configure(a!.intid, { enabled: false }, { invalidate: false });
    t.msi.configure(b!.intid, { enabled: false }, { invalidate: false });
    expect(t.fire(0).kind).toBe('delivered');

    t.writeRd(1, GICR.INVLPIR, a!.intid); // not the redistributor that holds it
    expect(t.fire(0).kind).toBe('delivered');
    t.writeRd(0, GICR.INVLPIR, a!.intid);
    expect(t.fire(0)).toMatchObject({ kind: 'pending', intid: a!.intid });
    expect(t.fire(1).kind).toBe('delivered'); // b's byte is still cached at CPU1

    // Unmasked without INV: the disabled byte cached when it went pending stays in effect.
    t.msi.configure(a!.intid, { enabled: true }, { invalidate: false });
    expect(t.msi.stateOf(a!.intid)).toBe('pending');
    const before = t.allArrivals().length;
    t.writeRd(0, GICR.INVALLR, 0);
    expect(t.allArrivals()).toHaveLength(before + 1);
    expect(t.arrivals(0).at(-1)).toMatchObject({ intid: a!.intid, eventId: 0 });
    expect(t.msi.stateOf(a!.intid)).toBe('inactive');

    t.writeRd(1, GICR.INVALLR, 0);
    expect(t.fire(1)).toMatchObject({ kind: 'pending', intid: b!.intid });
  });

  it('INV and INVALL commands refresh the cache', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    t.fire(0);
    t.msi.configure(v!.intid, { enabled: false }, { invalidate: false });
    expect(t.fire(0).kind).toBe('delivered');
    t.send({ op: 'INVALL', icid: 0 }, { op: 'SYNC', rdbase: 0 });
    expect(t.fire(0)).toMatchObject({ kind: 'pending' });
    t.msi.configure(v!.intid, { enabled: true }, { invalidate: false });
    const before = t.allArrivals().length;
    t.send({ op: 'INV', deviceId: NIC.deviceId, eventId: 0 });
    expect(t.allArrivals()).toHaveLength(before + 1);
    expect(t.its.commandErrors).toEqual([]);
  });
});

describe('MOVI, INT, CLEAR, DISCARD, MOVALL', () => {
  it('MOVI retargets the next MSI', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { cpu: 0 } });
    t.msi.setAffinity(v!.intid, 1);
    expect(t.msi.driver.eventOf(v!.intid)?.cpu).toBe(1);
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { cpu: 1, intid: v!.intid } });
    expect(t.arrivals(0)).toHaveLength(1);
    expect(t.arrivals(1)).toHaveLength(1);
  });

  it('MOVI drops the old redistributor’s cached configuration, so a mask sent to the new one holds on return', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    const intid = v!.intid;
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { cpu: 0 } }); // cached on CPU0 as enabled
    t.msi.setAffinity(intid, 1);
    t.msi.configure(intid, { enabled: false }); // the INV goes to CPU1's redistributor
    t.msi.setAffinity(intid, 0);
    expect(t.fire(0)).toMatchObject({ kind: 'pending', intid });
  });

  it('a pending LPI moves with MOVI and is delivered at the new CPU', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    const intid = v!.intid;
    t.msi.configure(intid, { enabled: false });
    expect(t.fire(0)).toMatchObject({ kind: 'pending', intid });
    expect(t.rd(0).isPending(intid)).toBe(true);
    t.msi.setAffinity(intid, 1);
    expect(t.rd(0).isPending(intid)).toBe(false);
    expect(t.rd(1).isPending(intid)).toBe(true);
    expect(t.msi.stateOf(intid)).toBe('pending');
    expect(t.allArrivals()).toEqual([]);
    t.msi.configure(intid, { enabled: true });
    expect(t.arrivals(0)).toEqual([]);
    expect(t.arrivals(1)).toEqual([
      expect.objectContaining({ cpu: 1, intid, deviceId: NIC.deviceId, eventId: 0, priority: 0xa0 }),
    ]);
    expect(t.msi.stateOf(intid)).toBe('inactive');
  });

  it('INT raises the LPI; on a disabled LPI it stays pending and CLEAR clears it', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    const intid = v!.intid;
    t.msi.driver.raise(intid);
    expect(t.arrivals(0)).toEqual([
      expect.objectContaining({ intid, controller: 'its0', deviceId: NIC.deviceId, eventId: 0 }),
    ]);
    expect(t.msi.takeOutcomes()).toEqual([]); // not an MSI write
    t.msi.configure(intid, { enabled: false });
    t.msi.driver.raise(intid);
    expect(t.msi.stateOf(intid)).toBe('pending');
    expect(t.arrivals(0)).toHaveLength(1);

    t.send({ op: 'CLEAR', deviceId: NIC.deviceId, eventId: 0 }, { op: 'SYNC', rdbase: 0 });
    expect(t.msi.stateOf(intid)).toBe('inactive');
    // Unmasking (GICR_INVLPIR after the byte) finds nothing pending.
    t.msi.configure(intid, { enabled: true }, { invalidate: false });
    t.writeRd(0, GICR.INVLPIR, intid);
    expect(t.arrivals(0)).toHaveLength(1);
    expect(t.fire(0).kind).toBe('delivered');
    expect(t.its.commandErrors).toEqual([]);
  });

  it('freeVectors (DISCARD, MAPD V=0) makes later MSIs drop; the vectors can be allocated again', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    t.msi.freeVectors(NIC);
    expect(t.msi.driver.lpiConfig(v!.intid) & LPI_ENABLE).toBe(0);
    expect(t.fire(0)).toMatchObject({ kind: 'dropped', reason: 'TRANSLATE_UNMAPPED_DEVICE' });
    expect(() => t.msi.driver.raise(v!.intid)).toThrow(/ENOENT/);
    const [again] = t.msi.allocateVectors(NIC, 1);
    expect(again!.intid).toBe(v!.intid);
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { intid: v!.intid } });
    expect(t.its.commandErrors).toEqual([]);
  });

  it('DISCARD unmaps one event and drops its pending state', () => {
    const t = setup();
    const [a, b] = t.msi.allocateVectors(NIC, 2);
    t.msi.configure(a!.intid, { enabled: false });
    expect(t.fire(0)).toMatchObject({ kind: 'pending' });
    t.send({ op: 'DISCARD', deviceId: NIC.deviceId, eventId: 0 }, { op: 'SYNC', rdbase: 0 });
    expect(t.msi.stateOf(a!.intid)).toBe('inactive');
    expect(t.fire(0)).toMatchObject({ kind: 'dropped', reason: 'TRANSLATE_UNMAPPED_INTERRUPT' });
    expect(t.fire(1)).toMatchObject({ kind: 'delivered', arrival: { intid: b!.intid } });
    t.send({ op: 'DISCARD', deviceId: NIC.deviceId, eventId: 0 });
    expect(t.its.commandErrors).toEqual([
      expect.objectContaining({ error: 'DISCARD_UNMAPPED_INTERRUPT', code: 0x01_0f07 }),
    ]);
  });

  it('MOVALL moves every pending LPI from one redistributor to another', () => {
    const t = setup();
    const vectors = t.msi.allocateVectors(NIC, 3);
    expect(vectors.map((v) => v.cpu)).toEqual([0, 1, 0]);
    for (const v of vectors) t.msi.configure(v.intid, { enabled: false });
    for (const v of vectors) expect(t.fire(v.eventId).kind).toBe('pending');
    expect(t.rd(0).pendingLpis()).toEqual([vectors[0]!.intid, vectors[2]!.intid]);
    expect(t.rd(1).pendingLpis()).toEqual([vectors[1]!.intid]);

    t.send({ op: 'MOVALL', rdbase1: 0, rdbase2: 1 }, { op: 'SYNC', rdbase: 1 });
    expect(t.rd(0).pendingLpis()).toEqual([]);
    expect(t.rd(1).pendingLpis()).toEqual(vectors.map((v) => v.intid));
    expect(t.allArrivals()).toEqual([]);

    // The ITEs still name collection 0; the pending state is at CPU1, where an invalidation finds it.
    for (const v of vectors) t.msi.configure(v.intid, { enabled: true }, { invalidate: false });
    t.writeRd(0, GICR.INVALLR, 0);
    expect(t.allArrivals()).toEqual([]);
    t.writeRd(1, GICR.INVALLR, 0);
    expect(t.arrivals(1).map((a) => [a.intid, a.eventId])).toEqual(vectors.map((v) => [v.intid, v.eventId]));
    expect(t.arrivals(0)).toEqual([]);
    expect(t.its.commandErrors).toEqual([]);
  });
});

describe('tables and registers', () => {
  it('uses a two-level device table for 16 DeviceID bits; DeviceID 0xfff0 works', () => {
    const t = setup();
    const devices = decodeBaser(t.readIts64(GITS.BASER));
    expect(devices).toMatchObject({ valid: true, indirect: true, type: BASER_TYPE.devices, entrySize: 8 });
    expect(devices.pageSize).toBe(0x1_0000);
    const collections = decodeBaser(t.readIts64(GITS.BASER + 8));
    expect(collections).toMatchObject({ valid: true, indirect: false, type: BASER_TYPE.collections });

    const high = { name: 'nic9', deviceId: 0xfff0 };
    const [v] = t.msi.allocateVectors(high, 1);
    expect(t.fireFrom(high.deviceId, 0)).toMatchObject({
      kind: 'delivered',
      arrival: { intid: v!.intid, deviceId: 0xfff0 },
    });
    // The driver gave DeviceIDs 0xe000…0xffff a level-2 page: level-1 entry 7 is valid.
    const l1 = t.bus.read(devices.address + 7n * 8n, 8, t.who);
    expect(l1.ok && l1.value >> 63n).toBe(1n);
    // A DeviceID whose level-1 entry is invalid cannot be mapped.
    t.send({ op: 'MAPD', deviceId: 0x8000, size: 1, ittAddress: 0x4000_0000n, valid: true });
    expect(t.its.commandErrors).toEqual([expect.objectContaining({ error: 'MAPD_DEVICE_OOR' })]);
    expect(t.fireFrom(0x8000, 0)).toMatchObject({ kind: 'dropped', reason: 'TRANSLATE_UNMAPPED_DEVICE' });
  });

  it('uses a flat device table when it fits in two pages', () => {
    const t = setup({ deviceIdBits: 12 });
    expect(decodeTyper(t.readIts64(GITS.TYPER)).deviceIdBits).toBe(12);
    expect(decodeBaser(t.readIts64(GITS.BASER))).toMatchObject({ valid: true, indirect: false });
    const [v] = t.msi.allocateVectors({ name: 'nic9', deviceId: 0xff0 }, 1);
    expect(t.fireFrom(0xff0, 0)).toMatchObject({ kind: 'delivered', arrival: { intid: v!.intid } });
    expect(() => t.msi.allocateVectors({ name: 'big', deviceId: 0x1000 }, 1)).toThrow(/EINVAL/);
  });

  it('GICR_TYPER: Processor_Number per frame, Last on the last redistributor', () => {
    const t = setup({ cpus: 3 });
    expect([0, 1, 2].map((cpu) => decodeRedistTyper(t.readRd64(cpu, GICR.TYPER)))).toEqual([
      { processorNumber: 0, last: false, plpis: true },
      { processorNumber: 1, last: false, plpis: true },
      { processorNumber: 2, last: true, plpis: true },
    ]);
    expect(Number(t.readRd64(2, GICR.PIDR2) & 0xffn) >> 4).toBe(3);
  });

  it('GITS_PIDR2 ArchRev is 3, GITS_TYPER shows the geometry, GITS_CTLR.Quiescent is set while disabled', () => {
    const t = setup();
    expect((t.readIts(GITS.PIDR2) >> 4) & 0xf).toBe(3);
    expect(t.readIts(GITS.IIDR)).toBe(0x43b);
    expect(decodeTyper(t.readIts64(GITS.TYPER))).toEqual({
      physical: true,
      itteSize: 8,
      eventIdBits: 16,
      deviceIdBits: 16,
      pta: false,
      collectionIdBits: 16,
    });
    expect(t.readIts(GITS.CTLR)).toBe(GITS_CTLR_ENABLED); // probed: enabled, not quiescent
    t.writeIts(GITS.CTLR, 0);
    expect(t.readIts(GITS.CTLR)).toBe(GITS_CTLR_QUIESCENT);
    expect(t.its.enabled).toBe(false);
    t.writeIts(GITS.CTLR, GITS_CTLR_QUIESCENT); // Quiescent is read-only
    expect(t.readIts(GITS.CTLR)).toBe(GITS_CTLR_QUIESCENT);
  });

  it('GITS_BASER is read-only while enabled, and its Type and Entry_Size always', () => {
    const t = setup();
    const before = t.readIts64(GITS.BASER);
    t.writeIts64(GITS.BASER, 0n);
    expect(t.readIts64(GITS.BASER)).toBe(before);
    t.writeIts(GITS.CTLR, 0);
    t.writeIts64(GITS.BASER, 0n);
    expect(decodeBaser(t.readIts64(GITS.BASER))).toMatchObject({
      valid: false,
      type: BASER_TYPE.devices,
      entrySize: 8,
    });
    // Unimplemented BASER2..7 read as 0 (Type none).
    expect(t.readIts64(GITS.BASER + 16)).toBe(0n);
    // Re-enabled without a device table, the ITS cannot find any device.
    t.writeIts(GITS.CTLR, GITS_CTLR_ENABLED);
    expect(t.fireFrom(0x10, 0)).toMatchObject({ kind: 'dropped', reason: 'TRANSLATE_UNMAPPED_DEVICE' });
  });
});

describe('a second device', () => {
  it('keeps vectors of two devices apart', () => {
    const t = setup();
    const [a] = t.msi.allocateVectors(NIC, 1);
    const [b] = t.msi.allocateVectors(NIC1, 1);
    expect(b!.intid).toBe(a!.intid + 1);
    expect(b!.cpu).toBe(1);
    expect(t.fireFrom(NIC1.deviceId, 0)).toMatchObject({
      kind: 'delivered',
      arrival: { intid: b!.intid, cpu: 1, deviceId: NIC1.deviceId },
    });
    expect(() => t.msi.allocateVectors(NIC, 1)).toThrow(/EEXIST/);
  });
});

describe('ITT slots and command bounds', () => {
  /** Maps `deviceId` with an ITT of 2^(size + 1) events in fresh frames; returns the ITT's address. */
  const mapDevice = (t: ReturnType<typeof setup>, deviceId: number, size: number, frames = 1) => {
    // The device table is two-level: nic0's vectors back the level-2 page of DeviceIDs 0..511.
    if (t.msi.driver.eventOf(LPI_BASE) === undefined) t.msi.allocateVectors(NIC, 1);
    const ittAddress = t.memory.allocFrames(frames);
    t.send({ op: 'MAPD', deviceId, size, ittAddress, valid: true });
    return ittAddress;
  };
  /** The ITE the ITS wrote at `address` (undefined: the slot is invalid). */
  const iteAt = (t: ReturnType<typeof setup>, address: bigint) => {
    const r = t.bus.read(Number(address), 8, t.who);
    expect(r.ok).toBe(true);
    return decodeIte(r.ok ? r.value : 0n);
  };

  it('MAPTI writes the ITE of (DeviceID, EventID) at ITT address + EventID × ITT_entry_size, and translation reads it there', () => {
    const t = setup();
    const ittA = mapDevice(t, 0x40, 3);
    const ittB = mapDevice(t, 0x41, 3);
    t.send(
      { op: 'MAPTI', deviceId: 0x40, eventId: 3, intid: 8200, icid: 1 },
      { op: 'MAPTI', deviceId: 0x41, eventId: 5, intid: 8201, icid: 0 },
    );
    expect(t.its.commandErrors).toEqual([]);
    // GITS_TYPER.ITT_entry_size (GICv3 §12.19.18) is 8 bytes: one slot per EventID, each device in its own ITT.
    const entrySize = decodeTyper(t.readIts64(GITS.TYPER)).itteSize;
    expect(entrySize).toBe(8);
    for (let event = 0; event < 16; event++) {
      expect(iteAt(t, ittA + BigInt(event * entrySize))).toEqual(
        event === 3 ? { intid: 8200, icid: 1 } : undefined,
      );
      expect(iteAt(t, ittB + BigInt(event * entrySize))).toEqual(
        event === 5 ? { intid: 8201, icid: 0 } : undefined,
      );
    }
    expect(t.fireFrom(0x40, 3)).toMatchObject({ kind: 'pending', intid: 8200 });
    expect(t.rd(1).isPending(8200)).toBe(true);
    expect(t.fireFrom(0x41, 5)).toMatchObject({ kind: 'pending', intid: 8201 });
    expect(t.rd(0).isPending(8201)).toBe(true);
    expect(t.fireFrom(0x40, 5)).toMatchObject({ kind: 'dropped', reason: 'TRANSLATE_UNMAPPED_INTERRUPT' });
    expect(t.fireFrom(0x41, 3)).toMatchObject({ kind: 'dropped', reason: 'TRANSLATE_UNMAPPED_INTERRUPT' });
  });

  it('MAPI maps the LPI whose INTID is the EventID, in the EventID’s slot', () => {
    const t = setup();
    // 2^14 events: EventID 8195 is an LPI INTID; its slot is 8195 × 8 bytes into the ITT (17 pages).
    const itt = mapDevice(t, 0x40, 13, 17);
    t.send({ op: 'MAPI', deviceId: 0x40, eventId: 8195, icid: 1 });
    expect(t.its.commandErrors).toEqual([]);
    expect(iteAt(t, itt + 8195n * 8n)).toEqual({ intid: 8195, icid: 1 });
    expect(t.fireFrom(0x40, 8195)).toMatchObject({ kind: 'pending', intid: 8195 });
  });

  it('MOVALL drops the old redistributor’s cached configuration: a mask sent through the new one holds when the collection returns', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    const intid = v!.intid;
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { cpu: 0 } }); // cached on CPU0 as enabled
    // CPU0 goes away: its pending LPIs and collection 0 move to CPU1 (GICv3 §5.3.11 MOVALL, §5.3.10 MAPC).
    t.send({ op: 'MOVALL', rdbase1: 0, rdbase2: 1 }, { op: 'MAPC', icid: 0, rdbase: 1, valid: true });
    t.msi.configure(intid, { enabled: false }, { invalidate: false });
    t.send({ op: 'INV', deviceId: NIC.deviceId, eventId: 0 }); // reaches CPU1's redistributor only
    t.send({ op: 'MAPC', icid: 0, rdbase: 0, valid: true }, { op: 'MOVALL', rdbase1: 1, rdbase2: 0 });
    expect(t.its.commandErrors).toEqual([]);
    expect(t.fire(0)).toMatchObject({ kind: 'pending', intid });
    expect(t.rd(0).isPending(intid)).toBe(true);
  });

  it('IDs at the top of each GITS_TYPER width are refused with the command’s error; one below is accepted', () => {
    const t = setup();
    const { deviceIdBits, eventIdBits, lpiIdBits } = t.its.geometry;
    t.msi.allocateVectors(NIC, 1);
    const itt = t.memory.allocFrames(1);
    const start = t.cwriter();
    t.send(
      { op: 'MAPD', deviceId: 0x40, size: eventIdBits - 1, ittAddress: itt, valid: true },
      { op: 'MAPTI', deviceId: 2 ** deviceIdBits, eventId: 0, intid: 8200, icid: 0 },
      { op: 'MAPTI', deviceId: 0x40, eventId: 0, intid: 2 ** lpiIdBits, icid: 0 },
      { op: 'MAPTI', deviceId: 0x40, eventId: 0, intid: 2 ** lpiIdBits - 1, icid: 0 },
      { op: 'MOVI', deviceId: 0x40, eventId: 1, icid: 0 },
      { op: 'SYNC', rdbase: t.gic.redistributors.length },
      { op: 'SYNC', rdbase: t.gic.redistributors.length - 1 },
    );
    expect(t.its.commandErrors.map((e) => [(e.offset - start) / ITS_COMMAND_BYTES, e.error])).toEqual([
      [1, 'MAPTI_DEVICE_OOR'],
      [2, 'MAPTI_PHYSICALID_OOR'],
      [4, 'MOVI_UNMAPPED_INTERRUPT'],
      [5, 'SYNC_PROCNUM_OOR'],
    ]);
    expect(iteAt(t, itt)).toEqual({ intid: 2 ** lpiIdBits - 1, icid: 0 });
  });

  it('an event whose collection is unmapped: INV is refused, MOVI to a mapped collection takes it there', () => {
    const t = setup();
    mapDevice(t, 0x40, 3);
    const start = t.cwriter();
    const commands: ItsCommand[] = [
      { op: 'MAPTI', deviceId: 0x40, eventId: 0, intid: 8200, icid: 7 },
      { op: 'INV', deviceId: 0x40, eventId: 0 },
      { op: 'MOVI', deviceId: 0x40, eventId: 0, icid: 1 },
      { op: 'INV', deviceId: 0x40, eventId: 0 },
    ];
    t.send(...commands);
    expect(t.its.commandErrors.map((e) => [e.offset - start, e.error])).toEqual([
      [ITS_COMMAND_BYTES, 'INV_UNMAPPED_COLLECTION'],
    ]);
    expect(t.fireFrom(0x40, 0)).toMatchObject({ kind: 'pending', intid: 8200 });
    expect(t.rd(1).isPending(8200)).toBe(true);
  });

  it('without a device or collection table (GITS_BASER.Valid = 0) MAPD and MAPC are refused and MSIs dropped', () => {
    const t = setup();
    t.msi.allocateVectors(NIC, 1);
    t.writeIts(GITS.CTLR, 0);
    for (const n of [0, 1]) t.writeIts64(GITS.BASER + 8 * n, 0n);
    t.writeIts(GITS.CTLR, GITS_CTLR_ENABLED);
    const start = t.cwriter();
    const commands: ItsCommand[] = [
      { op: 'MAPD', deviceId: 0x40, size: 3, ittAddress: t.memory.allocFrames(1), valid: true },
      { op: 'MAPC', icid: 0, rdbase: 0, valid: true },
      { op: 'INVALL', icid: 0 },
    ];
    t.send(...commands);
    expect(t.its.commandErrors.map((e) => [e.offset - start, e.error])).toEqual([
      [0, 'MAPD_DEVICE_OOR'],
      [ITS_COMMAND_BYTES, 'MAPC_COLLECTION_OOR'],
      [2 * ITS_COMMAND_BYTES, 'INVALL_UNMAPPED_COLLECTION'],
    ]);
    expect(t.fire(0)).toMatchObject({ kind: 'dropped', reason: 'TRANSLATE_UNMAPPED_DEVICE' });
  });

  it('an invalid CBASER or a CWRITER at or past the end of the queue runs nothing', () => {
    const t = setup();
    const queue = decodeCbaser(t.readIts64(GITS.CBASER));
    const start = t.creadr();
    t.writeIts(GITS.CWRITER, queue.pages * 0x1000);
    expect(t.creadr()).toBe(start);
    t.writeIts(GITS.CTLR, 0);
    t.writeIts64(GITS.CBASER, encodeCbaser({ ...queue, valid: false, address: BigInt(HOLE) }));
    t.writeIts(GITS.CTLR, GITS_CTLR_ENABLED);
    t.writeIts(GITS.CWRITER, ITS_COMMAND_BYTES);
    expect(t.creadr()).toBe(0);
    expect(t.its.stalled).toBe(false);
    expect(t.its.commandErrors).toEqual([]);
  });

  it('only GITS_TRANSLATER in the translation frame translates a write', () => {
    const t = setup();
    t.msi.allocateVectors(NIC, 1);
    const translater = t.gic.doorbell(0).address;
    for (const address of [translater - 0x40n, translater + 4n]) t.msiWrite(address, 0, NIC.deviceId);
    expect(t.msi.takeOutcomes()).toEqual([]);
    expect(t.allArrivals()).toEqual([]);
  });

  it('traces enabling, each command with its fields, translations and drops', () => {
    const t = setup();
    t.msi.allocateVectors(NIC, 1);
    t.tracer.startRecording();
    t.writeIts(GITS.CTLR, GITS_CTLR_ENABLED); // already enabled: nothing to latch or log
    t.writeIts(GITS.CTLR, 0);
    t.writeIts(GITS.CTLR, 0);
    t.writeIts(GITS.CTLR, GITS_CTLR_ENABLED);
    t.send({ op: 'MAPD', deviceId: 0x40, size: 3, ittAddress: 0x4010_0000n, valid: true });
    t.fire(0);
    t.fireFrom(0x41, 2);
    const records = t.tracer.stopRecording().filter((r) => r.source === t.its.name);
    expect(records.map((r) => r.name)).toEqual(['its.enable', 'cmd.MAPD', 'msi.translate', 'msi.drop']);
    expect(records[1]).toMatchObject({
      message: 'MAPD deviceId=0x40 size=3 ittAddress=0x40100000 valid=1',
      args: { deviceId: 0x40, size: 3, ittAddress: 0x4010_0000n, valid: true },
    });
    expect(records[2]!.args).toEqual({ deviceId: NIC.deviceId, eventId: 0, intid: 8192, icid: 0 });

    t.tracer.startRecording();
    t.send(
      { op: 'MAPTI', deviceId: 0x41, eventId: 0, intid: 8200, icid: 0 },
      { op: 'UNKNOWN', opcode: 0x2a },
    );
    t.writeIts(GITS.CTLR, 0);
    t.writeIts64(GITS.CBASER, encodeCbaser({ valid: true, address: BigInt(HOLE), pages: 1 }));
    t.writeIts(GITS.CTLR, GITS_CTLR_ENABLED);
    t.writeIts(GITS.CWRITER, ITS_COMMAND_BYTES);
    const more = t.tracer.stopRecording().filter((r) => r.source === t.its.name);
    expect(more.map((r) => r.name)).toEqual([
      'cmd.MAPTI',
      'cmd.error',
      'cmd.UNKNOWN',
      'cmd.error',
      'its.enable',
      'cmdq.stall',
    ]);
    expect(more[2]!.message).toBe('UNKNOWN opcode=0x2a');
    expect([...records, ...more].every((r) => r.layer === 'msi')).toBe(true);
  });

  it('MOVI to the collection the event already targets and MOVALL onto the same redistributor keep the cached configuration', () => {
    const t = setup();
    const [v] = t.msi.allocateVectors(NIC, 1);
    const intid = v!.intid;
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { cpu: 0 } }); // cached on CPU0 as enabled
    t.msi.configure(intid, { enabled: false }, { invalidate: false }); // memory only: no INV yet
    t.send(
      { op: 'MOVI', deviceId: NIC.deviceId, eventId: 0, icid: 0 },
      { op: 'MOVALL', rdbase1: 0, rdbase2: 0 },
    );
    expect(t.its.commandErrors).toEqual([]);
    expect(t.fire(0)).toMatchObject({ kind: 'delivered', arrival: { cpu: 0, intid } });
    t.send({ op: 'INV', deviceId: NIC.deviceId, eventId: 0 });
    expect(t.fire(0)).toMatchObject({ kind: 'pending', intid });
  });

  it('a command in the last slot of a queue that ends where RAM ends is read whole, and the queue wraps', () => {
    const t = setup();
    const last = RAM_BASE + RAM_BYTES - 0x1000; // the next page is a hole in the rig's bus
    t.writeIts(GITS.CTLR, 0);
    t.writeIts64(GITS.CBASER, encodeCbaser({ valid: true, address: BigInt(last), pages: 1 }));
    t.writeIts(GITS.CWRITER, 0);
    const slots = 0x1000 / ITS_COMMAND_BYTES;
    t.writeCommands(
      BigInt(last),
      0,
      Array.from({ length: slots }, () => ({ op: 'SYNC', rdbase: 0 }) as const),
    );
    t.writeIts(GITS.CTLR, GITS_CTLR_ENABLED);
    t.writeIts(GITS.CWRITER, 0x1000 - ITS_COMMAND_BYTES);
    expect(t.creadr()).toBe(0x1000 - ITS_COMMAND_BYTES);
    t.writeIts(GITS.CWRITER, 0);
    expect(t.its.stalled).toBe(false);
    expect(t.creadr()).toBe(0);
    expect(t.its.commandErrors).toEqual([]);
  });

  it('a device table with room past 2^DeviceID bits still refuses that DeviceID; a collection past its table is refused', () => {
    const t = setup();
    const { deviceIdBits } = t.its.geometry;
    // A flat table of nine 64 KiB pages: 73728 entries of 8 bytes.
    const table = t.memory.allocBytes(9 * 0x1_0000, 0x1_0000);
    t.writeIts(GITS.CTLR, 0);
    t.writeIts64(
      GITS.BASER,
      encodeBaser({ valid: true, indirect: false, pageSize: 0x1_0000, address: BigInt(table), pages: 9 }),
    );
    t.writeIts(GITS.CTLR, GITS_CTLR_ENABLED);
    const collections = decodeBaser(t.readIts64(GITS.BASER + 8));
    expect(collections.indirect).toBe(false);
    const capacity = (collections.pages * collections.pageSize) / collections.entrySize;
    expect(capacity).toBeLessThan(2 ** 16);
    const start = t.cwriter();
    t.send(
      { op: 'MAPD', deviceId: 2 ** deviceIdBits, size: 1, ittAddress: t.memory.allocFrames(1), valid: true },
      { op: 'MAPC', icid: capacity, rdbase: 0, valid: true },
      { op: 'MAPC', icid: capacity - 1, rdbase: 0, valid: true },
    );
    expect(t.its.commandErrors.map((e) => [(e.offset - start) / ITS_COMMAND_BYTES, e.error])).toEqual([
      [0, 'MAPD_DEVICE_OOR'],
      [1, 'MAPC_COLLECTION_OOR'],
    ]);
  });

  it('GITS register map (GICv3 §12.19): offsets and access types; table accesses count as the ITS’s own', () => {
    const t = setup();
    expect(t.its.registers.definitions().map((d) => [d.name, d.offset, d.access])).toEqual([
      ['GITS_CTLR', 0x0, 'rw'],
      ['GITS_IIDR', 0x4, 'ro'],
      ['GITS_TYPER', 0x8, 'ro'],
      ['GITS_TYPER_HI', 0xc, 'ro'],
      ['GITS_CBASER', 0x80, 'rw'],
      ['GITS_CBASER_HI', 0x84, 'rw'],
      ['GITS_CWRITER', 0x88, 'rw'],
      ['GITS_CWRITER_HI', 0x8c, 'ro'],
      ['GITS_CREADR', 0x90, 'ro'],
      ['GITS_CREADR_HI', 0x94, 'ro'],
      ['GITS_BASER0', 0x100, 'rw'],
      ['GITS_BASER0_HI', 0x104, 'rw'],
      ['GITS_BASER1', 0x108, 'rw'],
      ['GITS_BASER1_HI', 0x10c, 'rw'],
      ['GITS_PIDR2', 0xffe8, 'ro'],
    ]);
    const tables = t.bus.counter(`${t.its.name}:tables`);
    const before = tables.writes;
    t.msi.allocateVectors(NIC, 1);
    expect(tables.writes).toBeGreaterThan(before);
  });
});
