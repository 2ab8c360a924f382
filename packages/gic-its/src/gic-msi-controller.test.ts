import { errnoOf, type InterruptArrival } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { gicRig } from '../test/gic-rig.js';

const NIC = { name: 'nic0', deviceId: 0x10 };
const NIC1 = { name: 'nic1', deviceId: 0x20 };

describe('GicMsiController (the core IMsiController contract)', () => {
  it('refuses a vector count that is not a positive integer', () => {
    const { msi } = gicRig();
    expect(errnoOf(() => msi.allocateVectors(NIC, 0))).toBe('EINVAL');
    expect(errnoOf(() => msi.allocateVectors(NIC, 1.5))).toBe('EINVAL');
    expect(msi.allocateVectors(NIC, 1)).toHaveLength(1);
  });

  it('is a gic-its controller with one CPU interface per CPU and a doorbell per ITS', () => {
    const { msi } = gicRig({ cpus: 3 });
    expect(msi.kind).toBe('gic-its');
    expect(msi.cpus.map((c) => c.cpu)).toEqual([0, 1, 2]);
    expect(msi.doorbells.map((d) => [d.name, d.address, d.page])).toEqual([
      ['its0', 0x0809_0040n, 0x0809_0000n],
    ]);
    expect(msi.doorbellFor(NIC)).toBe(msi.doorbells[0]);
  });

  it('runs the handlers of arrived LPIs in arrival order across CPUs, once, and only those with a handler', () => {
    const r = gicRig();
    const vectors = r.msi.allocateVectors(NIC, 3); // CPUs 0, 1, 0
    const ran: number[] = [];
    const handler = (a: InterruptArrival) => ran.push(a.intid);
    r.msi.requestIrq(vectors[0]!.intid, handler);
    r.msi.requestIrq(vectors[1]!.intid, handler);
    for (const eventId of [1, 2, 0, 1]) r.msiWrite(r.gic.doorbell(0).address, eventId, NIC.deviceId);
    expect(r.msi.takeOutcomes().map((o) => o.kind)).toEqual([
      'delivered',
      'delivered',
      'delivered',
      'delivered',
    ]);
    expect(r.msi.takeOutcomes()).toEqual([]);
    expect(r.msi.service()).toBe(3); // the LPI of EventID 2 has no handler
    expect(ran).toEqual([vectors[1]!.intid, vectors[0]!.intid, vectors[1]!.intid]);
    expect(r.msi.service()).toBe(0);
  });

  it('one handler per LPI; releasing it frees the LPI, a stale release does not remove a newer handler', () => {
    const r = gicRig();
    const [v] = r.msi.allocateVectors(NIC, 1);
    const calls: string[] = [];
    const release = r.msi.requestIrq(v!.intid, () => calls.push('first'));
    expect(errnoOf(() => r.msi.requestIrq(v!.intid, () => calls.push('second')))).toBe('EBUSY');
    release();
    r.msi.requestIrq(v!.intid, () => calls.push('third'));
    release(); // the first registration is gone already
    r.msiWrite(r.gic.doorbell(0).address, 0, NIC.deviceId);
    expect(r.msi.service()).toBe(1);
    expect(calls).toEqual(['third']);
  });

  it('reports an LPI pending on any redistributor', () => {
    const r = gicRig();
    const [, v] = r.msi.allocateVectors(NIC, 2); // on CPU 1
    r.msi.configure(v!.intid, { enabled: false });
    expect(r.msi.stateOf(v!.intid)).toBe('inactive');
    r.msiWrite(r.gic.doorbell(0).address, 1, NIC.deviceId);
    expect(r.msi.stateOf(v!.intid)).toBe('pending');
  });

  it('dispose takes the ITS and redistributor frames off the bus', () => {
    const r = gicRig();
    const who = r.bus.counter('test');
    const doorbell = r.gic.doorbell(0).address;
    expect(r.bus.read(doorbell - 0x40n + 0xffe8n, 4, who).ok).toBe(true);
    r.msi.dispose();
    expect(r.bus.read(doorbell - 0x40n + 0xffe8n, 4, who).ok).toBe(false);
    expect(r.bus.read(0x080a_0000, 4, who).ok).toBe(false);
    expect(r.bus.read(0x080c_0000, 4, who).ok).toBe(false);
  });

  it('freeVectors of one device leaves the other device’s vectors working', () => {
    const r = gicRig();
    r.msi.allocateVectors(NIC, 1);
    const [w] = r.msi.allocateVectors(NIC1, 1);
    r.msi.freeVectors(NIC);
    r.msi.freeVectors(NIC); // twice: nothing left to free
    r.msiWrite(r.gic.doorbell(0).address, 0, NIC1.deviceId);
    expect(r.msi.takeOutcomes()).toMatchObject([{ kind: 'delivered', arrival: { intid: w!.intid } }]);
  });
});
