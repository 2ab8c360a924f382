import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errnoOf, type IommufdError } from '../errors/iommufd-error.js';
import { hold, IommufdObject, ObjectTable, type ObjectType, release } from './object-table.js';

/** An object that holds `holds` (as a HWPT holds its IOAS) and logs its destruction. */
class TestObject extends IommufdObject {
  destroyed = 0;

  constructor(
    readonly type: ObjectType,
    readonly name: string,
    private readonly log: string[],
    private readonly holds: readonly IommufdObject[] = [],
  ) {
    super();
    for (const h of holds) hold(h);
  }

  destroy(): void {
    this.destroyed++;
    this.log.push(this.name);
    for (const h of this.holds) release(h);
  }
}

function setup() {
  const table = new ObjectTable();
  const log: string[] = [];
  const make = (type: ObjectType, name: string, holds: IommufdObject[] = []) =>
    table.add(new TestObject(type, name, log, holds));
  return { table, log, make };
}

describe('ObjectTable', () => {
  it('object IDs start at 1 and the lowest free ID is reused (xa_alloc with xa_limit_31b)', () => {
    const { table, make } = setup();
    const a = make('ioas', 'a');
    const b = make('ioas', 'b');
    const c = make('ioas', 'c');
    expect([a.id, b.id, c.id]).toEqual([1, 2, 3]);
    table.destroy(b.id);
    table.destroy(a.id);
    expect(make('ioas', 'd').id).toBe(1);
    expect(make('ioas', 'e').id).toBe(2);
    expect(make('ioas', 'f').id).toBe(4);
  });

  it('ENOSPC once every ID up to the limit is taken, tombstones included; a freed ID is handed out again', () => {
    const table = new ObjectTable(3);
    const log: string[] = [];
    const [a, b] = [1, 2, 3].map((n) => table.add(new TestObject('ioas', `o${n}`, log)));
    expect(errnoOf(() => table.add(new TestObject('ioas', 'o4', log)))).toBe('ENOSPC');
    table.remove(a!, true);
    expect(errnoOf(() => table.add(new TestObject('ioas', 'o5', log)))).toBe('ENOSPC');
    table.remove(b!);
    expect(table.add(new TestObject('ioas', 'o6', log)).id).toBe(2);
  });

  it('iommufd_get_object: an unknown ID is ENOENT', () => {
    const { table, make } = setup();
    make('ioas', 'a');
    for (const id of [0, 2, -1, 2 ** 31]) expect(errnoOf(() => table.get(id))).toBe('ENOENT');
  });

  it('iommufd_get_object: an ID of the wrong type is ENOENT; any of the listed types is accepted', () => {
    const { table, make } = setup();
    const hwpt = make('hwpt-nested', 'h');
    expect(errnoOf(() => table.get(hwpt.id, 'ioas'))).toBe('ENOENT');
    expect(errnoOf(() => table.get(hwpt.id, 'hwpt-paging'))).toBe('ENOENT');
    expect(table.get(hwpt.id, 'hwpt-paging', 'hwpt-nested')).toBe(hwpt);
    expect(table.get(hwpt.id)).toBe(hwpt);
  });

  it('the errors name the object: ENOENT the ID and the types asked for, EBUSY the ID, type and other users', () => {
    const { table, make } = setup();
    const ioas = make('ioas', 'a');
    make('hwpt-paging', 'h', [ioas]);
    const caught = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return error as IommufdError;
      }
      throw new Error('nothing thrown');
    };
    const wrongType = caught(() => table.get(ioas.id, 'device', 'fault'));
    expect(wrongType.context).toEqual({ id: ioas.id });
    expect(wrongType.message).toContain(' of type device or fault');
    expect(caught(() => table.get(9)).message).not.toContain('of type');
    const busy = caught(() => table.destroy(ioas.id));
    expect(busy.context).toEqual({ id: ioas.id, type: 'ioas' });
  });

  it('IOMMU_DESTROY: EBUSY while another object holds it; the object is untouched and destroyable once released', () => {
    const { table, log, make } = setup();
    const ioas = make('ioas', 'ioas');
    const hwpt = make('hwpt-paging', 'hwpt', [ioas]);
    expect(ioas.users).toBe(2);
    expect(errnoOf(() => table.destroy(ioas.id))).toBe('EBUSY');
    expect(table.get(ioas.id)).toBe(ioas);
    expect(log).toEqual([]);
    table.destroy(hwpt.id);
    expect(ioas.users).toBe(1);
    table.destroy(ioas.id);
    expect(log).toEqual(['hwpt', 'ioas']);
    expect(errnoOf(() => table.destroy(ioas.id))).toBe('ENOENT');
  });

  it('IOMMU_DESTROY: EBUSY while an attachment (a users reference from outside the table) holds it', () => {
    const { table, make } = setup();
    const device = make('device', 'dev');
    hold(device);
    expect(errnoOf(() => table.destroy(device.id))).toBe('EBUSY');
    release(device);
    expect(errnoOf(() => table.destroy(device.id))).toBeUndefined();
    expect(device.destroyed).toBe(1);
  });

  it('tombstone: a force-removed vDEVICE ID is ENOENT and never reused until close', () => {
    const { table, make } = setup();
    const viommu = make('viommu', 'viommu');
    const vdev = make('vdevice', 'vdev', [viommu]);
    hold(vdev); // still referenced: a forced removal ignores users
    table.remove(vdev, true);
    expect(vdev.destroyed).toBe(1);
    expect(errnoOf(() => table.get(vdev.id))).toBe('ENOENT');
    expect(errnoOf(() => table.get(vdev.id, 'vdevice'))).toBe('ENOENT');
    expect(errnoOf(() => table.destroy(vdev.id))).toBe('ENOENT');
    expect(table.list()).toEqual([viommu]);
    expect(make('ioas', 'next').id).toBe(3);
    table.remove(vdev, true); // removing again does nothing
    expect(vdev.destroyed).toBe(1);
    table.close();
    expect(make('ioas', 'after close').id).toBe(1);
  });

  it('remove without a tombstone frees the ID at once', () => {
    const { table, make } = setup();
    const a = make('ioas', 'a');
    table.remove(a);
    expect(make('ioas', 'b').id).toBe(a.id);
  });

  it('close(/dev/iommu): objects are destroyed leaf first, each held object after every object holding it', () => {
    const { table, log, make } = setup();
    const ioas = make('ioas', 'ioas');
    const hwpt = make('hwpt-paging', 'hwpt', [ioas]);
    const viommu = make('viommu', 'viommu', [hwpt]);
    make('veventq', 'veventq', [viommu]);
    make('vdevice', 'vdevice', [viommu]);
    make('hwpt-nested', 'nested', [viommu]);
    make('device', 'device');
    table.close();
    const at = (name: string) => log.indexOf(name);
    expect([...log].sort()).toEqual(['device', 'hwpt', 'ioas', 'nested', 'vdevice', 'veventq', 'viommu']);
    for (const leaf of ['veventq', 'vdevice', 'nested']) expect(at(leaf)).toBeLessThan(at('viommu'));
    expect(at('viommu')).toBeLessThan(at('hwpt'));
    expect(at('hwpt')).toBeLessThan(at('ioas'));
    expect(table.list()).toEqual([]);
  });

  it('close(/dev/iommu): the order follows the references, not the IDs (a holder with a lower, reused ID)', () => {
    const { table, log, make } = setup();
    const first = make('ioas', 'first');
    const held = make('ioas', 'held');
    table.destroy(first.id);
    const holder = make('hwpt-paging', 'holder', [held]);
    expect(holder.id).toBeLessThan(held.id);
    table.close();
    expect(log).toEqual(['first', 'holder', 'held']);
  });

  it('close(/dev/iommu) destroys every object once, even one still held from outside the table', () => {
    const { table, make } = setup();
    const ioas = make('ioas', 'ioas');
    hold(ioas); // a reference nobody will drop
    const other = make('fault', 'fault');
    table.close();
    expect(ioas.destroyed).toBe(1);
    expect(other.destroyed).toBe(1);
    expect(table.list()).toEqual([]);
  });

  it('property: after any adds and destroys, close destroys every live object once, holders before what they hold', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), holds: fc.array(fc.nat(), { maxLength: 3 }) }),
      fc.record({ kind: fc.constant('destroy' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        const { table, log, make } = setup();
        const live: TestObject[] = [];
        const holdsOf = new Map<string, string[]>();
        let n = 0;
        for (const s of steps) {
          if (s.kind === 'add') {
            const picked = live.length === 0 ? [] : [...new Set(s.holds.map((i) => live[i % live.length]!))];
            const name = `o${n++}`;
            live.push(make('ioas', name, picked));
            holdsOf.set(
              name,
              picked.map((p) => p.name),
            );
          } else if (live.length > 0) {
            const target = live[s.pick % live.length]!;
            const errno = errnoOf(() => table.destroy(target.id));
            expect(errno).toBe(target.users > 1 ? 'EBUSY' : undefined);
            if (!errno) live.splice(live.indexOf(target), 1);
          }
        }
        const before = log.length;
        table.close();
        const order = log.slice(before);
        expect([...order].sort()).toEqual(live.map((o) => o.name).sort());
        for (const o of live) {
          expect(o.destroyed).toBe(1);
          for (const heldName of holdsOf.get(o.name) ?? [])
            expect(order.indexOf(o.name)).toBeLessThan(order.indexOf(heldName));
        }
      }),
    );
  });
});
