import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IommuDeviceRef, IommuDriver, ViommuDriverObject } from '../iommu/driver.js';
import { PasidAllocator } from '../iommu/pasid-allocator.js';
import type { DeviceObject } from './device.js';
import type { HwptPagingObject } from './hw-pagetable.js';
import { IommufdObject } from './object-table.js';
import { VdeviceObject, type Vevent, VeventqObject, ViommuObject } from './viommu.js';
import { VpasidTable } from './vpasid.js';

/** Stands in for the nest-parent paging HWPT: only its users count matters to a vIOMMU. */
class StubParent extends IommufdObject {
  readonly type = 'hwpt-paging';
  destroy(): void {}
}

function driverObject(log: string[]): ViommuDriverObject {
  return {
    type: 'mock',
    vdeviceAlloc: () => log.push('vdeviceAlloc'),
    vdeviceDestroy: (device) => log.push(`vdeviceDestroy ${device.name}`),
    domainAllocNested: () => {
      throw new Error('not used');
    },
    cacheInvalidate: () => ({ handled: 0 }),
    destroy: () => log.push('destroy'),
  };
}

function setup(depth = 2, type = 'mock') {
  const parent = new StubParent();
  const log: string[] = [];
  const viommu = new ViommuObject(
    parent as unknown as HwptPagingObject,
    {} as IommuDriver,
    'mock',
    driverObject(log),
  );
  const queue = new VeventqObject(viommu, type, depth);
  let n = 0;
  /** Reports one event of the queue's type whose payload is its report number. */
  const report = () => viommu.report(type, Uint32Array.of(n++, 0xfeed));
  return { parent, log, viommu, queue, report };
}

const seqs = (events: Vevent[]) => events.map((e) => [e.sequence, e.lostEvents]);

describe('VeventqObject', () => {
  it('IOMMU_VEVENTQ: events are read in report order with sequence numbers from 0 and their payload', () => {
    const { queue, report } = setup(4);
    report();
    report();
    report();
    const events = queue.read();
    expect(seqs(events)).toEqual([
      [0, false],
      [1, false],
      [2, false],
    ]);
    expect(events.map((e) => [...(e.record ?? [])])).toEqual([
      [0, 0xfeed],
      [1, 0xfeed],
      [2, 0xfeed],
    ]);
  });

  it('IOMMU_VEVENTQ: reading frees the events; a second read is empty', () => {
    const { queue, report } = setup(4);
    report();
    report();
    expect(queue.queued).toBe(2);
    expect(queue.read()).toHaveLength(2);
    expect(queue.queued).toBe(0);
    expect(queue.read()).toEqual([]);
  });

  it('the payload is copied when the event is reported', () => {
    const { viommu, queue } = setup(4);
    const record = Uint32Array.of(1, 2, 3, 4);
    viommu.report('mock', record);
    record.fill(0);
    expect([...(queue.read()[0]?.record ?? [])]).toEqual([1, 2, 3, 4]);
  });

  it('IOMMU_VEVENTQ_FLAG_LOST_EVENTS: at depth, every drop consumes a sequence number and one marker at the tail carries the last one', () => {
    const { queue, report } = setup(2);
    for (let i = 0; i < 6; i++) report();
    expect(queue.queued).toBe(3);
    const events = queue.read();
    expect(seqs(events)).toEqual([
      [0, false],
      [1, false],
      [5, true],
    ]);
    expect(events[2]?.record).toBeUndefined();
    expect(queue.queued).toBe(0);
  });

  it('IOMMU_VEVENTQ_FLAG_LOST_EVENTS: after a partial read the next event fits and replaces the marker, leaving a sequence gap', () => {
    const { queue, report } = setup(2);
    for (let i = 0; i < 4; i++) report(); // 0 and 1 queued, 2 and 3 dropped
    expect(seqs(queue.read(1))).toEqual([[0, false]]);
    expect(queue.queued).toBe(2); // event 1 and the marker
    report(); // sequence 4 fits
    expect(queue.queued).toBe(2);
    expect(seqs(queue.read())).toEqual([
      [1, false],
      [4, false],
    ]);
  });

  it('IOMMU_VEVENTQ: a read returns the marker only after the queued events; reading it frees it', () => {
    const { queue, report } = setup(1);
    for (let i = 0; i < 3; i++) report(); // 0 queued, 1 and 2 dropped
    expect(seqs(queue.read(1))).toEqual([[0, false]]);
    expect(seqs(queue.read(1))).toEqual([[2, true]]);
    expect(queue.read()).toEqual([]);
    report();
    expect(seqs(queue.read())).toEqual([[3, false]]);
  });

  it('IOMMU_VEVENTQ: a read of no records frees nothing', () => {
    const { queue, report } = setup(1);
    report();
    report();
    expect(queue.read(0)).toEqual([]);
    expect(queue.queued).toBe(2);
  });

  it('IOMMU_VEVENTQ_FLAG_LOST_EVENTS: once the marker has been read, a new overflow leaves a new marker with the new sequence', () => {
    const { queue, report } = setup(1);
    report();
    report();
    expect(seqs(queue.read())).toEqual([
      [0, false],
      [1, true],
    ]);
    report();
    report();
    report();
    expect(seqs(queue.read())).toEqual([
      [2, false],
      [4, true],
    ]);
  });

  it('IOMMU_VEVENTQ: the sequence number counts to INT_MAX (2^31 − 1) and wraps to 0', () => {
    // Reporting 2^31 events takes minutes, so the counter is started just below the wrap. The check
    // that the field exists keeps the test from passing vacuously if it is ever renamed.
    const { queue, report } = setup(8);
    expect(Reflect.get(queue, 'sequence')).toBe(0);
    Reflect.set(queue, 'sequence', 2 ** 31 - 2);
    report();
    report();
    report();
    expect(queue.read().map((e) => e.sequence)).toEqual([2 ** 31 - 2, 2 ** 31 - 1, 0]);
  });

  it('IOMMU_VEVENTQ: the sequence also wraps when the event that takes INT_MAX is dropped', () => {
    const { queue, report } = setup(1);
    Reflect.set(queue, 'sequence', 2 ** 31 - 2);
    report(); // 2^31 − 2 queued
    report(); // 2^31 − 1 dropped
    expect(seqs(queue.read())).toEqual([
      [2 ** 31 - 2, false],
      [2 ** 31 - 1, true],
    ]);
    report();
    expect(queue.read().map((e) => e.sequence)).toEqual([0]);
  });

  it('property: queued events never exceed the depth, delivered events keep their sequence, each read has at most one marker, last', () => {
    const step = fc.oneof(
      fc.constant({ kind: 'report' as const }),
      fc.record({ kind: fc.constant('read' as const), max: fc.option(fc.nat(4), { nil: undefined }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(step, { maxLength: 60 }), (depth, steps) => {
        const { queue, report } = setup(depth);
        let next = 0;
        let held = 0; // events (not markers) in the queue, by the model
        const delivered: number[] = [];
        const readEvents: number[] = [];
        for (const s of steps) {
          if (s.kind === 'report') {
            if (held < depth) {
              delivered.push(next);
              held++;
            }
            next++;
            report();
          } else {
            const events = queue.read(s.max);
            const markers = events.filter((e) => e.lostEvents);
            expect(markers.length).toBeLessThanOrEqual(1);
            if (markers.length === 1) expect(events.at(-1)?.lostEvents).toBe(true);
            for (const e of events) {
              if (e.lostEvents) {
                expect(delivered).not.toContain(e.sequence);
                expect(e.sequence).toBeLessThan(next);
              } else {
                readEvents.push(e.sequence);
                held--;
              }
            }
          }
          expect(queue.queued - held).toBeGreaterThanOrEqual(0);
          expect(queue.queued - held).toBeLessThanOrEqual(1);
          expect(held).toBeLessThanOrEqual(depth);
        }
        readEvents.push(
          ...queue
            .read()
            .filter((e) => !e.lostEvents)
            .map((e) => e.sequence),
        );
        expect(readEvents).toEqual(delivered);
      }),
    );
  });
});

describe('ViommuObject and its vEVENTQs', () => {
  it('iommufd_viommu_report_event: an event of a type with no vEVENTQ is dropped and uses no sequence number', () => {
    const { viommu, queue, report } = setup(4, 'mock');
    viommu.report('other-type', Uint32Array.of(9));
    expect(queue.queued).toBe(0);
    report();
    expect(queue.read().map((e) => e.sequence)).toEqual([0]);
  });

  it('each vEVENTQ type has its own queue and sequence numbers', () => {
    const { viommu, queue } = setup(4, 'mock');
    const other = new VeventqObject(viommu, 'tegra', 4);
    viommu.report('mock', Uint32Array.of(1));
    viommu.report('tegra', Uint32Array.of(2));
    viommu.report('tegra', Uint32Array.of(3));
    expect(queue.read().map((e) => [e.sequence, e.record?.[0]])).toEqual([[0, 1]]);
    expect(other.read().map((e) => [e.sequence, e.record?.[0]])).toEqual([
      [0, 2],
      [1, 3],
    ]);
  });

  it('a vEVENTQ holds its vIOMMU; destroying it releases the vIOMMU and later events of its type are dropped', () => {
    const { viommu, queue, report } = setup(4);
    expect(viommu.users).toBe(2);
    expect(viommu.veventqs.get('mock')).toBe(queue);
    queue.destroy();
    expect(viommu.users).toBe(1);
    expect(viommu.veventqs.has('mock')).toBe(false);
    report();
    expect(queue.queued).toBe(0);
  });

  it('a vIOMMU holds its nest-parent HWPT; destroying it destroys the driver half and releases the parent', () => {
    const { parent, log, viommu, queue } = setup(4);
    expect(parent.users).toBe(2);
    queue.destroy();
    viommu.destroy();
    expect(log).toEqual(['destroy']);
    expect(parent.users).toBe(1);
  });

  it('a vDEVICE binds its virtual ID on the vIOMMU and the device; destroying it unbinds both through the driver', () => {
    const { log, viommu } = setup(4);
    const ref = { name: 'dev0' } as IommuDeviceRef;
    const device = { device: ref, vdevice: undefined } as unknown as DeviceObject;
    const pasids = new PasidAllocator();
    const table = new VpasidTable(pasids, 8);
    const vdev = new VdeviceObject(viommu, device, 0x42n, table);
    expect(table.map(5, false)).toBe(1);
    expect(viommu.vdevices.get(0x42n)).toBe(vdev);
    expect(device.vdevice).toBe(vdev);
    expect(viommu.users).toBe(3); // the table, the vEVENTQ, the vDEVICE
    vdev.destroy();
    expect(log).toEqual(['vdeviceDestroy dev0']);
    expect(viommu.vdevices.size).toBe(0);
    expect(device.vdevice).toBeUndefined();
    expect(viommu.users).toBe(2);
    // Its physical PASIDs went back to the system.
    expect(pasids.allocated).toBe(0);
  });
});
